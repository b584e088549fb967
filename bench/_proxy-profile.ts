/**
 * Reads V8 CPU profiles (`node --cpu-prof`) of the proxy children and lists where the time went:
 * self time by function (what to optimise) and inclusive time of the project's own functions
 * (which of tether's code paths pays for it).
 */
import { readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
}

export interface HotSpot {
  frame: string;
  /** Share of all samples, 0-100. */
  percent: number;
}

/** Per bundle file: the first line of each source file's code (esbuild heads it with `// src/...`). */
const bundleSections = new Map<string, { line: number; source: string }[]>();

/** The source file a line of a file built by scripts/build.mjs came from (not minified: marked). */
function bundleSource(path: string, line: number): string | undefined {
  let sections = bundleSections.get(path);
  if (!sections) {
    sections = [];
    try {
      readFileSync(path, "utf8")
        .split("\n")
        .forEach((text, i) => {
          const m = /^\/\/ ((?:src|bench)\/\S+\.ts)$/.exec(text);
          if (m) sections!.push({ line: i, source: m[1]! });
        });
    } catch {
      // gone: frames keep the bundle's name
    }
    bundleSections.set(path, sections);
  }
  return sections.findLast((s) => s.line <= line)?.source;
}

/** A frame's file relative to `root` (a bundle's line mapped to its source file), and whether it is tether's code. */
function locate(cf: CallFrame, root: string): { file: string; project: boolean } {
  const path = cf.url.replace(/^file:\/\//, "");
  if (path.includes("/node_modules/")) return { file: path.replace(/^.*\/node_modules\//, "npm:"), project: false };
  const file = path.replace(root, "");
  if (file.startsWith("dist/") && file.endsWith(".mjs")) {
    const source = bundleSource(path, cf.lineNumber);
    return { file: source ? `${source} (${file}:${cf.lineNumber + 1})` : `${file}:${cf.lineNumber + 1}`, project: source?.startsWith("src/") ?? false };
  }
  // Files compiled by tsx report every function on line 1: a line number there would mislead.
  const line = file && cf.lineNumber > 0 ? `:${cf.lineNumber + 1}` : "";
  return { file: file ? `${file}${line}` : "", project: path.includes("/src/") };
}

function frameName(cf: CallFrame, root: string): string {
  return `${cf.functionName || "(anonymous)"} ${locate(cf, root).file || "(native)"}`;
}

/** Self and inclusive sample shares of one profile; `root` is stripped from file paths. */
export function analyse(profile: CpuProfile, root: string, top: number): { self: HotSpot[]; projectInclusive: HotSpot[]; busyPercent: number } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const total = profile.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0) || 1;
  const idle = profile.nodes.filter((n) => n.callFrame.functionName === "(idle)").reduce((s, n) => s + (n.hitCount ?? 0), 0);
  const self = new Map<string, number>();
  for (const n of profile.nodes) {
    if (!n.hitCount || n.callFrame.functionName === "(idle)") continue;
    const name = frameName(n.callFrame, root);
    self.set(name, (self.get(name) ?? 0) + n.hitCount);
  }
  // Inclusive: every frame on a sample's stack counts once per sample (recursion is not double-counted).
  const inclusive = new Map<string, number>();
  const walk = (id: number, onStack: Set<string>): number => {
    const node = byId.get(id)!;
    const name = frameName(node.callFrame, root);
    const fresh = !onStack.has(name);
    if (fresh) onStack.add(name);
    let hits = node.hitCount ?? 0;
    for (const child of node.children ?? []) hits += walk(child, onStack);
    if (fresh) {
      onStack.delete(name);
      if (locate(node.callFrame, root).project) inclusive.set(name, (inclusive.get(name) ?? 0) + hits);
    }
    return hits;
  };
  const rootNode = profile.nodes.find((n) => !profile.nodes.some((m) => m.children?.includes(n.id)));
  if (rootNode) walk(rootNode.id, new Set());
  const busy = total - idle || 1;
  const rank = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([frame, hits]) => ({ frame, percent: (100 * hits) / busy }));
  return { self: rank(self), projectInclusive: rank(inclusive), busyPercent: (100 * busy) / total };
}

/**
 * Main-thread profiles written in `dir` by processes that exited cleanly, with their pid. Node
 * names them CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; other threads (tsx's module
 * loader) are left out.
 */
export async function readProfiles(dir: string): Promise<{ pid: number; profile: CpuProfile }[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(".cpuprofile") && f.split(".")[4] === "0");
  return Promise.all(files.map(async (file) => ({ pid: Number(file.split(".")[3]), profile: JSON.parse(await readFile(join(dir, file), "utf8")) as CpuProfile })));
}
