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
 * Usage: npm run bench -- proxy [--quick] [--profile]
 *   --quick    shorter phases (~30 s in all)
 *   --profile  tether only, proxies under `node --cpu-prof`: prints the hot spots (the figures of
 *              that run carry the profiler's overhead and are not the benchmark's)
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { once } from "node:events";
import { pino } from "pino";
import { createCertifyClient } from "../src/api/identity-client.js";
import { bootstrapCa } from "../src/ca/bootstrap.js";
import { startIdentityCa, type IdentityCa } from "../src/ca/server.js";
import { jwksTokenValidator } from "../src/ca/tokens.js";
import { CertificateAgent } from "../src/identity/agent.js";
import { systemClock } from "../src/identity/clock.js";
import { toDnsName, workloadIdentity } from "../src/identity/names.js";
import type { Credentials } from "../src/identity/tls.js";
import { ServiceAccountTokenIssuer } from "../src/local/service-account-tokens.js";
import type { ChildConfig } from "./_proxy-child.js";
import { haproxyAConfig, haproxyBConfig, type HaproxyPair } from "./_proxy-haproxy.js";
import { runLoad, writeGrpcBody, type LoadResult, type LoadShape } from "./_proxy-h2load.js";
import { analyse, readProfiles } from "./_proxy-profile.js";
import { Children, freePort, sampleProc, waitForPort, type Started } from "./_proxy-procs.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..") + "/";
const NAMESPACE = "bench";
const SERVICE = { address: "10.96.0.10", port: 50051 };
const RATE = { clients: 10, perClientRps: 100 }; // 1000 req/s
const SATURATION = { clients: 16, streams: 16 };
const GOALS = { addedP99Ms: 1, throughputVsHaproxy: 0.5, rssMb: 60 };

interface ProcFigures {
  name: string;
  cpuPer10kAtRate: number;
  cpuPer10kAtSaturation: number;
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

async function issueCredentials(ca: IdentityCa, anchorsPem: string, tokens: ServiceAccountTokenIssuer, dir: string, sa: string): Promise<Credentials> {
  const tokenFile = join(dir, `token-${sa}`);
  await writeFile(tokenFile, await tokens.mint({ namespace: NAMESPACE, serviceAccount: sa }));
  const client = createCertifyClient({ address: ca.address, anchorsPem, serverName: ca.serverName });
  const agent = new CertificateAgent({ identity: workloadIdentity(sa, NAMESPACE), tokenFile, certify: (req) => client.certify(req), clock: systemClock });
  try {
    const got = once(agent, "certificate") as Promise<[Credentials]>;
    agent.start();
    return (await got)[0];
  } finally {
    agent.stop();
    client.close();
  }
}

function checkHaproxyConfig(path: string): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile("haproxy", ["-c", "-q", "-f", path], (err, stdout, stderr) => (err ? reject(new Error(`haproxy rejects ${path}: ${stderr || stdout}`)) : resolve())),
  );
}

