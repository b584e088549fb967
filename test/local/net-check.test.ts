import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { netnsSkip } from "../support/netns-harness.js";

const root = new URL("../..", import.meta.url).pathname;

test("`tether local net-check` passes every check on this machine and leaves nothing behind", { skip: netnsSkip, timeout: 30_000 }, () => {
  const result = spawnSync(process.execPath, ["bin/tether.mjs", "local", "net-check", "--connections", "30"], {
    cwd: root,
    encoding: "utf8",
    timeout: 25_000,
    env: { ...process.env, TETHER_LOG_LEVEL: "warn" },
  });
  assert.equal(result.status, 0, result.stdout + result.stderr);
  const lines = result.stdout.trim().split("\n");
  assert.deepEqual(
    lines.map((l) => l.slice(0, 4)),
    ["ok  ", "ok  ", "ok  ", "ok  ", "ok  "],
    result.stdout + result.stderr,
  );
  assert.match(result.stdout, /service VIP spread\s+30 connections/);
  // Its own instance is gone (other runs may be in progress in parallel, so look only at ours).
  const instance = /instance (nc[0-9a-f]+) removed/.exec(result.stdout)?.[1];
  assert.ok(instance, result.stdout);
  const netns = spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout.split("\n");
  assert.deepEqual(netns.filter((l) => l.startsWith(`${instance}-`)), []);
  assert.doesNotMatch(spawnSync("ip", ["-br", "link"], { encoding: "utf8" }).stdout, new RegExp(`^${instance}`, "m"));
  assert.doesNotMatch(spawnSync("iptables-save", { encoding: "utf8" }).stdout, new RegExp(`tether-local:${instance}\\b`));
});

test("without root, local commands refuse plainly and say what to run", { skip: netnsSkip, timeout: 20_000 }, () => {
  // One command is enough: each start as another uid compiles the CLI afresh, which is slow.
  for (const command of ["down"]) {
    const result = spawnSync("setpriv", ["--reuid=1000", "--regid=1000", "--clear-groups", process.execPath, "bin/tether.mjs", "local", command], {
      cwd: root,
      encoding: "utf8",
      timeout: 15_000,
    });
    assert.equal(result.status, 1, result.stderr);
    assert.match(result.stderr, new RegExp(`needs root .*run: sudo tether local ${command} \\[LOCAL_NOT_ROOT\\]`));
  }
});
