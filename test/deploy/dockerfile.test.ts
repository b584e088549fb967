import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

interface Instruction {
  op: string;
  args: string;
  line: number;
}

/** Dockerfile instructions with continuation lines joined and comments dropped. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.trim();
    const start = i + 1;
    if (!line || line.startsWith("#")) continue;
    while (line.endsWith("\\") && i + 1 < lines.length) line = line.slice(0, -1) + " " + lines[++i]!.trim();
    const m = /^(\w+)\s+(.*)$/.exec(line);
    assert.ok(m, `line ${start}: not an instruction: ${line}`);
    out.push({ op: m[1]!.toUpperCase(), args: m[2]!, line: start });
  }
  return out;
}

const KNOWN = new Set(["FROM", "ARG", "RUN", "COPY", "WORKDIR", "ENV", "USER", "ENTRYPOINT", "CMD", "LABEL", "EXPOSE"]);

describe("Dockerfile", () => {
  const instructions = parseDockerfile(readFileSync(join(ROOT, "Dockerfile"), "utf8"));
  const stages: { name: string; from: string; body: Instruction[] }[] = [];
  const args = new Map<string, string>();
  for (const ins of instructions) {
    assert.ok(KNOWN.has(ins.op), `line ${ins.line}: unexpected instruction ${ins.op}`);
    if (ins.op === "FROM") {
      const m = /^(\S+)\s+AS\s+(\S+)$/i.exec(ins.args);
      assert.ok(m, `line ${ins.line}: every stage is named (FROM image AS name)`);
      stages.push({ name: m[2]!, from: m[1]!.replace(/\$\{(\w+)\}/g, (_x, a) => args.get(a) ?? ""), body: [] });
    } else if (stages.length === 0) {
      assert.equal(ins.op, "ARG", "only ARG may come before the first FROM");
      const [k, v] = ins.args.split("=");
      args.set(k!, v ?? "");
    } else stages.at(-1)!.body.push(ins);
  }
  const final = stages.at(-1)!;

  it("is multi-stage with a small Node base pinned to a version", () => {
    assert.ok(stages.length >= 2);
    for (const s of stages) {
      assert.match(s.from, /^node:\d+(\.\d+)*-[a-z]+-slim$/, `stage ${s.name} uses a pinned slim Node image, not ${s.from}`);
      assert.doesNotMatch(s.from, /:latest$/);
    }
  });

  it("installs only production dependencies, reproducibly, outside the final stage", () => {
    const install = stages.flatMap((s) => s.body.filter((i) => i.op === "RUN" && /npm (ci|install)/.test(i.args)).map((i) => ({ stage: s.name, i })));
    assert.ok(install.length > 0);
    for (const { stage, i } of install) {
      assert.notEqual(stage, final.name, "npm runs in a build stage");
      assert.match(i.args, /npm ci\b/, "npm ci (lockfile), not npm install");
      assert.match(i.args, /--omit=dev/);
    }
    assert.ok(final.body.some((i) => i.op === "COPY" && /--from=\S+\s+\S*node_modules/.test(i.args)), "the final stage copies node_modules from a build stage");
  });

  it("runs as a non-root numeric user, with an exec-form entrypoint to the compiled tether CLI", () => {
    const users = final.body.filter((i) => i.op === "USER");
    assert.equal(users.length, 1);
    assert.match(users[0]!.args, /^[1-9]\d*(:[1-9]\d*)?$/, "numeric, non-zero uid (runAsNonRoot can verify it)");
    const lastUser = final.body.indexOf(users[0]!);
    assert.ok(final.body.slice(lastUser).every((i) => i.op !== "RUN"), "nothing runs as root after USER");
    const entry = final.body.find((i) => i.op === "ENTRYPOINT");
    assert.ok(entry);
    const argv = JSON.parse(entry.args) as string[];
    assert.equal(argv[0], "node");
    assert.match(argv[1]!, /\/dist\/tether\.mjs$/);
  });

  it("copies only files that exist, and no secrets or tests", () => {
    for (const s of stages) {
      for (const i of s.body.filter((x) => x.op === "COPY" && !x.args.includes("--from="))) {
        const sources = i.args.split(/\s+/).slice(0, -1);
        for (const src of sources) {
          assert.ok(existsSync(join(ROOT, src)), `line ${i.line}: ${src} exists in the repository`);
          assert.doesNotMatch(src, /^(test|\.git|\.env|node_modules)/, `line ${i.line}: ${src} does not belong in the image`);
        }
      }
      assert.ok(!s.body.some((i) => i.op === "ADD"), "COPY, never ADD (no remote URLs or tar surprises)");
    }
    const ignore = readFileSync(join(ROOT, ".dockerignore"), "utf8").split("\n");
    for (const entry of ["node_modules", ".git", "test"]) assert.ok(ignore.includes(entry), `.dockerignore lists ${entry}`);
  });

  it("has iptables for tether proxy-init", () => {
    assert.ok(final.body.some((i) => i.op === "RUN" && /apt-get install[^&]*\biptables\b/.test(i.args) && /rm -rf \/var\/lib\/apt\/lists/.test(i.args)));
  });

  it("compiles the CLI in a build stage and runs it without a TypeScript loader", () => {
    const build = stages.find((s) => s !== final && s.body.some((i) => i.op === "RUN" && /node scripts\/build\.mjs/.test(i.args)));
    assert.ok(build, "a build stage runs scripts/build.mjs");
    assert.ok(final.body.some((i) => i.op === "COPY" && new RegExp(`--from=${build.name}\\s+\\S*/dist\\s`).test(i.args)), "the final stage copies dist/ from it");
    assert.ok(!final.body.some((i) => i.op === "COPY" && !i.args.includes("--from=") && /^(src|bin)\b/.test(i.args)), "no TypeScript sources from the context");
    assert.ok(!final.body.some((i) => i.op === "ENV" && /TSX_/.test(i.args)), "tsx does not run in the image");
  });
});
