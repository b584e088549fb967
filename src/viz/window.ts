/**
 * From scrapes to windows. A window is what happened at one proxy between two moments: the
 * increase of every counter series (histogram buckets, sums and counts included) and the latest
 * value of every gauge. Scrapes give windows by difference; Prometheus gives them directly with
 * increase(). Everything after this (stat, top, edges, the dashboard) works on windows only.
 */
import type { Exposition, Labels, Sample } from "./prom-text.js";

/** Which pod a proxy belongs to (from the target list or the registry's default labels). */
export interface PodRef {
  namespace: string;
  pod: string;
  /** The deployment (or other owner) name; the pod name when unknown. */
  workload: string;
  /** The pod's identity (DNS-style name) when the source knows it. */
  identity?: string;
}

export interface PodScrape {
  pod: PodRef;
  /** Milliseconds since the epoch when the scrape was taken. */
  at: number;
  exposition?: Exposition;
  /** Why the scrape failed (unreachable, bad status): the pod still shows, with this message. */
  error?: string;
}

export interface PodWindow {
  pod: PodRef;
  seconds: number;
  /** Counter increases over the window, one per series that exists at the window's end. */
  increases: Sample[];
  /** Gauge values at the window's end. */
  gauges: Sample[];
  error?: string;
}

const HISTOGRAM_SUFFIXES = ["_bucket", "_sum", "_count"];

/** Whether a sample name is monotonic (a counter, or a histogram's parts). */
export function isCumulative(name: string, types: ReadonlyMap<string, string>): boolean {
  const type = types.get(name);
  if (type !== undefined) return type === "counter";
  for (const suffix of HISTOGRAM_SUFFIXES) {
    if (name.endsWith(suffix)) {
      const family = types.get(name.slice(0, -suffix.length));
      if (family === "histogram" || family === "summary") return true;
    }
  }
  // Untyped exposition: fall back on Prometheus naming.
  return types.size === 0 && (name.endsWith("_total") || HISTOGRAM_SUFFIXES.some((s) => name.endsWith(s)));
}

export function seriesKey(name: string, labels: Labels): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`);
  return `${name}{${parts.join(",")}}`;
}

/**
 * The window between two scrapes of the same proxy. A counter that went down was reset (the
 * proxy restarted): as Prometheus does, its whole current value counts as the increase. A series
 * absent from the earlier scrape started inside the window (prom-client shows a labelled series
 * only after its first increment), so its whole value counts too.
 */
export function windowBetween(before: PodScrape, after: PodScrape): PodWindow {
  const seconds = Math.max((after.at - before.at) / 1000, 0);
  if (!after.exposition || after.error) {
    return { pod: after.pod, seconds, increases: [], gauges: [], error: after.error ?? "no metrics" };
  }
  const types = after.exposition.types;
  const previous = new Map<string, number>();
  for (const s of before.exposition?.samples ?? []) previous.set(seriesKey(s.name, s.labels), s.value);
  const increases: Sample[] = [];
  const gauges: Sample[] = [];
  for (const s of after.exposition.samples) {
    if (!isCumulative(s.name, types)) {
      gauges.push(s);
      continue;
    }
    const old = previous.get(seriesKey(s.name, s.labels));
    const value = old === undefined || s.value < old ? s.value : s.value - old;
    increases.push({ name: s.name, labels: s.labels, value });
  }
  // A failed earlier scrape makes every counter look new: say so instead of showing a burst.
  if (!before.exposition || before.error) {
    return { pod: after.pod, seconds, increases: [], gauges, error: "no earlier scrape to compare with" };
  }
  return { pod: after.pod, seconds, increases, gauges };
}
