/**
 * Runs h2load (Debian's nghttp2-client) with gRPC-shaped requests (POST, application/grpc,
 * te: trailers, a 5-byte empty message) and reads what it measured: its summary for throughput
 * and failures, and the per-request log (`--log-file`) for latency percentiles, which h2load's
 * own summary (min/max/mean/sd) does not give.
 */
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface LoadResult {
  requestsPerSecond: number;
  succeeded: number;
  failed: number;
  /** Percentiles of request latency (request sent to response end), ms. */
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

export type LoadShape =
  /** `clients` connections each sending `perClientRps` requests per second, one at a time. */
  | { kind: "rate"; clients: number; perClientRps: number; seconds: number }
  /** As fast as it goes: `clients` connections with `streams` concurrent streams each. */
  | { kind: "saturate"; clients: number; streams: number; seconds: number };

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: Float64Array | number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil(q * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))]!;
}

/** Parses h2load's summary ("finished in …, N req/s" and the "requests:" line). */
export function parseSummary(out: string): { requestsPerSecond: number; succeeded: number; failed: number } {
  const rps = /finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out);
  const req = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  if (!rps || !req) throw new Error(`unexpected h2load output:\n${out}`);
  return {
    requestsPerSecond: Number(rps[1]),
    succeeded: Number(req[1]),
    failed: Number(req[2]) + Number(req[3]) + Number(req[4]),
  };
}

/** Latencies (ms, ascending) of the successful rows of an h2load log: start_us, status, duration_us. */
export function parseLog(text: string): Float64Array {
  const values: number[] = [];
  for (const line of text.split("\n")) {
    const [, status, duration] = line.split("\t");
    if (status === undefined || duration === undefined) continue;
    if (Number(status) >= 200 && Number(status) < 300) values.push(Number(duration) / 1000);
  }
  return Float64Array.from(values).sort();
}

export async function writeGrpcBody(dir: string): Promise<string> {
  const path = join(dir, "grpc-request.bin");
  await writeFile(path, Buffer.from([0, 0, 0, 0, 0]));
  return path;
}

export function h2loadArgs(url: string, shape: LoadShape, bodyPath: string, logPath: string): string[] {
  const common = ["-H", "content-type: application/grpc", "-H", "te: trailers", "-d", bodyPath, "--log-file", logPath, "-D", String(shape.seconds)];
  const load =
    shape.kind === "rate"
      ? ["-c", String(shape.clients), "-m", "1", "--rps", String(shape.perClientRps)]
      : ["-c", String(shape.clients), "-m", String(shape.streams)];
  return [...load, ...common, url];
}

/** Runs h2load to completion. `onChild` receives its pid so the caller can stop it on Ctrl-C. */
export async function runLoad(url: string, shape: LoadShape, bodyPath: string, logPath: string, onChild?: (kill: () => void) => void): Promise<LoadResult> {
  const args = h2loadArgs(url, shape, bodyPath, logPath);
  const out = await new Promise<string>((resolve, reject) => {
    const child = execFile("h2load", args, { timeout: (shape.seconds + 30) * 1000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`h2load ${args.join(" ")} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
    onChild?.(() => child.kill("SIGKILL"));
  });
  const summary = parseSummary(out);
  const latencies = parseLog(await readFile(logPath, "utf8"));
  return {
    ...summary,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    p999: percentile(latencies, 0.999),
    max: latencies.length ? latencies[latencies.length - 1]! : NaN,
  };
}