export async function run(args: string[]): Promise<void> {
  const quick = args.includes("--quick");
  const profile = args.includes("--profile");
  const seconds = quick ? { warm: 1, rate: 5, saturation: 5 } : { warm: 3, rate: 10, saturation: 10 };
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
  let ca: IdentityCa | undefined;
  try {
    // A real identity CA; every certificate below (tether's and HAProxy's) comes from it.
    const paths = await bootstrapCa({ dir: join(dir, "ca"), trustDomain: "cluster.local" });
    const anchorsPem = await readFile(paths.anchorsPath, "utf8");
    const tokens = await ServiceAccountTokenIssuer.create();
    ca = await startIdentityCa({
      issuerDir: paths.issuerDir,
      anchorsPath: paths.anchorsPath,
      trustDomain: "cluster.local",
      lifetimeMs: 24 * 3600 * 1000,
      clockSkewMs: 20_000,
      tokenValidator: jwksTokenValidator({ jwks: tokens.jwks(), issuer: tokens.issuer }),
      listen: { host: "127.0.0.1", port: 0 },
      clock: systemClock,
      logger: pino({ level: "silent" }),
    });
    const caRef = { address: ca.address, serverName: ca.serverName, anchorsPath: paths.anchorsPath };

    const node = (script: string, nodeFlags: string[] = [], extra: string[] = []) => [...nodeFlags, "--import", "tsx", join(here, script), ...extra];
    const server = await children.start("server", process.execPath, node("_proxy-server.ts"), { announcesPort: true });

    // tether: inbound in front of the server, outbound pointing at it through static discovery.
    const profFlags = profile ? (await mkdir(profDir, { recursive: true }), ["--cpu-prof", `--cpu-prof-dir=${profDir}`]) : [];
    const child = async (name: string, config: Omit<ChildConfig, "tokenFile" | "ca" | "namespace">): Promise<Started> => {
      const tokenFile = join(dir, `token-${config.serviceAccount}`);
      await writeFile(tokenFile, await tokens.mint({ namespace: NAMESPACE, serviceAccount: config.serviceAccount }));
      const full: ChildConfig = { ...config, tokenFile, ca: caRef, namespace: NAMESPACE };
      return children.start(name, process.execPath, node("_proxy-child.ts", profFlags, [JSON.stringify(full)]), { announcesPort: true });
    };
    const inbound = await child("tether-inbound", { direction: "inbound", serviceAccount: "echo", appPort: server.port });
    const outbound = await child("tether-outbound", {
      direction: "outbound",
      serviceAccount: "client",
      service: SERVICE,
      endpoint: { port: inbound.port, identity: toDnsName(workloadIdentity("echo", NAMESPACE)) },
    });

    const paths3: { name: string; port: number; procs: Started[] }[] = [];
    if (!profile) {
      // HAProxy: same CA, same kind of keys; B's identity name plays the role of tether's SNI.
      const [aCreds, bCreds] = [
        await issueCredentials(ca, anchorsPem, tokens, dir, "haproxy-a"),
        await issueCredentials(ca, anchorsPem, tokens, dir, "haproxy-b"),
      ];
      const pair: HaproxyPair = {
        aPort: await freePort(),
        bPort: await freePort(),
        serverPort: server.port,
        anchorsPath: paths.anchorsPath,
        aPemPath: join(dir, "haproxy-a.pem"),
        bPemPath: join(dir, "haproxy-b.pem"),
        bName: bCreds.dnsName,
      };
      await writeFile(pair.aPemPath, aCreds.certChainPem + aCreds.keyPem, { mode: 0o600 });
      await writeFile(pair.bPemPath, bCreds.certChainPem + bCreds.keyPem, { mode: 0o600 });
      const starts: Started[] = [];
      for (const [name, config, port] of [
        ["haproxy-b", haproxyBConfig(pair), pair.bPort],
        ["haproxy-a", haproxyAConfig(pair), pair.aPort],
      ] as const) {
        const cfg = join(dir, `${name}.cfg`);
        await writeFile(cfg, config);
        await checkHaproxyConfig(cfg);
        const started = await children.start(name, "haproxy", ["-db", "-f", cfg], { announcesPort: false });
        await waitForPort(port, 5000, children.process(name)).catch((err: Error) => {
          throw new Error(`${name}: ${err.message}; stderr: ${children.stderrOf(name)}`);
        });
        starts.push({ ...started, port });
      }
      paths3.push({ name: "direct", port: server.port, procs: [] });
      paths3.push({ name: "tether", port: outbound.port, procs: [outbound, inbound] });
      paths3.push({ name: "haproxy", port: pair.aPort, procs: [starts[1]!, starts[0]!] });
    } else {
      paths3.push({ name: "tether", port: outbound.port, procs: [outbound, inbound] });
    }

    const body = await writeGrpcBody(dir);
    const load = (port: number, shape: LoadShape, tag: string) =>
      runLoad(`http://127.0.0.1:${port}/bench.Echo/Call`, shape, body, join(dir, `${tag}.log`), (kill) => (stopLoad = kill));

    const results: PathFigures[] = [];
    for (const path of paths3) {
      const watched = [...path.procs, server];
      process.stderr.write(`bench proxy: ${path.name}: warm-up, ${RATE.clients * RATE.perClientRps} req/s for ${seconds.rate} s, saturation for ${seconds.saturation} s\n`);
      await load(path.port, { kind: "saturate", clients: 4, streams: 4, seconds: seconds.warm }, `${path.name}-warm`);
      const before = watched.map((p) => sampleProc(p.pid));
      const rate = await load(path.port, { kind: "rate", ...RATE, seconds: seconds.rate }, `${path.name}-rate`);
      const middle = watched.map((p) => sampleProc(p.pid));
      const saturation = await load(path.port, { kind: "saturate", ...SATURATION, seconds: seconds.saturation }, `${path.name}-saturation`);
      const after = watched.map((p) => sampleProc(p.pid));
      results.push({
        name: path.name,
        rate,
        saturation,
        procs: watched.map((p, i) => ({
          name: p.name,
          cpuPer10kAtRate: ((middle[i]!.cpuSeconds - before[i]!.cpuSeconds) / rate.succeeded) * 10_000,
          cpuPer10kAtSaturation: ((after[i]!.cpuSeconds - middle[i]!.cpuSeconds) / saturation.succeeded) * 10_000,
          coreAtRate: (100 * (middle[i]!.cpuSeconds - before[i]!.cpuSeconds)) / seconds.rate,
          peakRssMb: after[i]!.peakRssMb,
        })),
      });
    }

    printReport(results, { quick, profile, seconds });
    if (profile) {
      await children.stop("tether-outbound");
      await children.stop("tether-inbound");
      await printProfiles(profDir, new Map([outbound, inbound].map((p) => [p.pid, p.name])));
    }
  } finally {
    stopLoad?.();
    await children.stopAll();
    await ca?.close();
    await rm(dir, { recursive: true, force: true });
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.off("exit", onExit);
  }
}

