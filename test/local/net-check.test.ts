import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { netnsSkip } from "../support/netns-harness.js";

const root = new URL("../..", import.meta.url).pathname;

test("`tether local net-check` passes every check on this machine and leaves nothing behind", { skip: netnsSkip, timeout: 30_000 }, () => {
  const before = spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout;
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
  );
  assert.match(result.stdout, /service VIP spread\s+30 connections/);
  assert.match(result.stdout, /down leaves nothing/);
  const netnsAfter = spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout.split("\n").filter((l) => l.startsWith("nc"));
  assert.deepEqual(netnsAfter, before.split("\n").filter((l) => l.startsWith("nc")));
});

test("without root, local commands refuse plainly and say what to run", { skip: netnsSkip, timeout: 20_000 }, () => {
  for (const command of ["net-check", "down"]) {
    const result = spawnSync("setpriv", ["--reuid=1000", "--regid=1000", "--clear-groups", process.execPath, "bin/tether.mjs", "local", command], {
      cwd: root,
      encoding: "utf8",
      timeout: 15_000,
    });
    assert.equal(result.status, 1, result.stderr);
    assert.match(result.stderr, new RegExp(`needs root .*run: sudo tether local ${command} \\[LOCAL_NOT_ROOT\\]`));
  }
});
