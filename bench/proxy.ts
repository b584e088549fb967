/**
 * One tether hop against no proxy and against an HAProxy pair, in one run, with h2load against
 * the same gRPC-like HTTP/2 server (bench/_proxy-server.ts):
 *
 *   direct:  h2load -> server
 *   tether:  h2load (h2c) -> outbound proxy -> mTLS -> inbound proxy -> server
 *   haproxy: h2load (h2c) -> haproxy A -> mTLS -> haproxy B -> server
 *
 * Every proxy, HAProxy and the server run in their own process, so their CPU time and memory
 * come from /proc. For each path: latency percentiles at a fixed 1000 req/s, then throughput at
 * saturation; per proxy process: CPU seconds per 10k requests and peak RSS.
 *
 * The tether proxies run as shipped: compiled by scripts/build.mjs, with the node flags and V8
 * heap of the injected proxy container (see bench/_proxy-topology.ts).
 *
 * Usage: npm run bench -- proxy [--quick] [--profile] [--tsx]
 *   --quick    shorter phases (~30 s in all)
 *   --profile  tether only, proxies under `node --cpu-prof`: prints the hot spots (the figures of
 *              that run carry the profiler's overhead and are not the benchmark's)
 *   --tsx      proxies run from the TypeScript through tsx, without the proxy's node flags (as in
 *              development; not what ships), to compare
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { runLoad, writeGrpcBody, type LoadResult, type LoadShape } from "./_proxy-h2load.js";
import { analyse, readProfiles } from "./_proxy-profile.js";
import { Children, sampleProc, type Started } from "./_proxy-procs.js";
import { startTopology, type Topology } from "./_proxy-topology.js";
import { PROXY_UNCONTAINED_NODE_OPTIONS } from "../src/api/mesh.js";
import type { Tool } from "./_tools.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..") + "/";
const RATE = { clients: 10, perClientRps: 100 }; // 1000 req/s
const SATURATION = { clients: 16, streams: 16 };
const GOALS = { addedP99Ms: 1, throughputVsHaproxy: 0.5, rssMb: 60 };

interface ProcFigures {
  name: string;
  cpuPer10kAtRate: number;
  cpuPer10kAtSaturation: number;
  /** Resident set once started, before any load, MB. */
  idleRssMb: number;
  /** CPU used at the fixed rate as a share of one core, %. */
  coreAtRate: number;
  peakRssMb: number;
}

interface PathFigures {
  name: string;
  rate: LoadResult;
  saturation: LoadResult;
  procs: ProcFigures[];
}

const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : "-");

/** HAProxy is the baseline pair; h2load makes the load. */
export const tools: readonly Tool[] = [
  { command: "haproxy", debianPackage: "haproxy" },
  { command: "h2load", debianPackage: "nghttp2-client" },
];

