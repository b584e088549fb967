/**
 * Turns the outcome of one forwarded request into metrics. Shared by both directions so that
 * `tether stat` reads the same labels for inbound and outbound traffic.
 */
import type { Direction, ProxyMetrics } from "./metrics.js";

export interface RequestLabels {
  direction: Direction;
  /** Bounded by discovery: a Service name or address, never a raw client header. */
  authority: string;
  /** The verified peer identity (client on inbound, server on outbound), or "" when none. */
  peerIdentity: string;
  /** The pod that served the request (outbound), or "" (inbound: the pod is a default label). */
  dstPod: string;
  tls: boolean;
}

export interface RequestOutcome {
  status?: number;
  grpcStatus?: number;
  error?: string;
  latencyMs: number;
}

export function classify(outcome: RequestOutcome): "success" | "failure" {
  if (outcome.error && outcome.status === undefined && outcome.grpcStatus === undefined) return "failure";
  if (outcome.status !== undefined && outcome.status >= 500) return "failure";
  if (outcome.grpcStatus !== undefined && outcome.grpcStatus !== 0) return "failure";
  return "success";
}

/** The labelled series one label set writes to, looked up once (prom-client hashes labels on every call). */
interface RequestSeries {
  requests: { inc(): void };
  responses: Map<string, { inc(): void }>;
  latency: Map<string, { observe(seconds: number): void }>;
}

const seriesByMetrics = new WeakMap<ProxyMetrics, Map<string, RequestSeries>>();

function requestSeries(metrics: ProxyMetrics, labels: RequestLabels): RequestSeries {
  let byKey = seriesByMetrics.get(metrics);
  if (!byKey) seriesByMetrics.set(metrics, (byKey = new Map()));
  const key = `${labels.direction}\0${labels.authority}\0${labels.peerIdentity}\0${labels.dstPod}\0${labels.tls}`;
  let series = byKey.get(key);
  if (!series) {
    series = { requests: metrics.requests.labels(baseLabels(labels)), responses: new Map(), latency: new Map() };
    byKey.set(key, series);
  }
  return series;
}

function baseLabels(labels: RequestLabels) {
  return {
    direction: labels.direction,
    authority: labels.authority,
    peer_identity: labels.peerIdentity,
    dst_pod: labels.dstPod,
    tls: String(labels.tls),
  };
}

export function recordRequest(metrics: ProxyMetrics, labels: RequestLabels, outcome: RequestOutcome): void {
  const series = requestSeries(metrics, labels);
  const classification = classify(outcome);
  const status = outcome.status === undefined ? "" : String(outcome.status);
  const grpcStatus = outcome.grpcStatus === undefined ? "" : String(outcome.grpcStatus);
  series.requests.inc();
  const responseKey = `${status}\0${grpcStatus}\0${classification}`;
  let responses = series.responses.get(responseKey);
  if (!responses) {
    responses = metrics.responses.labels({ ...baseLabels(labels), status_code: status, grpc_status: grpcStatus, classification });
    series.responses.set(responseKey, responses);
  }
  responses.inc();
  let latency = series.latency.get(classification);
  if (!latency) {
    latency = metrics.responseLatency.labels({ direction: labels.direction, authority: labels.authority, dst_pod: labels.dstPod, classification });
    series.latency.set(classification, latency);
  }
  latency.observe(outcome.latencyMs / 1000);
}

export interface TcpLabels {
  direction: Direction;
  peer: string;
  tls: boolean;
}

/** Counts a connection open; the returned function counts its close with the bytes moved. */
export function recordTcpOpen(metrics: ProxyMetrics, labels: TcpLabels): (close: { bytesIn: number; bytesOut: number; error?: string }) => void {
  const base = { direction: labels.direction, peer: labels.peer, tls: String(labels.tls) };
  metrics.tcpOpens.inc(base);
  metrics.tcpOpenConnections.inc(base);
  let closed = false;
  return ({ bytesIn, bytesOut, error }) => {
    if (closed) return;
    closed = true;
    metrics.tcpOpenConnections.dec(base);
    metrics.tcpCloses.inc({ ...base, errno: error ?? "" });
    if (bytesIn) metrics.tcpBytes.inc({ ...base, way: "read" }, bytesIn);
    if (bytesOut) metrics.tcpBytes.inc({ ...base, way: "write" }, bytesOut);
  };
}
