import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { missingTools } from "../../bench/_tools.js";
import { tools } from "../../bench/proxy.js";

test("a bench names the Debian packages of the programs it cannot find, before it starts", () => {
  const dir = mkdtempSync(join(tmpdir(), "tether-bench-path-"));
  try {
    writeFileSync(join(dir, "h2load"), "#!/bin/sh\n");
    chmodSync(join(dir, "h2load"), 0o755);
    assert.equal(
      missingTools("proxy", tools, dir),
      "bench proxy needs haproxy (Debian package haproxy), not found on PATH: install with  sudo apt-get install haproxy",
    );
    assert.match(missingTools("proxy", tools, "/nonexistent")!, /install with {2}sudo apt-get install haproxy nghttp2-client$/);
    writeFileSync(join(dir, "haproxy"), "#!/bin/sh\n");
    chmodSync(join(dir, "haproxy"), 0o755);
    assert.equal(missingTools("proxy", tools, dir), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
