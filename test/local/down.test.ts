/**
 * `tether local down` after a crash (kill -9 of the runner), against a live runner, without a
 * state file, and run twice: nothing of the instance stays behind (root only).
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { netnsSkip, testInstance } from "../support/netns-harness.js";
import { down } from "../../src/local/down.js";
import { pickFreeSubnet } from "../../src/local/network.js";
import { StateStore, readState } from "../../src/local/state.js";
import { INSTANCE_ENV, ruleComment } from "../../src/local/names.js";
import { isRunning, pidsWithEnv, type ProcessId } from "../../src/local/procfs.js";
import { errorCode } from "../../src/core/errors.js";

const root = new URL("../..", import.meta.url).pathname;

interface Runner {
  child: ChildProcess;
  stateDir: string;
  instance: string;
}

/** Starts the crash child and waits for "ready", choosing again if a parallel test took its subnet. */
async function startRunner(t: TestContext): Promise<Runner> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await startRunnerOnce(t);
    } catch (err) {
      if (!/LOCAL_SUBNET_OVERLAP/.test(String(err)) || attempt >= 3) throw err;
    }
  }
}

/** Cleanup (kill + down + remove the state dir) is registered on `t` before anything starts. */
async function startRunnerOnce(t: TestContext): Promise<Runner> {
  const stateDir = mkdtempSync(join(tmpdir(), "tether-crash-"));
  const instance = testInstance();
  const child = spawn(process.execPath, ["--import", "tsx", "test/support/netns-crash-child.ts", stateDir, instance, await pickFreeSubnet()], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  t.after(async () => {
    child.kill("SIGKILL");
    try {
      await down({ stateDir, instance, graceMs: 200 });
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
  let stderr = "";
  child.stderr?.on("data", (d) => (stderr += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`runner not ready in 15 s: ${stderr}`)), 15_000);
    child.stdout?.on("data", (d: Buffer) => {
      if (d.toString().includes("ready")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`runner exited ${code}: ${stderr}`));
    });
  });
  return { child, stateDir, instance };
}

function sh(cmd: string): string {
  return spawnSync("sh", ["-c", cmd], { encoding: "utf8" }).stdout;
}

/** Everything of `instance` the host shows, by the same commands an operator would use. */
function hostView(instance: string) {
  return {
    namespaces: sh("ip netns list").split("\n").filter((l) => l.startsWith(`${instance}-`)),
    links: sh("ip -br link").split("\n").filter((l) => l.startsWith(instance)),
    rules: sh("iptables-save").split("\n").filter((l) => l.includes(ruleComment(instance))),
    processes: pidsWithEnv(INSTANCE_ENV, instance).map((p) => p.pid),
  };
}

const nothing = { namespaces: [], links: [], rules: [], processes: [] };

function recordedPids(stateDir: string): ProcessId[] {
  return (readState(stateDir)?.resources ?? []).flatMap((r) => (r.kind === "process" && r.pid && r.startTime ? [{ pid: r.pid, startTime: r.startTime }] : []));
}

function tetherDown(...args: string[]) {
  return spawnSync(process.execPath, ["bin/tether.mjs", "local", "down", "--grace-ms", "500", ...args], { cwd: root, encoding: "utf8", timeout: 20_000 });
}

test("after kill -9 of the runner, `tether local down` removes everything, and again is a no-op", { skip: netnsSkip, timeout: 30_000 }, async (t) => {
  const { child, stateDir, instance } = await startRunner(t);
  const before = hostView(instance);
  assert.equal(before.namespaces.length, 2);
  assert.equal(before.links.length, 3, "bridge and two veths");
  assert.equal(before.rules.length, 3);
  assert.ok(before.processes.length >= 4, `server, two sleeps of pod b, host sleep: ${before.processes}`);
  const pids = recordedPids(stateDir);
  assert.equal(pids.length, 3);

  child.kill("SIGKILL");
  await new Promise((r) => child.once("exit", r));
  assert.ok(pids.every(isRunning), "the runner's processes outlive it");
  assert.throws(
    () => StateStore.open({ dir: stateDir, instance, podSubnet: "10.246.0.0/24", serviceSubnet: "10.248.0.0/16" }),
    (e) => errorCode(e) === "LOCAL_STATE_STALE",
  );

  const first = tetherDown("--state-dir", stateDir);
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stdout, /removed [4-9] processes, 3 iptables rules, 2 namespaces/);
  assert.deepEqual(hostView(instance), nothing);
  assert.ok(pids.every((p) => !isRunning(p)));
  assert.equal(existsSync(join(stateDir, "state.json")), false);

  const second = tetherDown("--state-dir", stateDir, "--instance", instance);
  assert.equal(second.status, 0, second.stderr);
  assert.match(second.stdout, /removed 0 processes, 0 iptables rules, 0 namespaces, 0 links/);
  assert.deepEqual(hostView(instance), nothing);
});

test("down stops a live runner first, so it cannot recreate what is removed", { skip: netnsSkip, timeout: 30_000 }, async (t) => {
  const { child, stateDir, instance } = await startRunner(t);
  const exited = new Promise((r) => child.once("exit", (_code, signal) => r(signal)));
  const report = await down({ stateDir, graceMs: 500 });
  assert.equal(report.stoppedRunner, child.pid);
  assert.equal(await exited, "SIGTERM");
  assert.deepEqual(report.instances, [instance]);
  assert.equal(report.namespaces.length, 2);
  assert.deepEqual(hostView(instance), nothing);
});

test("without its state file, down still finds an instance's leftovers by name", { skip: netnsSkip, timeout: 30_000 }, async (t) => {
  const { child, stateDir, instance } = await startRunner(t);
  child.kill("SIGKILL");
  await new Promise((r) => child.once("exit", r));
  rmSync(join(stateDir, "state.json"));
  const report = await down({ stateDir, instance, graceMs: 500 });
  assert.equal(report.rules, 3);
  assert.equal(report.namespaces.length, 2);
  assert.ok(report.processes >= 4);
  assert.deepEqual(hostView(instance), nothing);
});
