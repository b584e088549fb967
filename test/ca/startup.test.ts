import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bootstrapCa, createIssuer, DAY_MS, writeIssuerSecret } from "../../src/ca/bootstrap.js";
import { IssuerError } from "../../src/ca/errors.js";
import { startIdentityCa } from "../../src/ca/server.js";
import { jwksTokenValidator } from "../../src/ca/tokens.js";
import { systemClock } from "../../src/core/clock.js";

const run = promisify(execFile);
const bin = new URL("../../bin/tether.mjs", import.meta.url).pathname;

test("tether ca serve exits with what is wrong when the issuer is unusable", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "tether-ca-start-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const pki = await bootstrapCa({ dir, trustDomain: "cluster.local" });
  const other = createIssuer({ anchor: pki.anchor, lifetimeMs: DAY_MS, now: Date.now() });
  await writeIssuerSecret(pki.issuerDir, { certPem: pki.issuer.certPem, keyPem: other.keyPem }, pki.anchor.certPem);
  await writeFile(join(dir, "jwks.json"), JSON.stringify({ keys: [] }));
  const args = [bin, "ca", "serve", "--issuer-dir", pki.issuerDir, "--token-mode", "jwks", "--jwks-file", join(dir, "jwks.json"), "--listen", "127.0.0.1:0", "--admin-port", "0"];
  await assert.rejects(run(process.execPath, args, { timeout: 30_000 }), (err: { code: number; stderr: string }) => {
    assert.equal(err.code, 1);
    assert.match(err.stderr, /issuer key \(tls\.key\) does not match the issuer certificate .* \[ISSUER_KEY_MISMATCH\]/);
    return true;
  });
});

test("startIdentityCa rejects a folder without the Secret's files", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "tether-ca-start-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await assert.rejects(
    startIdentityCa({
      issuerDir: dir,
      trustDomain: "cluster.local",
      lifetimeMs: DAY_MS,
      clockSkewMs: 0,
      tokenValidator: jwksTokenValidator({ jwks: { keys: [] }, issuer: "x" }),
      listen: { host: "127.0.0.1", port: 0 },
      clock: systemClock,
    }),
    (e: unknown) => e instanceof IssuerError && e.code === "ISSUER_FILE_MISSING" && /tls\.crt, tls\.key and ca\.crt/.test(e.message),
  );
});
