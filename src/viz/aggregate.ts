/**
 * The figures operators read (success rate, request rate, latency percentiles, TCP connections,
 * mTLS share), per pod, workload or namespace, computed from windows (see window.ts). Pure: no
 * I/O, no clock; table-tested in test/viz/aggregate.test.ts.
 */
import type { Labels } from "./prom-text.js";
import type { PodRef, PodWindow } from "./window.js";

export const METRIC = {
  requests: "tether_proxy_requests_total",
  responses: "tether_proxy_responses_total",
  latencyBucket: "tether_proxy_response_latency_seconds_bucket",
  tcpOpen: "tether_proxy_tcp_open_total",
  tcpOpenConnections: "tether_proxy_tcp_open_connections",
  authorizations: "tether_proxy_inbound_authorizations_total",
  certExpiry: "tether_proxy_identity_cert_expiration_timestamp_seconds",
} as const;

export type Direction = "inbound" | "outbound";
export type GroupBy = "pod" | "deploy" | "ns";

export interface Bucket {
  le: number;
  count: number;
}

/**
 * The q-quantile of a cumulative histogram, interpolated linearly inside the bucket that holds
 * it, as Prometheus' histogram_quantile does: the first bucket's lower bound is 0, a quantile in
 * the +Inf bucket is the largest finite bound. Undefined when the histogram is empty.
 */
export function histogramQuantile(q: number, buckets: readonly Bucket[]): number | undefined {
  const sorted = [...buckets].sort((a, b) => a.le - b.le);
  const last = sorted[sorted.length - 1];
  if (!last || last.le !== Infinity || last.count <= 0 || Number.isNaN(q)) return undefined;
  if (q <= 0) return 0;
  if (q >= 1) return sorted.length > 1 ? sorted[sorted.length - 2]!.le : undefined;
  const rank = q * last.count;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const b of sorted) {
    if (b.count >= rank) {
      if (b.le === Infinity) return lowerBound;
      if (b.count === lowerCount) return b.le;
      return lowerBound + (b.le - lowerBound) * ((rank - lowerCount) / (b.count - lowerCount));
    }
    lowerBound = b.le;
    lowerCount = b.count;
  }
  return lowerBound;
}

/** Raw sums over a window, which add up across pods before rates and ratios are taken. */
interface Totals {
  /** Sum over pods of increase / window seconds. */
  requestRate: number;
  requests: number;
  tlsRequests: number;
  successes: number;
  failures: number;
  buckets: Map<number, number>;
  tcpOpened: number;
  tlsTcpOpened: number;
  tcpConnections: number;
}

function emptyTotals(): Totals {
  return {
    requestRate: 0,
    requests: 0,
    tlsRequests: 0,
    successes: 0,
    failures: 0,
    buckets: new Map(),
    tcpOpened: 0,
    tlsTcpOpened: 0,
    tcpConnections: 0,
  };
}

export interface SeriesFilter {
  direction?: Direction;
  /** Only series whose labels all match. */
  labels?: Labels;
}

function matches(labels: Labels, filter: SeriesFilter): boolean {
  if (filter.direction && labels.direction !== filter.direction) return false;
  for (const [k, v] of Object.entries(filter.labels ?? {})) if (labels[k] !== v) return false;
  return true;
}

function addWindow(t: Totals, w: PodWindow, filter: SeriesFilter): void {
  for (const s of w.increases) {
    if (!matches(s.labels, filter)) continue;
    switch (s.name) {
      case METRIC.requests:
        t.requests += s.value;
        if (w.seconds > 0) t.requestRate += s.value / w.seconds;
        if (s.labels.tls === "true") t.tlsRequests += s.value;
        break;
      case METRIC.responses:
        if (s.labels.classification === "success") t.successes += s.value;
        else t.failures += s.value;
        break;
      case METRIC.latencyBucket: {
        const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
        if (!Number.isNaN(le)) t.buckets.set(le, (t.buckets.get(le) ?? 0) + s.value);
        break;
      }
      case METRIC.tcpOpen:
        // Connections carry a direction but no authority; a label filter beyond it cannot apply.
        if (filter.labels) break;
        t.tcpOpened += s.value;
        if (s.labels.tls === "true") t.tlsTcpOpened += s.value;
        break;
    }
  }
  if (filter.labels) return;
  for (const s of w.gauges) {
    if (s.name === METRIC.tcpOpenConnections && matches(s.labels, filter)) t.tcpConnections += s.value;
  }
}

export interface Figures {
  /** Requests per second over the window. */
  rps: number;
  requests: number;
  /** Share of responses classified success, 0..1; undefined with no responses. */
  successRate?: number;
  p50?: number;
  p95?: number;
  p99?: number;
  /** TCP connections open now. */
  tcpConnections: number;
  /** Share of requests (or, with none, of connections opened) that were mTLS, 0..1. */
  mtlsShare?: number;
}

function figures(t: Totals): Figures {
  const buckets = [...t.buckets].map(([le, count]) => ({ le, count }));
  const responses = t.successes + t.failures;
  const out: Figures = { rps: t.requestRate, requests: t.requests, tcpConnections: t.tcpConnections };
  if (responses > 0) out.successRate = t.successes / responses;
  const q = (x: number) => histogramQuantile(x, buckets);
  const [p50, p95, p99] = [q(0.5), q(0.95), q(0.99)];
  if (p50 !== undefined) out.p50 = p50;
  if (p95 !== undefined) out.p95 = p95;
  if (p99 !== undefined) out.p99 = p99;
  if (t.requests > 0) out.mtlsShare = t.tlsRequests / t.requests;
  else if (t.tcpOpened > 0) out.mtlsShare = t.tlsTcpOpened / t.tcpOpened;
  return out;
}

