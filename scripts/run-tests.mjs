#!/usr/bin/env node
// Runs every test/**/*.test.ts with Node's test runner (Node 20 does not glob .ts files itself).
// Usage: npm test [-- FILTER...]   FILTER narrows to test files whose path contains it.
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { spawnSync } from "node:child_process";

const root = new URL("..", import.meta.url).pathname;
const filters = process.argv.slice(2);

function collect(dir) {
  const out = [];
  for (const entry of readdirSync(dir).sort()) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...collect(path));
    else if (entry.endsWith(".test.ts")) out.push(path);
  }
  return out;
}

const files = collect(join(root, "test"))
  .map((f) => relative(root, f))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error(`no test files match ${filters.join(" ")}`);
  process.exit(1);
}
// End-to-end files each run a whole mesh (a dozen processes); on two cores they run one at a time,
// after the rest, so their control planes are not starved by each other.
const e2e = files.filter((f) => f.startsWith(join("test", "e2e")));
const rest = files.filter((f) => !e2e.includes(f));
let status = 0;
for (const [group, concurrency] of [[rest, 2], [e2e, 1]]) {
  if (group.length === 0) continue;
  const result = spawnSync(
    process.execPath,
    ["--import", "tsx", "--test", `--test-concurrency=${concurrency}`, "--test-reporter=spec", ...group],
    { cwd: root, stdio: "inherit" },
  );
  status ||= result.status ?? 1;
}
process.exit(status);