export async function run(args: string[]): Promise<void> {
  const quick = args.includes("--quick");
  const profile = args.includes("--profile");
  const tsx = args.includes("--tsx");
  const seconds = quick ? { warm: 1, rate: 4, saturation: 4 } : { warm: 3, rate: 10, saturation: 10 };
  const dir = await mkdtemp(join(tmpdir(), "tether-bench-proxy-"));
  const profDir = join(dir, "profiles");
  const children = new Children();
  let stopLoad: (() => void) | undefined;
  const onSignal = () => {
    stopLoad?.();
    children.killAllNow();
    rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  };
  const onExit = () => children.killAllNow();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  process.once("exit", onExit);
  let topology: Topology | undefined;
  try {
    if (profile) await mkdir(profDir, { recursive: true });
    topology = await startTopology({ dir, children, withHaproxy: !profile, tsx, nodeFlags: profile ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : [] });
    const { server, outbound, inbound, haproxy } = topology;
    const paths: { name: string; port: number; procs: Started[] }[] = [];
    if (haproxy) paths.push({ name: "direct", port: server.port, procs: [] });
    paths.push({ name: "tether", port: outbound.port, procs: [outbound, inbound] });
    if (haproxy) paths.push({ name: "haproxy", port: haproxy.a.port, procs: [haproxy.a, haproxy.b] });

    // Before any load: what each process costs just by running.
    const idleRss = new Map([server, outbound, inbound, ...(haproxy ? [haproxy.a, haproxy.b] : [])].map((p) => [p.pid, sampleProc(p.pid).rssMb]));
    const body = await writeGrpcBody(dir);
    const load = (port: number, shape: LoadShape, tag: string) =>
      runLoad(`http://127.0.0.1:${port}/bench.Echo/Call`, shape, body, join(dir, `${tag}.log`), (kill) => (stopLoad = kill));

    // The machine may be shared: say how busy it was, since throughput depends on it.
    const loadBefore = loadavg()[0]!;
    const results: PathFigures[] = [];
    for (const path of paths) {
      const watched = [...path.procs, server];
      process.stderr.write(`bench proxy: ${path.name}: warm-up, ${RATE.clients * RATE.perClientRps} req/s for ${seconds.rate} s, saturation for ${seconds.saturation} s\n`);
      await load(path.port, { kind: "saturate", clients: 4, streams: 4, seconds: seconds.warm }, `${path.name}-warm`);
      const served = async () => (await children.ask("server", "SIGUSR1")).served as number;
      const before = watched.map((p) => sampleProc(p.pid));
      const served0 = await served();
      const rate = await load(path.port, { kind: "rate", ...RATE, seconds: seconds.rate }, `${path.name}-rate`);
      const middle = watched.map((p) => sampleProc(p.pid));
      const served1 = await served();
      const saturation = await load(path.port, { kind: "saturate", ...SATURATION, seconds: seconds.saturation }, `${path.name}-saturation`);
      const after = watched.map((p) => sampleProc(p.pid));
      const served2 = await served();
      // A proxy's own error answer (e.g. gRPC UNAVAILABLE) is a 2xx to h2load: count as failed
      // the successes the server never produced. (Calls cut at the end of a phase are served but
      // not counted by h2load, hence the clamp.)
      rate.failed += Math.max(0, rate.succeeded - (served1 - served0));
      saturation.failed += Math.max(0, saturation.succeeded - (served2 - served1));
      results.push({
        name: path.name,
        rate,
        saturation,
        procs: watched.map((p, i) => ({
          name: p.name,
          cpuPer10kAtRate: ((middle[i]!.cpuSeconds - before[i]!.cpuSeconds) / rate.succeeded) * 10_000,
          cpuPer10kAtSaturation: ((after[i]!.cpuSeconds - middle[i]!.cpuSeconds) / saturation.succeeded) * 10_000,
          idleRssMb: idleRss.get(p.pid) ?? NaN,
          coreAtRate: (100 * (middle[i]!.cpuSeconds - before[i]!.cpuSeconds)) / seconds.rate,
          peakRssMb: after[i]!.peakRssMb,
        })),
      });
    }

    printReport(results, { quick, profile, tsx, seconds, loadBefore });
    if (profile) {
      await children.stop("tether-outbound");
      await children.stop("tether-inbound");
      await printProfiles(profDir, new Map([outbound, inbound].map((p) => [p.pid, p.name])));
    }
  } finally {
    stopLoad?.();
    await children.stopAll();
    await topology?.close();
    await rm(dir, { recursive: true, force: true });
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.off("exit", onExit);
  }
}

