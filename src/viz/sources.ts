/**
 * Window sources: scraping the proxies themselves (two scrapes make a window), or asking a
 * Prometheus that already scrapes them (increase() over the window). Both hand the same
 * PodWindow shape to the pure aggregation.
 */
import { METRIC } from "./aggregate.js";
import { VizError } from "./errors.js";
import { parsePrometheusText, type Sample } from "./prom-text.js";
import type { TargetList } from "./targets.js";
import { windowBetween, type PodRef, type PodScrape, type PodWindow } from "./window.js";

export interface WindowSource {
  describe(): string;
  /** Whether poll() needs an earlier poll to measure from (scrapes do; Prometheus does not). */
  readonly needsPriming: boolean;
  /** Windows of every known pod: since the previous poll, or over the configured window. */
  poll(): Promise<PodWindow[]>;
}

export interface ScrapeSourceOptions {
  targets: TargetList;
  now?: () => number;
  timeoutMs?: number;
}

const podKey = (p: PodRef) => `${p.namespace}/${p.pod}`;

export function scrapeSource(options: ScrapeSourceOptions): WindowSource {
  const now = options.now ?? Date.now;
  const timeoutMs = options.timeoutMs ?? 5000;
  let previous = new Map<string, PodScrape>();
  return {
    describe: () => options.targets.describe(),
    needsPriming: true,
    async poll() {
      const targets = await options.targets.list();
      const scrapes = await Promise.all(
        targets.map(async (target): Promise<PodScrape> => {
          const { adminUrl: _url, ...pod } = target;
          try {
            const text = await options.targets.fetchMetrics(target, timeoutMs);
            const exposition = parsePrometheusText(text);
            // A wrong port or a proxy in front answering HTML: say so rather than show zeros.
            if (exposition.samples.length === 0 && exposition.badLineCount > 0) {
              return { pod, at: now(), error: `${target.adminUrl} did not answer Prometheus text (first line: ${JSON.stringify(exposition.badLines[0]?.slice(0, 60))})` };
            }
            return { pod, at: now(), exposition };
          } catch (err) {
            return { pod, at: now(), error: `cannot scrape ${target.adminUrl}: ${(err as Error).message}` };
          }
        }),
      );
      const windows = scrapes.map((s): PodWindow => {
        const before = previous.get(podKey(s.pod));
        if (before) return windowBetween(before, s);
        return { pod: s.pod, seconds: 0, increases: [], gauges: [], error: s.error ?? "first scrape: figures come with the next one" };
      });
      previous = new Map(scrapes.map((s) => [podKey(s.pod), s]));
      return windows;
    },
  };
}

export interface PrometheusSourceOptions {
  url: string;
  windowSeconds: number;
  namespace?: string;
  timeoutMs?: number;
}

interface VectorResult {
  metric: Record<string, string>;
  value: [number, string];
}

/** The pod labels of a Prometheus series: the proxy's default labels, or their exported_ form when a scrape config renamed them. */
function podOf(labels: Record<string, string>): PodRef | undefined {
  const pick = (name: string) => labels[name] ?? labels[`exported_${name}`];
  const namespace = pick("namespace");
  const pod = pick("pod");
  if (!namespace || !pod) return undefined;
  return { namespace, pod, workload: pick("workload") ?? pod };
}

export function prometheusSource(options: PrometheusSourceOptions): WindowSource {
  const base = options.url.replace(/\/$/, "");
  const window = `${Math.max(1, Math.round(options.windowSeconds))}s`;
  const selector = options.namespace ? `{namespace=${JSON.stringify(options.namespace)}}` : "";
  async function query(promql: string): Promise<VectorResult[]> {
    const url = `${base}/api/v1/query?query=${encodeURIComponent(promql)}`;
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(options.timeoutMs ?? 10_000) });
    } catch (err) {
      throw new VizError("VIZ_PROMETHEUS_UNREACHABLE", `cannot reach Prometheus at ${base}: ${(err as Error).message}; check --prometheus`, { cause: err });
    }
    const body = (await res.json().catch(() => undefined)) as { status?: string; error?: string; data?: { resultType?: string; result?: VectorResult[] } } | undefined;
    if (!res.ok || body?.status !== "success" || body.data?.resultType !== "vector") {
      throw new VizError("VIZ_PROMETHEUS_QUERY_FAILED", `Prometheus refused ${promql}: ${body?.error ?? `HTTP ${res.status}`}`);
    }
    return body.data.result ?? [];
  }
  const counters = [METRIC.requests, METRIC.responses, METRIC.latencyBucket, METRIC.tcpOpen, METRIC.authorizations];
  const gauges = [METRIC.tcpOpenConnections, METRIC.certExpiry];
  return {
    describe: () => `Prometheus at ${base}`,
    needsPriming: false,
    async poll() {
      const [counterResults, gaugeResults] = await Promise.all([
        Promise.all(counters.map((name) => query(`increase(${name}${selector}[${window}])`))),
        Promise.all(gauges.map((name) => query(`${name}${selector}`))),
      ]);
      const windows = new Map<string, PodWindow>();
      const windowOf = (labels: Record<string, string>) => {
        const pod = podOf(labels);
        if (!pod) return undefined;
        const w = windows.get(podKey(pod)) ?? { pod, seconds: options.windowSeconds, increases: [], gauges: [] };
        windows.set(podKey(pod), w);
        return w;
      };
      const collect = (names: readonly string[], results: VectorResult[][], into: "increases" | "gauges") => {
        results.forEach((vector, i) => {
          for (const r of vector) {
            const value = Number(r.value[1]);
            const w = windowOf(r.metric);
            if (w && Number.isFinite(value)) w[into].push({ name: names[i]!, labels: r.metric, value } satisfies Sample);
          }
        });
      };
      collect(counters, counterResults, "increases");
      collect(gauges, gaugeResults, "gauges");
      return [...windows.values()];
    },
  };
}