/** The figures of the traffic a set of windows saw, in one direction (and matching labels). */
export function figuresOf(windows: readonly PodWindow[], filter: SeriesFilter): Figures {
  const t = emptyTotals();
  for (const w of windows) addWindow(t, w, filter);
  return figures(t);
}

export interface StatRow extends Figures {
  namespace: string;
  /** Pod, workload or namespace name, by the grouping. */
  name: string;
  /** Pods in the row, and how many of them could be read. */
  pods: number;
  podsReporting: number;
  errors: string[];
}

function groupKey(pod: PodRef, by: GroupBy): [string, string] {
  switch (by) {
    case "pod":
      return [pod.namespace, pod.pod];
    case "deploy":
      return [pod.namespace, pod.workload];
    case "ns":
      return [pod.namespace, pod.namespace];
  }
}

/** One row per pod, workload or namespace, sorted by namespace then name. */
export function statRows(windows: readonly PodWindow[], by: GroupBy, direction: Direction, namespace?: string): StatRow[] {
  const groups = new Map<string, { namespace: string; name: string; windows: PodWindow[] }>();
  for (const w of windows) {
    if (namespace !== undefined && w.pod.namespace !== namespace) continue;
    const [ns, name] = groupKey(w.pod, by);
    const key = `${ns}/${name}`;
    const g = groups.get(key) ?? { namespace: ns, name, windows: [] };
    g.windows.push(w);
    groups.set(key, g);
  }
  return [...groups.values()]
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name))
    .map((g) => {
      const reporting = g.windows.filter((w) => !w.error);
      return {
        namespace: g.namespace,
        name: g.name,
        pods: g.windows.length,
        podsReporting: reporting.length,
        errors: g.windows.filter((w) => w.error).map((w) => `${w.pod.pod}: ${w.error}`),
        ...figuresOf(reporting, { direction }),
      };
    });
}

export interface TopRow extends Figures {
  namespace: string;
  workload: string;
  pod: string;
  direction: Direction;
  authority: string;
}

/** The busiest (pod, direction, authority) triples, by request rate. */
export function topRows(windows: readonly PodWindow[], limit: number, namespace?: string): TopRow[] {
  const rows: TopRow[] = [];
  for (const w of windows) {
    if (w.error || (namespace !== undefined && w.pod.namespace !== namespace)) continue;
    const seen = new Set<string>();
    for (const s of w.increases) {
      if (s.name !== METRIC.requests || s.value <= 0) continue;
      const direction = s.labels.direction as Direction;
      const authority = s.labels.authority ?? "";
      const key = `${direction} ${authority}`;
      if (seen.has(key)) continue;
      seen.add(key);
      rows.push({
        namespace: w.pod.namespace,
        workload: w.pod.workload,
        pod: w.pod.pod,
        direction,
        authority,
        ...figuresOf([w], { direction, labels: { authority } }),
      });
    }
  }
  return rows.sort((a, b) => b.rps - a.rps || a.pod.localeCompare(b.pod)).slice(0, limit);
}

export interface CertificateRow {
  namespace: string;
  pod: string;
  workload: string;
  identity?: string;
  /** Unix seconds; undefined when the proxy has no certificate (yet). */
  expiresAt?: number;
  /** Seconds from `now` to expiry (negative once expired). */
  remaining?: number;
}

export function certificates(windows: readonly PodWindow[], nowSeconds: number): CertificateRow[] {
  return windows
    .map((w) => {
      const expiry = w.gauges.find((s) => s.name === METRIC.certExpiry)?.value;
      const row: CertificateRow = { namespace: w.pod.namespace, pod: w.pod.pod, workload: w.pod.workload };
      if (w.pod.identity) row.identity = w.pod.identity;
      if (expiry !== undefined && expiry > 0) {
        row.expiresAt = expiry;
        row.remaining = expiry - nowSeconds;
      }
      return row;
    })
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.pod.localeCompare(b.pod));
}

export interface Denial {
  namespace: string;
  pod: string;
  workload: string;
  port: string;
  reason: string;
  clientIdentity: string;
  authorization: string;
  route: string;
  count: number;
}

/** Decisions other than allow: the proxy counts denials with decision "deny" (or "denied"). */
function isDenial(labels: Labels): boolean {
  return /^den/i.test(labels.decision ?? "");
}

/** Authorization denials that happened inside the windows. */
export function denials(windows: readonly PodWindow[]): Denial[] {
  const out: Denial[] = [];
  for (const w of windows) {
    for (const s of w.increases) {
      if (s.name !== METRIC.authorizations || s.value <= 0 || !isDenial(s.labels)) continue;
      out.push({
        namespace: w.pod.namespace,
        pod: w.pod.pod,
        workload: w.pod.workload,
        port: s.labels.port ?? "",
        reason: s.labels.reason ?? "",
        clientIdentity: s.labels.client_identity ?? "",
        authorization: s.labels.authorization ?? "",
        route: s.labels.route ?? "",
        count: s.value,
      });
    }
  }
  return out.sort((a, b) => b.count - a.count);
}
