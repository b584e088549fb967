/**
 * `tether local up --dir`: the folder is the cluster. Scaling a Deployment by editing `replicas`
 * starts and stops pods, and traffic follows.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pickFreeSubnet } from "../../src/local/network.js";
import { callFrom } from "../../src/local/demo/scenario.js";
import { summarize } from "../../src/local/demo/echo.js";
import { startLocalUp, type LocalUp } from "../../src/local/up.js";
import { silentLogger } from "../../src/local/log.js";
import { netnsSkip, testInstance } from "../support/netns-harness.js";

async function until(what: string, check: () => boolean, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test("local up --dir runs the folder's workloads and reconciles replica edits", { skip: netnsSkip, timeout: 300_000 }, async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), "tether-up-"));
  const dir = mkdtempSync(join(tmpdir(), "tether-up-folder-"));
  cpSync(new URL("../../deploy/local-example", import.meta.url).pathname, dir, { recursive: true });
  let up: LocalUp | undefined;
  t.after(async () => {
    await up?.stop();
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });
  up = await startLocalUp({ stateDir, instance: testInstance(), dir, logger: silentLogger, podSubnet: await pickFreeSubnet() });
  const echoPods = () => [...up!.mesh.pods.keys()].filter((p) => p.startsWith("echo-")).sort();
  assert.deepEqual(echoPods(), ["echo-0", "echo-1", "echo-2"]);
  assert.ok(up.mesh.pods.get("client-0")?.spec.meshed, "the demo namespace is meshed");
  const vip = up.mesh.services.get("demo/echo")!.vip;
  const before = summarize(await callFrom(up.mesh, "client-0", vip, 90));
  assert.equal(before.failed, 0);
  assert.deepEqual(Object.keys(before.perReplica).sort(), ["echo-0", "echo-1", "echo-2"]);

  const echoFile = join(dir, "echo.yaml");
  writeFileSync(echoFile, readFileSync(echoFile, "utf8").replace("replicas: 3", "replicas: 4"));
  await until("a fourth echo replica", () => echoPods().length === 4 && up!.mesh.pods.get("echo-3")?.ready === true);
  await new Promise((r) => setTimeout(r, 1000));
  const scaledUp = summarize(await callFrom(up.mesh, "client-0", vip, 120));
  assert.equal(scaledUp.failed, 0);
  assert.ok((scaledUp.perReplica["echo-3"] ?? 0) > 0, `the new replica gets traffic: ${JSON.stringify(scaledUp.perReplica)}`);

  writeFileSync(echoFile, readFileSync(echoFile, "utf8").replace("replicas: 4", "replicas: 1"));
  await until("one echo replica", () => echoPods().length === 1);
  const scaledDown = summarize(await callFrom(up.mesh, "client-0", vip, 30));
  assert.equal(scaledDown.failed, 0);
  assert.deepEqual(Object.keys(scaledDown.perReplica), ["echo-0"]);

  // Policy from the folder is in force: only the client's identity may call echo.
  assert.match(readFileSync(join(up.mesh.clusterDir, "authorizationpolicy.demo.echo-clients.yaml"), "utf8"), /echo-clients/);
});
