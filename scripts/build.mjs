#!/usr/bin/env node
/**
 * Builds dist/: the tether CLI compiled ahead of time to plain ESM JavaScript with esbuild, so the
 * shipped processes (above all the sidecar proxy) run without tsx's transpiler and module-loader
 * thread in memory. `npm run build`, and `prepare` (so `npm ci` builds it).
 *
 *   dist/tether.mjs        the `tether` command (src/cli/main.ts); each sub-command's modules are
 *   dist/<name>-<hash>.mjs   chunks loaded only when that sub-command runs (`await import()`)
 *   dist/build.json        what the build read (for the freshness check) and the esbuild metafile
 *
 * npm packages stay external (loaded from node_modules at run time: koffi is native, and
 * pino/grpc-js resolve files of their own). Those that are CommonJS (pino, prom-client, grpc-js,
 * proto-loader, commander...) are loaded with `require`, not `import`: Node's ESM loader parses
 * every CommonJS module it imports with cjs-module-lexer (WebAssembly), 4-6 MB of RSS the proxy
 * need not carry. Files the sources find through `import.meta.url` (the .proto files, the
 * dashboard's static files, deploy/) stay where they are: in the bundle, each source file's
 * `import.meta.url` is the URL of that source file, computed from the bundle's own location, so
 * `dist/` must keep its place beside `src/` (in the repository, and under /app in the image).
 *
 * A stale dist must never run: what runs dist/ from a checkout (the local mesh, the proxy bench)
 * calls `ensureBuilt()`, which rebuilds when any file the last build read has changed since.
 * Outputs are written file by file through a rename, chunks before entries, and chunk names carry
 * a content hash: a process starting during a rebuild loads either the old or the new build.
 *
 * Usage: node scripts/build.mjs   (a clean build of dist/)
 */
import { readFileSync } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { createRequire, isBuiltin } from "node:module";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as esbuild from "esbuild";

export const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
export const DIST = join(ROOT, "dist");
/** The shipped entry points: output name (without .mjs) -> source, relative to ROOT. */
export const PRODUCT_ENTRIES = { tether: "src/cli/main.ts" };
const STAMP = "build.json";
const EDIT_RACE_MS = 50;
/** Besides the sources esbuild reads, these change what a build produces. */
const BUILD_INPUTS = ["scripts/build.mjs", "tsconfig.json", "package-lock.json"];

/**
 * In every bundled source file, `import.meta.url` becomes that source file's URL, resolved
 * against the output file's location (outputs all sit directly in `outdir`, which is inside ROOT).
 */
function sourceUrlPlugin(outdir) {
  return {
    name: "source-import-meta-url",
    setup(build) {
      build.onLoad({ filter: /\.[cm]?ts$/ }, async (args) => {
        const text = await readFile(args.path, "utf8");
        if (!text.includes("import.meta.url")) return undefined;
        const rel = relative(outdir, args.path).split(sep).join("/");
        const url = `new URL(${JSON.stringify(rel)}, import.meta.url).href`;
        return { contents: text.replaceAll("import.meta.url", url), loader: "ts" };
      });
    },
  };
}

/** Whether Node loads `file` as CommonJS (by extension, else by the nearest package.json "type"). */
function isCommonJs(file) {
  if (file.endsWith(".cjs")) return true;
  if (file.endsWith(".mjs")) return false;
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    try {
      return JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).type !== "module";
    } catch (err) {
      if (err.code !== "ENOENT") throw err;
    }
    if (dirname(dir) === dir) return true;
  }
}

/**
 * A static `import` of a CommonJS package becomes `require()` through the banner's createRequire
 * (esbuild's own interop gives the named and default imports Node's semantics). ESM packages and
 * dynamic `import()` (loaded later, if ever) stay imports.
 */
function requireCommonJsPlugin() {
  return {
    name: "require-commonjs-packages",
    setup(build) {
      build.onResolve({ filter: /^[^./]/ }, (args) => {
        if (args.kind !== "import-statement" || args.namespace !== "file" || isBuiltin(args.path)) return undefined;
        let file;
        try {
          file = createRequire(join(args.resolveDir, "_.js")).resolve(args.path);
        } catch {
          return undefined; // not resolvable with require: leave it to `import`
        }
        return isCommonJs(file) ? { path: args.path, namespace: "commonjs-package" } : undefined;
      });
      build.onLoad({ filter: /.*/, namespace: "commonjs-package" }, (args) => ({
        contents: `module.exports = require(${JSON.stringify(args.path)});`,
        loader: "js",
        resolveDir: ROOT,
      }));
    },
  };
}