function printReport(results: PathFigures[], o: { quick: boolean; profile: boolean; seconds: { rate: number; saturation: number } }): void {
  const rateLabel = `${RATE.clients * RATE.perClientRps} req/s (${RATE.clients} conns x ${RATE.perClientRps}/s, ${o.seconds.rate} s)`;
  const satLabel = `saturation (${SATURATION.clients} conns x ${SATURATION.streams} streams, ${o.seconds.saturation} s)`;
  console.log(`\nproxy: one hop, h2load -> gRPC-like HTTP/2 server on 127.0.0.1, ${new Date().toISOString()}${o.profile ? " [UNDER PROFILER]" : ""}`);
  console.log(`fixed rate: ${rateLabel}; ${satLabel}; latency in ms (h2load: request start to response end)\n`);
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
  const procHeader = ["path", "process", "CPU s/10k @rate", "core % @rate", "CPU s/10k @sat", "peak RSS MB"];
  const procRows = results.flatMap((r) =>
    r.procs.map((p) => [r.name, p.name, fmt(p.cpuPer10kAtRate, 3), fmt(p.coreAtRate, 1), fmt(p.cpuPer10kAtSaturation, 3), fmt(p.peakRssMb, 1)]),
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
  // Each proxy wrote its profile on exit, named CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile.
  for (const { file, profile } of await readProfiles(profDir)) {
    const { self, projectInclusive, busyPercent } = analyse(profile, root, 15);
    const name = names.get(Number(file.split(".")[3])) ?? "";
    console.log(`\nprofile ${name} ${file} (busy ${fmt(busyPercent, 0)}% of samples; shares below are of busy samples)`);
    console.log("  self time:");
    for (const h of self) console.log(`    ${fmt(h.percent, 1).padStart(5)}%  ${h.frame}`);
    console.log("  inclusive time, project code:");
    for (const h of projectInclusive) console.log(`    ${fmt(h.percent, 1).padStart(5)}%  ${h.frame}`);
  }
}
