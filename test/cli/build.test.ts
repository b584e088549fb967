/**
 * The compiled CLI (scripts/build.mjs): what `tether proxy` loads, that it runs from dist/, and
 * that a stale build is rebuilt before use. Builds go to folders of their own under dist/.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as esbuild from "esbuild";
import { build, buildOptions, ensureBuilt, PRODUCT_ENTRIES, ROOT, staleReason } from "../../scripts/build.mjs";

const scratch = join(ROOT, "dist", `test-${process.pid}`);
after(() => rmSync(scratch, { recursive: true, force: true }));

/** Everything an output file loads before its code runs: its static imports, transitively. */
function staticClosure(metafile: esbuild.Metafile, start: string): { outputs: Set<string>; inputs: Set<string>; packages: Set<string> } {
  const outputs = new Set<string>();
  const inputs = new Set<string>();
  const packages = new Set<string>();
  const visit = (path: string) => {
    if (outputs.has(path)) return;
    outputs.add(path);
    const out = metafile.outputs[path]!;
    for (const input of Object.keys(out.inputs)) inputs.add(input);
    for (const i of out.imports) {
      if (i.kind === "dynamic-import") continue;
      if (i.external) packages.add(i.path);
      else visit(i.path);
    }
  };
  visit(start);
  return { outputs, inputs, packages };
}

describe("the compiled CLI", () => {
  it("loads for `tether proxy` only the proxy's code and packages", async () => {
    const outdir = join(scratch, "metafile");
    const metafile = (await esbuild.build({ ...buildOptions({ outdir, entryPoints: PRODUCT_ENTRIES }), write: false })).metafile!;
    const rel = (p: string) => p.replace(`${ROOT}/`, "");
    const entry = Object.keys(metafile.outputs).find((p) => metafile.outputs[p]!.entryPoint === "src/cli/main.ts")!;
    const proxyChunk = Object.keys(metafile.outputs).find((p) => metafile.outputs[p]!.entryPoint === "src/cli/proxy-run.ts");
    assert.ok(entry && proxyChunk, `outputs: ${Object.keys(metafile.outputs).map(rel).join(", ")}`);
    const main = staticClosure(metafile, entry);
    assert.deepEqual([...main.packages].filter((p) => !p.startsWith("node:")), ["commander"], "the entry itself loads only commander");
    const proxy = staticClosure(metafile, proxyChunk);
    const packages = [...proxy.packages].filter((p) => !p.startsWith("node:")).sort();
    for (const heavy of ["@kubernetes/client-node", "yaml", "jose", "@peculiar/x509", "reflect-metadata", "uplot"]) {
      assert.ok(!packages.includes(heavy), `tether proxy loads ${heavy} (packages: ${packages.join(", ")})`);
    }
    const foreign = [...proxy.inputs].filter((i) => /^src\/(cluster|ca|webhook|policy|discovery|local)\/|^src\/cli\/(?!proxy-run)/.test(i));
    assert.deepEqual(foreign, [], "tether proxy loads code of other components");
  });

  it("runs from its folder: help, and the proxy up to its configuration check (protos loaded)", async () => {
    const { entries } = await build({ outdir: join(scratch, "dist"), entryPoints: PRODUCT_ENTRIES });
    const run = (args: string[], env: Record<string, string> = {}) =>
      spawnSync(process.execPath, [entries.tether!, ...args], { encoding: "utf8", timeout: 30_000, env: { ...process.env, ...env } });
    const help = run(["--help"]);
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^\s+proxy\s+run the tether sidecar proxy/m);
    const proxy = run(["proxy"], { TETHER_POD_NAME: "" });
    assert.equal(proxy.status, 1);
    assert.match(proxy.stderr, /TETHER_POD_NAME is not set.*\[PROXY_CONFIG_INVALID\]/s);
  });

  it("is rebuilt when a source it was built from changes, and only then", async () => {
    const src = join(scratch, "fixture");
    mkdirSync(src, { recursive: true });
    const entryFile = join(src, "entry.ts");
    writeFileSync(entryFile, `export const answer: number = 1;\nconsole.log(new URL(".", import.meta.url).pathname);\n`);
    const target = { outdir: join(scratch, "fixture-out"), entryPoints: { fixture: entryFile.replace(`${ROOT}/`, "") } };
    // (an edit within moments of a build counts as possibly missed by it: let the clock move on)
    const settle = () => new Promise((r) => setTimeout(r, 100));
    await settle();
    assert.match((await staleReason(target)) ?? "", /has not been built/);
    const first = await ensureBuilt(target);
    assert.equal(await staleReason(target), undefined);
    // import.meta.url is the source file's, wherever the output sits.
    assert.equal(spawnSync(process.execPath, [first.fixture!], { encoding: "utf8" }).stdout.trim(), `${src}/`);

    writeFileSync(entryFile, `console.log("second");\n`);
    assert.match((await staleReason(target)) ?? "", /entry\.ts changed/);
    await settle();
    await ensureBuilt(target);
    assert.equal(await staleReason(target), undefined);
    assert.equal(spawnSync(process.execPath, [first.fixture!], { encoding: "utf8" }).stdout.trim(), "second");
  });
});