/** The esbuild options of every tether build (the product's and the bench's). */
export function buildOptions({ outdir, entryPoints }) {
  // Inside ROOT: the bundle imports npm packages from ROOT/node_modules.
  const inRoot = relative(ROOT, outdir);
  if (inRoot === "" || inRoot.startsWith("..") || resolve(outdir) !== outdir) throw new Error(`build output ${outdir} must be an absolute path inside ${ROOT}`);
  return {
    absWorkingDir: ROOT,
    entryPoints: Object.fromEntries(Object.entries(entryPoints).map(([name, src]) => [name, join(ROOT, src)])),
    outdir,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    outExtension: { ".js": ".mjs" },
    entryNames: "[name]",
    chunkNames: "[name]-[hash]",
    // The sources are what they are; a readable bundle keeps stack traces useful.
    minify: false,
    sourcemap: false,
    legalComments: "none",
    define: { TETHER_BUNDLED: "true" },
    // esbuild's `require` of an external package (above) calls this one, resolving from dist/.
    banner: { js: 'import { createRequire as __tetherCreateRequire } from "node:module";\nconst require = __tetherCreateRequire(import.meta.url);' },
    metafile: true,
    write: false,
    logLevel: "warning",
    plugins: [sourceUrlPlugin(outdir), requireCommonJsPlugin()],
  };
}

async function writeAtomic(path, contents) {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  await writeFile(tmp, contents);
  await rename(tmp, path);
}

/**
 * Builds `entryPoints` into `outdir`. `clean` empties the folder first (a release build);
 * otherwise files are replaced one by one and chunks of earlier builds are left in place.
 */
export async function build({ outdir = DIST, entryPoints = PRODUCT_ENTRIES, clean = false } = {}) {
  const startedAt = Date.now();
  const result = await esbuild.build(buildOptions({ outdir, entryPoints }));
  if (clean) await rm(outdir, { recursive: true, force: true });
  await mkdir(outdir, { recursive: true });
  const entryPaths = new Set(Object.keys(entryPoints).map((name) => join(outdir, `${name}.mjs`)));
  const files = [...result.outputFiles].sort((a, b) => Number(entryPaths.has(a.path)) - Number(entryPaths.has(b.path)));
  for (const file of files) await writeAtomic(file.path, file.contents);
  const paths = [...new Set([...Object.keys(result.metafile.inputs).filter((p) => !p.includes("node_modules") && !/^[\w-]+:/.test(p)), ...BUILD_INPUTS])].sort();
  // Each input's modification time as built; one changed while esbuild was reading (or just
  // before: file times come from a coarse clock) may not be in this build, so it counts as changed.
  const inputs = {};
  for (const path of paths) {
    const mtimeMs = await stat(join(ROOT, path)).then((st) => st.mtimeMs, () => undefined);
    if (mtimeMs !== undefined) inputs[path] = mtimeMs >= startedAt - EDIT_RACE_MS ? -1 : mtimeMs;
  }
  const stamp = { esbuild: esbuild.version, entryPoints, inputs, metafile: result.metafile };
  await writeAtomic(join(outdir, STAMP), `${JSON.stringify(stamp)}\n`);
  return { outdir, entries: Object.fromEntries(Object.keys(entryPoints).map((name) => [name, join(outdir, `${name}.mjs`)])), metafile: result.metafile };
}

/** Why `outdir` does not hold a current build of `entryPoints`, or undefined if it does. */
export async function staleReason({ outdir = DIST, entryPoints = PRODUCT_ENTRIES } = {}) {
  let stamp;
  try {
    stamp = JSON.parse(await readFile(join(outdir, STAMP), "utf8"));
  } catch {
    return `${relative(ROOT, outdir)} has not been built`;
  }
  if (JSON.stringify(stamp.entryPoints) !== JSON.stringify(entryPoints)) return "built for other entry points";
  for (const name of Object.keys(entryPoints)) {
    try {
      await stat(join(outdir, `${name}.mjs`));
    } catch {
      return `${name}.mjs is missing`;
    }
  }
  for (const [input, builtMtimeMs] of Object.entries(stamp.inputs)) {
    let mtimeMs;
    try {
      ({ mtimeMs } = await stat(join(ROOT, input)));
    } catch {
      return `${input} is gone`;
    }
    if (mtimeMs !== builtMtimeMs) return `${input} changed`;
  }
  return undefined;
}

/** Rebuilds `outdir` if it is stale; returns the entry files (name -> absolute path). */
export async function ensureBuilt({ outdir = DIST, entryPoints = PRODUCT_ENTRIES } = {}) {
  const reason = await staleReason({ outdir, entryPoints });
  if (reason === undefined) {
    return Object.fromEntries(Object.keys(entryPoints).map((name) => [name, join(outdir, `${name}.mjs`)]));
  }
  return (await build({ outdir, entryPoints })).entries;
}

if (process.argv[1] && pathToFileURL(resolve(process.argv[1])).href === import.meta.url) {
  const started = Date.now();
  const { entries } = await build({ clean: true });
  const names = Object.values(entries).map((p) => relative(ROOT, p));
  console.log(`built ${names.join(", ")} in ${Date.now() - started} ms`);
}
