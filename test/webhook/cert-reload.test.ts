import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, mkdirSync, copyFileSync, symlinkSync, renameSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { X509Certificate } from "node:crypto";
import type { TLSSocket } from "node:tls";
import { pino } from "pino";
import { startWebhookServer, type WebhookServer } from "../../src/webhook/server.js";
import { defaultInjectionSettings } from "../../src/webhook/settings.js";
import { makeServingPair } from "./certs.js";

let dir: string;
let server: WebhookServer;
let version = 0;

/** Writes a pair the way kubelet updates a Secret volume: a new timestamped folder, then an atomic ..data symlink swap. */
function publish(pair: { certFile: string; keyFile: string }): void {
  const folder = `..${++version}_data`;
  mkdirSync(join(dir, folder));
  copyFileSync(pair.certFile, join(dir, folder, "tls.crt"));
  copyFileSync(pair.keyFile, join(dir, folder, "tls.key"));
  symlinkSync(folder, join(dir, "..data_tmp"));
  renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
}

function servedFingerprint(): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: server.port, path: "/live", rejectUnauthorized: false, agent: false, timeout: 5000 }, (res) => {
      const fp = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
      res.resume();
      res.on("end", () => resolve(fp));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out waiting for ${what}`);
}

let keys: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "tether-reload-"));
  keys = mkdtempSync(join(tmpdir(), "tether-reload-keys-"));
  publish(makeServingPair(keys, "one"));
  symlinkSync("..data/tls.crt", join(dir, "tls.crt"));
  symlinkSync("..data/tls.key", join(dir, "tls.key"));
  server = await startWebhookServer({
    settings: defaultInjectionSettings(),
    lookup: { namespace: async () => undefined, pods: async () => [] },
    certFile: join(dir, "tls.crt"),
    keyFile: join(dir, "tls.key"),
    log: pino({ level: "silent" }),
    host: "127.0.0.1",
    port: 0,
    certPollMs: 200,
  });
});

after(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
  rmSync(keys, { recursive: true, force: true });
});

describe("serving certificate rotation as kubelet does it (..data symlink swap)", () => {
  it("serves the renewed certificate without a restart, and keeps it when a broken one follows", async () => {
    const first = await servedFingerprint();
    const two = makeServingPair(keys, "two");
    publish(two);
    const expected = new X509Certificate(two.cert).fingerprint256;
    await eventually(async () => (await servedFingerprint()) === expected, "the renewed certificate");
    assert.notEqual(expected, first);

    // A pair whose key belongs to another certificate: refused, the renewed one stays.
    const three = makeServingPair(keys, "three");
    publish({ certFile: three.certFile, keyFile: two.keyFile });
    await eventually(async () => (await server.metrics.certReloads.get()).values.some((v) => v.labels.result === "refused" && v.value >= 1), "the refusal");
    assert.equal(await servedFingerprint(), expected);
  });
});
