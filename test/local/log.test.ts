import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { followLogs, prettyLine } from "../../src/local/log.js";

test("a pino line reads as time, level, source, message and fields; other lines pass through", () => {
  const line = JSON.stringify({ level: 40, time: Date.UTC(2026, 0, 1, 12, 0, 1), pid: 1, hostname: "h", component: "proxy", msg: "stream lost", port: 8080, err: "gone" });
  assert.equal(prettyLine("echo-0/proxy", line), '12:00:01 WARN  [echo-0/proxy proxy] stream lost port=8080 err=gone');
  assert.equal(prettyLine("echo-0/app", "echo server echo-0 on :50051"), "[echo-0/app] echo server echo-0 on :50051");
});

test("followLogs prints the new complete lines of every log file, also of files created later", async () => {
  const state = mkdtempSync(join(tmpdir(), "tether-logs-"));
  try {
    mkdirSync(join(state, "logs", "control-plane"), { recursive: true });
    writeFileSync(join(state, "logs", "control-plane", "identity.err.log"), "first\n");
    const seen: string[] = [];
    const stop = followLogs(state, (l) => seen.push(l), 20);
    await new Promise((r) => setTimeout(r, 60));
    appendFileSync(join(state, "logs", "control-plane", "identity.err.log"), "second\nhalf");
    mkdirSync(join(state, "logs", "echo-0"), { recursive: true });
    writeFileSync(join(state, "logs", "echo-0", "app.out.log"), "hello\n");
    await new Promise((r) => setTimeout(r, 60));
    stop();
    assert.deepEqual(seen.sort(), ["[control-plane/identity] first", "[control-plane/identity] second", "[echo-0/app] hello"]);
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
});
