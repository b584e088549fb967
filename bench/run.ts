/**
 * `npm run bench -- NAME...` runs bench/NAME.ts (each exports `run(): Promise<void>` that prints
 * a table, and `tools` when it runs programs besides node, checked first). With no name it lists
 * what exists.
 */
import "reflect-metadata";
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { missingTools, type Tool } from "./_tools.js";

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter((f) => f.endsWith(".ts") && f !== "run.ts" && !f.startsWith("_"))
  .map((f) => f.slice(0, -3))
  .sort();

const wanted = process.argv.slice(2);
if (wanted.length === 0) {
  console.log(`usage: npm run bench -- NAME...\navailable: ${available.join(", ") || "(none yet)"}`);
  process.exit(0);
}
// Names come first; from the first argument starting with "-" on, options for the benchmarks
// (so that option values such as `--minutes 10` are not taken for names).
const firstOption = wanted.findIndex((w) => w.startsWith("-"));
const names = firstOption === -1 ? wanted : wanted.slice(0, firstOption);
const options = wanted.slice(names.length);
for (const name of names) {
  if (!available.includes(name)) {
    console.error(`no benchmark named ${name}; available: ${available.join(", ")}`);
    process.exit(2);
  }
  const mod = (await import(join(here, `${name}.ts`))) as { run(args: string[]): Promise<void>; tools?: readonly Tool[] };
  const missing = missingTools(name, mod.tools ?? []);
  if (missing) {
    console.error(missing);
    process.exit(2);
  }
  await mod.run(options);
}
