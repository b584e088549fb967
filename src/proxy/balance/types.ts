/**
 * The balancer contract: an endpoint set that the resolver replaces as discovery changes, and
 * `pick()` which chooses one endpoint for one request (or one connection, for opaque TCP).
 * Balancers are pure: no sockets, no timers; time and randomness are injected.
 */
import type { Clock } from "../../core/clock.js";

/** How the request that used a pick ended. `latencyMs` is measured by the caller. */
export interface Outcome {
  /** False when the endpoint answered with a failure (5xx, UNAVAILABLE, reset); counts as slow. */
  ok: boolean;
  latencyMs: number;
}

/** One choice: the caller must call exactly one of `done`, `failed` or `cancel` (extra calls are ignored). */
export interface Pick<E> {
  readonly endpoint: E;
  /** The request reached the endpoint and finished (well or not). */
  done(outcome: Outcome): void;
  /** The connection to the endpoint could not be made: back it off and re-probe it later. */
  failed(): void;
  /** Nothing was sent (e.g. the client went away first): release the pick without a sample. */
  cancel(): void;
}

export type EndpointCondition = "ready" | "probing" | "backed-off";

/** Per-endpoint view for metrics and diagnostics (O(n): not for the request path). */
export interface EndpointStats<E> {
  key: string;
  endpoint: E;
  condition: EndpointCondition;
  inFlight: number;
  /** Current latency estimate in ms (peak-EWMA only). */
  estimateMs?: number;
  picks: number;
  failures: number;
}

export interface Balancer<E> {
  readonly name: string;
  /** Replaces the endpoint set; endpoints are matched by key so known ones keep their history. */
  update(endpoints: readonly E[]): void;
  /** Chooses an endpoint, or undefined when none is available (empty set, or all backed off). */
  pick(): Pick<E> | undefined;
  /** Number of endpoints in the set, and how many can be picked now. */
  size(): { total: number; available: number };
  /** Milliseconds until a backed-off endpoint may be tried again (undefined if none is backed off). */
  retryInMs(): number | undefined;
  stats(): EndpointStats<E>[];
}

export interface BackoffConfig {
  initialMs: number;
  maxMs: number;
}

export interface PeakEwmaConfig {
  /** Estimate for an endpoint that has never answered (linkerd uses 30 ms). */
  defaultRttMs: number;
  /** Time for the estimate to move halfway toward new samples (and toward 0 while idle). */
  halfLifeMs: number;
  /**
   * Costs closer than this ratio OR this many ms are treated as equal, and the least recently
   * picked endpoint wins. Without it, P2C over equal endpoints is a coin flip and sequential
   * traffic spreads binomially, not evenly.
   */
  tieRatio: number;
  tieMs: number;
  /** A failed response counts as at least this slow, so a fast-failing endpoint does not attract traffic. */
  failurePenaltyMs: number;
  /**
   * Cap on how many picks a latency outlier is passed over before it is probed again. The first
   * probe comes after one pick; each probe that finds it still slow doubles the wait.
   */
  maxProbeAfter: number;
  /** An outlier not heard from for this long is probed whatever its pick count. */
  maxProbeIntervalMs: number;
}

export interface BalancerOptions<E> {
  /** Identity of an endpoint across updates (e.g. "10.0.0.5:8080"). */
  key: (endpoint: E) => string;
  clock?: Clock;
  /** Uniform in [0, 1). */
  random?: () => number;
  backoff?: Partial<BackoffConfig>;
  peakEwma?: Partial<PeakEwmaConfig>;
}

export const DEFAULT_BACKOFF: BackoffConfig = { initialMs: 250, maxMs: 10_000 };

export const DEFAULT_PEAK_EWMA: PeakEwmaConfig = {
  defaultRttMs: 30,
  halfLifeMs: 10_000,
  tieRatio: 1,
  tieMs: 5,
  failurePenaltyMs: 30,
  maxProbeAfter: 1024,
  maxProbeIntervalMs: 2_000,
};
