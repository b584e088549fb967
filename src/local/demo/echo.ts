/**
 * The demo app: a gRPC server that answers with its replica name after an adjustable delay, and a
 * client that makes calls and records each one. Neither knows the mesh exists.
 */
import { readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const here = dirname(fileURLToPath(import.meta.url));
const definition = protoLoader.loadSync(join(here, "echo.proto"), { keepCase: false, defaults: true });
const EchoService = (grpc.loadPackageDefinition(definition) as any).tether.demo.v1.Echo as grpc.ServiceClientConstructor;

export interface EchoServerOptions {
  replica: string;
  host: string;
  port: number;
  /** A file holding the delay in milliseconds; re-read when it changes, so a test can slow a replica down live. */
  delayFile?: string;
  delayMs?: number;
}

/** Reads the delay file at most every 100 ms (cheap per call, live enough for experiments). */
function delaySource(options: EchoServerOptions): () => number {
  let cached = options.delayMs ?? 0;
  let checkedAt = 0;
  let mtime = 0;
  return () => {
    if (!options.delayFile) return cached;
    const now = Date.now();
    if (now - checkedAt < 100) return cached;
    checkedAt = now;
    try {
      const st = statSync(options.delayFile);
      if (st.mtimeMs !== mtime) {
        mtime = st.mtimeMs;
        const value = Number(readFileSync(options.delayFile, "utf8").trim());
        cached = Number.isFinite(value) && value >= 0 ? value : 0;
      }
    } catch {
      cached = options.delayMs ?? 0;
    }
    return cached;
  };
}

export async function startEchoServer(options: EchoServerOptions): Promise<{ port: number; close(): Promise<void> }> {
  const server = new grpc.Server();
  const delay = delaySource(options);
  const answer = (transform: (m: string) => string) => (call: grpc.ServerUnaryCall<{ message: string }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
    const reply = { message: transform(call.request.message), replica: options.replica };
    const ms = delay();
    if (ms > 0) setTimeout(() => callback(null, reply), ms);
    else callback(null, reply);
  };
  server.addService(EchoService.service, { say: answer((m) => m), shout: answer((m) => m.toUpperCase()) });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${options.host}:${options.port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    port,
    close: () => new Promise((resolve) => server.tryShutdown(() => resolve())),
  };
}

export interface CallRecord {
  /** Milliseconds since the run started, when the call began. */
  startMs: number;
  /** Wall-clock time (epoch ms) when the call began, to line calls up with events elsewhere. */
  atMs: number;
  latencyMs: number;
  replica: string | undefined;
  /** gRPC status code (0 = OK). */
  code: number;
  error?: string;
}

/** Client TLS for callers that bring their own certificate (e.g. an attacker with a foreign one). */
export interface EchoClientTls {
  caPem: string;
  certPem: string;
  keyPem: string;
  serverName: string;
}

export interface EchoClientOptions {
  target: string;
  method?: "say" | "shout";
  tls?: EchoClientTls;
  calls: number;
  concurrency: number;
  /** Pause between calls of one worker (0: back to back). */
  intervalMs?: number;
  deadlineMs?: number;
  onRecord?(record: CallRecord): void;
}

export async function runEchoClient(options: EchoClientOptions): Promise<CallRecord[]> {
  type Call = (
    request: { message: string },
    options: grpc.CallOptions,
    callback: (err: grpc.ServiceError | null, reply: { replica: string } | undefined) => void,
  ) => void;
  const { tls } = options;
  const credentials = tls
    ? grpc.credentials.createSsl(Buffer.from(tls.caPem), Buffer.from(tls.keyPem), Buffer.from(tls.certPem))
    : grpc.credentials.createInsecure();
  const channelOptions = tls ? { "grpc.ssl_target_name_override": tls.serverName, "grpc.default_authority": tls.serverName } : {};
  const client = new EchoService(options.target, credentials, channelOptions) as unknown as grpc.Client & Record<"say" | "shout", Call>;
  const method = options.method ?? "say";
  const records: CallRecord[] = [];
  const started = performance.now();
  let next = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      client[method](
        { message: "hello" },
        { deadline: Date.now() + (options.deadlineMs ?? 5000) },
        (err, reply) => {
          const record: CallRecord = {
            startMs: t0 - started,
            atMs: Date.now() - (performance.now() - t0),
            latencyMs: performance.now() - t0,
            replica: reply?.replica,
            code: err ? err.code : 0,
            ...(err ? { error: err.details || err.message } : {}),
          };
          records.push(record);
          options.onRecord?.(record);
          resolve();
        },
      );
    });
  const worker = async () => {
    while (next < options.calls) {
      next++;
      await one();
      if (options.intervalMs) await new Promise((r) => setTimeout(r, options.intervalMs));
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency) }, worker));
  client.close();
  return records;
}

export interface CallSummary {
  calls: number;
  failed: number;
  perReplica: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export function summarize(records: CallRecord[]): CallSummary {
  const perReplica: Record<string, number> = {};
  for (const r of records) if (r.code === 0 && r.replica) perReplica[r.replica] = (perReplica[r.replica] ?? 0) + 1;
  const latencies = records.filter((r) => r.code === 0).map((r) => r.latencyMs).sort((a, b) => a - b);
  return {
    calls: records.length,
    failed: records.filter((r) => r.code !== 0).length,
    perReplica,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}
