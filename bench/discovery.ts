/**
 * Discovery fan-out: the time from one cluster change (one endpoint turning unready or ready
 * again) until every subscriber of the Service has received the update, over in-process gRPC on
 * loopback, for 10-5000 subscribers and Services of 10-1000 endpoints.
 *
 * Subscribers run in a worker thread (the other core), each with its own stream over 1-25
 * connections; the figure still includes their decoding. `server` is the server's own compute +
 * serialize + write time per change (tether_destination_fanout_seconds).
 *
 * Usage: npm run bench -- discovery [--quick] [--rounds=N]
 */
import { once } from "node:events";
import { Worker } from "node:worker_threads";
import type { Pod } from "kubernetes-types/core/v1.js";
import { pino } from "pino";
import { PROXY_CONTAINER_NAME } from "../src/api/mesh.js";
import { MemoryCluster } from "../src/cluster/memory.js";
import { endpointSlicesFor } from "../src/discovery/slice-controller.js";
import { startDestinationServer } from "../src/discovery/server.js";

const logger = pino({ level: "silent" });

function pod(i: number, ready: boolean): Pod {
  const ip = `10.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
  return {
    metadata: { name: `web-${i}`, namespace: "bench", labels: { app: "web" } },
    spec: { serviceAccountName: "web", containers: [{ name: "app" }, { name: PROXY_CONTAINER_NAME }] },
    status: { phase: "Running", podIP: ip, podIPs: [{ ip }], conditions: [{ type: "Ready", status: ready ? "True" : "False" }] },
  };
}

const service = {
  metadata: { name: "web", namespace: "bench" },
  spec: { clusterIP: "10.96.0.1", selector: { app: "web" }, ports: [{ name: "grpc", port: 80, targetPort: 8080, protocol: "TCP" }] },
};

/** Re-derives the Service's EndpointSlices as the controller would after a pod change. */
function syncSlices(cluster: MemoryCluster): void {
  for (const s of endpointSlicesFor(service, cluster.list("Pod", "bench"))) cluster.apply("EndpointSlice", s);
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

interface Row {
  subscribers: number;
  endpoints: number;
  connectMs: number;
  p50: number;
  p90: number;
  max: number;
  serverMs: number;
}

/** Waits for the worker's next message of `type`. */
function next(worker: Worker, type: string): Promise<{ at?: number }> {
  return new Promise((resolve, reject) => {
    const onMessage = (msg: { type: string; at?: number; message?: string }) => {
      if (msg.type === "error") {
        cleanup();
        reject(new Error(`subscriber failed: ${msg.message}`));
      } else if (msg.type === type) {
        cleanup();
        resolve(msg);
      }
    };
    const onError = (err: Error) => (cleanup(), reject(err));
    const cleanup = () => {
      worker.off("message", onMessage);
      worker.off("error", onError);
    };
    worker.on("message", onMessage);
    worker.on("error", onError);
  });
}

const now = () => performance.timeOrigin + performance.now();

async function measure(subscribers: number, endpoints: number, rounds: number): Promise<Row> {
  const cluster = new MemoryCluster();
  cluster.apply("Service", service);
  for (let i = 0; i < endpoints; i++) cluster.apply("Pod", pod(i, true));
  syncSlices(cluster);
  const server = await startDestinationServer({ cluster, listen: "127.0.0.1:0", logger });
  const connections = Math.max(1, Math.min(25, Math.ceil(subscribers / 200)));

  // Node 20 workers do not inherit the TypeScript loader: register it, then load the worker.
  const script = new URL("./_discovery-clients.ts", import.meta.url).href;
  const worker = new Worker(`import("tsx/esm/api").then((tsx) => { tsx.register(); return import(${JSON.stringify(script)}); });`, {
    eval: true,
    workerData: { address: server.address, path: "web.bench.svc.cluster.local:80", subscribers, connections },
  });
  await next(worker, "loaded");
  const started = now();
  worker.postMessage({ type: "start" });
  const { at: connectedAt } = await next(worker, "received");
  const connectMs = connectedAt! - started;

  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    worker.postMessage({ type: "expect", count: subscribers });
    await next(worker, "armed");
    const received = next(worker, "received");
    const t0 = now();
    // Alternate: endpoint 0 turns unready (a remove), then ready (an add).
    cluster.apply("Pod", pod(0, r % 2 === 1));
    syncSlices(cluster);
    times.push((await received).at! - t0);
  }
  const hist = (await server.metrics.fanoutSeconds.get()).values;
  const sum = hist.find((v) => v.metricName?.endsWith("_sum"))?.value ?? 0;
  const count = hist.find((v) => v.metricName?.endsWith("_count"))?.value ?? 1;

  worker.postMessage({ type: "close" });
  await once(worker, "exit");
  await server.close();
  times.sort((a, b) => a - b);
  return { subscribers, endpoints, connectMs, p50: quantile(times, 0.5), p90: quantile(times, 0.9), max: times.at(-1)!, serverMs: (sum / count) * 1000 };
}

function table(rows: Row[]): string {
  const header = ["subscribers", "endpoints", "connect all (ms)", "fan-out p50 (ms)", "p90 (ms)", "max (ms)", "per subscriber (µs)", "server (ms)"];
  const body = rows.map((r) => [
    String(r.subscribers),
    String(r.endpoints),
    r.connectMs.toFixed(0),
    r.p50.toFixed(2),
    r.p90.toFixed(2),
    r.max.toFixed(2),
    ((r.p50 * 1000) / r.subscribers).toFixed(1),
    r.serverMs.toFixed(2),
  ]);
  const all = [header, ...body];
  const widths = header.map((_, i) => Math.max(...all.map((row) => row[i]!.length)));
  return all.map((row) => row.map((c, i) => c.padStart(widths[i]!)).join("  ")).join("\n");
}

export async function run(args: string[]): Promise<void> {
  const quick = args.includes("--quick");
  const roundsArg = args.find((a) => a.startsWith("--rounds="));
  const rounds = roundsArg ? Math.max(1, Number(roundsArg.slice("--rounds=".length)) || 1) : quick ? 5 : 21;
  const subscriberCounts = quick ? [10, 100, 1000] : [10, 100, 1000, 5000];
  const endpointCounts = [10, 100, 1000];
  console.log(`discovery fan-out: one endpoint change -> all subscribers received (${rounds} rounds each, gRPC on loopback, subscribers in a worker thread)`);
  const rows: Row[] = [];
  for (const endpoints of endpointCounts) {
    for (const subscribers of subscriberCounts) {
      rows.push(await measure(subscribers, endpoints, rounds));
      process.stdout.write(".");
    }
  }
  process.stdout.write("\n");
  console.log(table(rows));
}
