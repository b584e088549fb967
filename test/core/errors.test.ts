import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { ERROR_CODES, errorCode, isErrorCode } from "../../src/core/errors.js";
import { ClusterError } from "../../src/cluster/errors.js";
import { LocalMeshError } from "../../src/local/errors.js";
import { UpstreamError } from "../../src/proxy/forward/errors.js";

const SRC = new URL("../../src/", import.meta.url).pathname;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith(".ts") ? [path] : [];
  });
}

const files = sources(SRC).map((path) => ({ path, text: readFileSync(path, "utf8") }));
const table = join(SRC, "core", "errors.ts");
const rest = files.filter((f) => f.path !== table);

test("every class that extends TetherError is a family of the code table, declared once", () => {
  const declared = new Map<string, number>();
  for (const f of files) for (const m of f.text.matchAll(/class (\w+) extends TetherError\b/g)) declared.set(m[1]!, (declared.get(m[1]!) ?? 0) + 1);
  // RemoteRefusalError re-raises a server's code, whichever family it is from.
  declared.delete("RemoteRefusalError");
  assert.deepEqual([...declared.keys()].sort(), Object.keys(ERROR_CODES).sort());
  for (const [name, count] of declared) assert.equal(count, 1, `${name} is declared ${count} times`);
});

test("every listed code is thrown somewhere, and is UPPER_SNAKE", () => {
  for (const [family, codes] of Object.entries(ERROR_CODES)) {
    assert.equal(new Set(codes).size, codes.length, `${family} lists a code twice`);
    for (const code of codes) {
      assert.match(code, /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$/);
      assert.ok(rest.some((f) => f.text.includes(`"${code}"`)), `${code} (${family}) is listed but never used`);
    }
  }
});

test("errorCode reports the code of every refusal and INTERNAL only for what is not one", () => {
  assert.equal(errorCode(new ClusterError("CLUSTER_UNREACHABLE", "down")), "CLUSTER_UNREACHABLE");
  assert.equal(errorCode(new LocalMeshError("LOCAL_MESH_TIMEOUT", "slow")), "LOCAL_MESH_TIMEOUT");
  assert.equal(errorCode(new UpstreamError("UPSTREAM_RESET", "reset", false)), "UPSTREAM_RESET");
  assert.equal(errorCode(new TypeError("a bug")), "INTERNAL");
  assert.equal(new ClusterError("CLUSTER_UNREACHABLE", "down").name, "ClusterError");
});

test("isErrorCode knows the listed codes and nothing else", () => {
  assert.ok(isErrorCode("CLUSTER_UNREACHABLE"));
  assert.ok(!isErrorCode("NOT_A_CODE"));
  assert.ok(!isErrorCode(undefined));
});
