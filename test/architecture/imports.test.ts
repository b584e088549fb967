/**
 * The import direction of docs/architecture.md, checked on the import statements of src/**.ts:
 * core imports nothing of the project; the inner libraries (identity, cluster, api) import only
 * core; the components import the inner libraries and never each other; the control plane
 * assembles components; the CLI and the local mesh sit outside (the local mesh never imports the
 * CLI, which imports it).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

const SRC = resolve(new URL("../../src", import.meta.url).pathname);

const INNER = ["core", "identity", "cluster", "api"];
const COMPONENTS = ["ca", "proxy", "discovery", "policy", "webhook", "viz"];

/** Folder -> the folders of src/ it may import (besides itself). */
const ALLOWED: Record<string, readonly string[]> = {
  core: [],
  identity: ["core"],
  cluster: ["core"],
  api: ["core"],
  ...Object.fromEntries(COMPONENTS.map((c) => [c, INNER])),
  controlplane: [...INNER, "discovery", "policy"],
  local: [...INNER, ...COMPONENTS],
  cli: [...INNER, ...COMPONENTS, "controlplane", "local"],
};

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith(".ts") ? [path] : [];
  });
}

/** Relative specifiers of every static import/export-from and dynamic import() in `text`. */
function importSpecifiers(text: string): string[] {
  const specs: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\b[^'";]*?\bfrom\s*["']([^"']+)["']|^\s*import\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/gm)) {
    specs.push((m[1] ?? m[2] ?? m[3])!);
  }
  return specs.filter((s) => s.startsWith("."));
}

function folderOf(path: string): string | undefined {
  const rel = relative(SRC, path);
  return rel.startsWith("..") ? undefined : rel.split(sep)[0];
}

test("the import statement parser sees static, type, re-export, side-effect and dynamic imports", () => {
  const text = [
    'import { a } from "../core/errors.js";',
    'import type { B } from "../api/index.js";',
    'export { c } from "./c.js";',
    'import "../identity/x.js";',
    'const m = await import("../local/mesh.js");',
    "import {\n  d,\n  e,\n} from '../cluster/d.js';",
    'import { pino } from "pino";',
  ].join("\n");
  assert.deepEqual(importSpecifiers(text), ["../core/errors.js", "../api/index.js", "./c.js", "../identity/x.js", "../local/mesh.js", "../cluster/d.js"]);
});

test("every folder of src/ has a place in the import direction", () => {
  const folders = readdirSync(SRC).filter((f) => statSync(join(SRC, f)).isDirectory());
  assert.deepEqual(folders.sort(), Object.keys(ALLOWED).sort());
});

test("imports point inward: no component imports another, no inner library imports outward", () => {
  const wrong: string[] = [];
  for (const file of sources(SRC)) {
    const from = folderOf(file)!;
    for (const spec of importSpecifiers(readFileSync(file, "utf8"))) {
      const to = folderOf(resolve(dirname(file), spec));
      // Outside src/ (the build script the local mesh runs from a checkout) is not a layer.
      if (to === undefined || to === from) continue;
      if (!ALLOWED[from]!.includes(to)) wrong.push(`${relative(SRC, file)} imports ${spec} (${from} -> ${to})`);
    }
  }
  assert.deepEqual(wrong, []);
});