function printReport(
  results: PathFigures[],
  o: { quick: boolean; profile: boolean; tsx: boolean; seconds: { rate: number; saturation: number }; loadBefore: number },
): void {
  const rateLabel = `${RATE.clients * RATE.perClientRps} req/s (${RATE.clients} conns x ${RATE.perClientRps}/s, ${o.seconds.rate} s)`;
  const satLabel = `saturation (${SATURATION.clients} conns x ${SATURATION.streams} streams, ${o.seconds.saturation} s)`;
  console.log(`\nproxy: one hop, h2load -> gRPC-like HTTP/2 server on 127.0.0.1, ${new Date().toISOString()}${o.profile ? " [UNDER PROFILER]" : ""}`);
  console.log(`fixed rate: ${rateLabel}; ${satLabel}; latency in ms (h2load: request start to response end)`);
  console.log("failed: h2load's failures plus 2xx answers the server never gave (a proxy's own error answer)");
  console.log(
    o.tsx
      ? "tether proxies: TypeScript through tsx, default node flags (--tsx: development, not what ships)"
      : `tether proxies: compiled (scripts/build.mjs), node ${PROXY_UNCONTAINED_NODE_OPTIONS.join(" ")} (the heap of a proxy container with the default 256Mi limit)`,
  );
  console.log(`machine: ${cpus().length} cores, 1-min load average ${fmt(o.loadBefore, 2)} before the run, ${fmt(loadavg()[0]!, 2)} after (anything above ~1 is someone else's work)\n`);
  const header = ["path", "p50", "p99", "p99.9", "failed", "sat req/s", "sat p50", "sat p99", "sat failed"];
  const rows = results.map((r) => [
    r.name,
    fmt(r.rate.p50, 3),
    fmt(r.rate.p99, 3),
    fmt(r.rate.p999, 3),
    String(r.rate.failed),
    fmt(r.saturation.requestsPerSecond, 0),
    fmt(r.saturation.p50, 2),
    fmt(r.saturation.p99, 2),
    String(r.saturation.failed),
  ]);
  printTable(header, rows);

  console.log("\nper process (the server is shared by every path):\n");
  const procHeader = ["path", "process", "CPU s/10k @rate", "core % @rate", "CPU s/10k @sat", "idle RSS MB", "peak RSS MB"];
  const procRows = results.flatMap((r) =>
    r.procs.map((p) => [r.name, p.name, fmt(p.cpuPer10kAtRate, 3), fmt(p.coreAtRate, 1), fmt(p.cpuPer10kAtSaturation, 3), fmt(p.idleRssMb, 1), fmt(p.peakRssMb, 1)]),
  );
  printTable(procHeader, procRows);

  const direct = results.find((r) => r.name === "direct");
  const tether = results.find((r) => r.name === "tether");
  const haproxy = results.find((r) => r.name === "haproxy");
  if (!tether) return;
  console.log("\ngoals:");
  const verdict = (ok: boolean) => (ok ? "met" : "NOT met");
  if (direct) {
    const added = tether.rate.p99 - direct.rate.p99;
    console.log(`  tether added p99 at 1000 req/s: ${fmt(added, 3)} ms (goal < ${GOALS.addedP99Ms} ms): ${verdict(added < GOALS.addedP99Ms)}`);
    if (haproxy) console.log(`  (haproxy pair added p99: ${fmt(haproxy.rate.p99 - direct.rate.p99, 3)} ms)`);
  }
  if (haproxy) {
    const ratio = tether.saturation.requestsPerSecond / haproxy.saturation.requestsPerSecond;
    console.log(`  tether / haproxy throughput at saturation: ${fmt(ratio, 2)} (goal >= ${GOALS.throughputVsHaproxy}): ${verdict(ratio >= GOALS.throughputVsHaproxy)}`);
  }
  const tetherProcs = tether.procs.filter((p) => p.name.startsWith("tether-"));
  const worstRss = Math.max(...tetherProcs.map((p) => p.peakRssMb));
  console.log(`  tether peak RSS per proxy: ${tetherProcs.map((p) => `${p.name} ${fmt(p.peakRssMb, 1)} MB`).join(", ")} (goal < ${GOALS.rssMb} MB): ${verdict(worstRss < GOALS.rssMb)}`);
  if (o.quick) console.log("  (--quick: short phases, p99.9 rests on few samples)");
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  console.log(line(header));
  for (const r of rows) console.log(line(r));
}

async function printProfiles(profDir: string, names: Map<number, string>): Promise<void> {
  // Each proxy wrote its profile when it exited.
  for (const { pid, profile } of await readProfiles(profDir)) {
    const { self, projectInclusive, busyPercent } = analyse(profile, root, 15);
    console.log(`\nprofile of ${names.get(pid) ?? pid} (busy ${fmt(busyPercent, 0)}% of samples; shares below are of busy samples)`);
    console.log("  self time:");
    for (const h of self) console.log(`    ${fmt(h.percent, 1).padStart(5)}%  ${h.frame}`);
    console.log("  inclusive time, project code:");
    for (const h of projectInclusive) console.log(`    ${fmt(h.percent, 1).padStart(5)}%  ${h.frame}`);
  }
}
