import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { StateStore, readState } from "../../src/local/state.js";
import { parseIptablesSave, splitWords } from "../../src/local/iptables-save.js";
import { parseStat, processIdentity, isRunning } from "../../src/local/procfs.js";
import { netnsName, validateInstance, validatePodName, vethName } from "../../src/local/names.js";
import { wrapArgv } from "../../src/local/processes.js";
import { errorCode } from "../../src/core/errors.js";

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "tether-state-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const opts = (dir: string) => ({ dir, instance: "tether0", podSubnet: "10.247.0.0/16", serviceSubnet: "10.248.0.0/16" });

test("every record is on disk as soon as record() returns, and forget() removes it", (t) => {
  const dir = tempDir(t);
  const store = StateStore.open(opts(dir));
  store.record([{ kind: "netns", name: "tether0-a" }], { name: "a", record: { netns: "tether0-a", link: "tether0-0", ip: "10.247.0.2" } });
  store.record([{ kind: "hostRule", table: "filter", chain: "FORWARD", spec: ["-i", "tether0", "-j", "ACCEPT"] }]);
  const onDisk = readState(dir);
  assert.deepEqual(onDisk?.resources.map((r) => r.kind), ["netns", "hostRule"]);
  assert.equal(onDisk?.pods.a?.ip, "10.247.0.2");
  assert.equal(onDisk?.owner?.pid, process.pid);
  store.forget([{ kind: "netns", name: "tether0-a" }], "a");
  assert.deepEqual(readState(dir)?.resources.map((r) => r.kind), ["hostRule"]);
  assert.deepEqual(readState(dir)?.pods, {});
  store.remove();
  store.record([{ kind: "link", name: "late" }]); // a late exit handler must not resurrect the file
  assert.equal(existsSync(join(dir, "state.json")), false);
});

test("refuses a state dir whose runner still runs, or that lists leftovers of a dead runner", async (t) => {
  const dir = tempDir(t);
  const child = spawn("sleep", ["30"], { stdio: "ignore" });
  t.after(() => child.kill("SIGKILL"));
  const owner = processIdentity(child.pid as number);
  assert.ok(owner);
  const data = { version: 1, instance: "tether0", podSubnet: "10.247.0.0/16", serviceSubnet: "10.248.0.0/16", owner, nextLink: 0, nextProcess: 0, resources: [{ kind: "netns", name: "tether0-a" }], pods: {}, serviceIps: {} };
  writeFileSync(join(dir, "state.json"), JSON.stringify(data));
  assert.throws(() => StateStore.open(opts(dir)), (e) => errorCode(e) === "LOCAL_STATE_BUSY");
  child.kill("SIGKILL");
  await new Promise((r) => child.once("exit", r));
  assert.equal(isRunning(owner), false);
  assert.throws(() => StateStore.open(opts(dir)), (e) => errorCode(e) === "LOCAL_STATE_STALE" && /tether local down --state-dir/.test((e as Error).message));
  writeFileSync(join(dir, "state.json"), JSON.stringify({ ...data, resources: [] }));
  const store = StateStore.open(opts(dir));
  assert.equal(store.owner?.pid, process.pid);
});

test("a corrupt state file is refused with what to do", (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "state.json"), "{not json");
  assert.throws(() => readState(dir), (e) => errorCode(e) === "LOCAL_STATE_CORRUPT");
  writeFileSync(join(dir, "state.json"), JSON.stringify({ version: 1, instance: "eth0; rm", resources: [], pods: {}, nextLink: 0 }));
  assert.throws(() => readState(dir), (e) => errorCode(e) === "LOCAL_BAD_NAME");
  assert.equal(readState(join(dir, "missing")), undefined);
});

test("names: instances cannot prefix one another, interface names fit 15 bytes", () => {
  assert.equal(validateInstance("tether0"), "tether0");
  for (const bad of ["", "Tether", "tether-0", "0tether", "abcdefghij"]) {
    assert.throws(() => validateInstance(bad), (e) => errorCode(e) === "LOCAL_BAD_NAME", bad);
  }
  for (const bad of ["-a", "a-", "A", "a b", "x".repeat(64)]) {
    assert.throws(() => validatePodName(bad), (e) => errorCode(e) === "LOCAL_BAD_NAME", bad);
  }
  assert.equal(netnsName("tether0", "default-web-0"), "tether0-default-web-0");
  assert.equal(vethName("tether0", 35), "tether0-z");
  assert.ok(vethName("abcdefghi", 36 ** 5 - 1).length <= 15);
  assert.throws(() => vethName("abcdefghi", 36 ** 5), (e) => errorCode(e) === "LOCAL_BAD_NAME");
});

test("wraps commands: enter the namespace first, then drop to the uid", () => {
  assert.deepEqual(wrapArgv(["app", "-x"], {}), ["app", "-x"]);
  assert.deepEqual(wrapArgv(["app"], { netns: "tether0-a", uid: 2102 }), [
    "nsenter",
    "--net=/run/netns/tether0-a",
    "--",
    "setpriv",
    "--reuid=2102",
    "--regid=2102",
    "--clear-groups",
    "--",
    "app",
  ]);
  assert.throws(() => wrapArgv([], {}), (e) => errorCode(e) === "LOCAL_BAD_NAME");
});

test("iptables-save parsing keeps quoted comments whole", () => {
  assert.deepEqual(splitWords('-A FORWARD -i br -m comment --comment "tether-local:br x" -j ACCEPT'), [
    "-A",
    "FORWARD",
    "-i",
    "br",
    "-m",
    "comment",
    "--comment",
    "tether-local:br x",
    "-j",
    "ACCEPT",
  ]);
  const tables = parseIptablesSave(
    ["# Generated", "*filter", ":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", '-A FORWARD -i br -m comment --comment "c" -j ACCEPT', "COMMIT", "*nat", ":X - [0:0]", "COMMIT"].join("\n"),
  );
  assert.deepEqual([...tables.keys()], ["filter", "nat"]);
  assert.deepEqual(tables.get("filter")?.rules, [{ chain: "FORWARD", args: ["-i", "br", "-m", "comment", "--comment", "c", "-j", "ACCEPT"] }]);
  assert.ok(tables.get("nat")?.chains.has("X"));
});

test("/proc/PID/stat parsing survives spaces and parentheses in the command name", () => {
  const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
  fields[0] = "S";
  fields[2] = "4242"; // pgid (field 5)
  fields[19] = "987654"; // starttime (field 22)
  const stat = parseStat(`123 (we ird) (name) ${fields.join(" ")}`);
  assert.deepEqual(stat, { state: "S", pgid: 4242, startTime: "987654" });
  assert.equal(parseStat("garbage"), undefined);
  const self = processIdentity(process.pid);
  assert.ok(self && isRunning(self));
  assert.equal(isRunning({ pid: process.pid, startTime: "1" }), false);
});
