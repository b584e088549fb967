import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { percentile, runEchoClient, startEchoServer, summarize } from "../../src/local/demo/echo.js";

test("echo server names its replica; the client records every call; delay is live", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "tether-echo-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const delayFile = join(dir, "delay");
  writeFileSync(delayFile, "0");
  const server = await startEchoServer({ replica: "echo-0", host: "127.0.0.1", port: 0, delayFile });
  t.after(() => server.close());
  const records = await runEchoClient({ target: `127.0.0.1:${server.port}`, calls: 20, concurrency: 2 });
  const summary = summarize(records);
  assert.equal(summary.calls, 20);
  assert.equal(summary.failed, 0);
  assert.deepEqual(summary.perReplica, { "echo-0": 20 });
  writeFileSync(delayFile, "60");
  await new Promise((r) => setTimeout(r, 150));
  const slow = await runEchoClient({ target: `127.0.0.1:${server.port}`, calls: 2, concurrency: 1 });
  assert.ok(slow.every((r) => r.latencyMs >= 55), "delay file applied");
});

test("a refused call is recorded with its status code", async () => {
  const records = await runEchoClient({ target: "127.0.0.1:1", calls: 1, concurrency: 1, deadlineMs: 500 });
  assert.equal(records.length, 1);
  assert.equal(records[0]!.code, 14);
  assert.equal(summarize(records).failed, 1);
});

test("percentile uses nearest rank", () => {
  const values = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(values, 50), 50);
  assert.equal(percentile(values, 99), 99);
  assert.equal(percentile(values, 100), 100);
  assert.equal(percentile([], 99), 0);
});
