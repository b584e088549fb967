/**
 * Peak-EWMA with power of two choices (Finagle, linkerd2-proxy/tower).
 *
 * Each endpoint keeps a latency estimate. A response slower than the estimate replaces it at once
 * (peak sensitivity); otherwise the estimate moves toward the sample with a time-based weight
 * (half-life `halfLifeMs`). While an endpoint gets no responses its estimate decays toward 0, so an
 * endpoint that was slow is tried again later and comes back if it has recovered.
 *
 * cost = max(estimate, age of its oldest in-flight request) x (in-flight + 1). The age term keeps a
 * decayed idle endpoint from soaking up a burst before its first answer arrives.
 *
 * The two candidates are the least recently picked endpoint and one uniformly random other. Between
 * equally loaded candidates, costs within the tie band go to the least recently picked one:
 * sequential traffic over equal endpoints then rotates exactly, where two random candidates would
 * split it binomially. A new endpoint, or one whose backoff expired, is probed as soon as it is the
 * least recent one and idle.
 *
 * Outliers: an idle endpoint passed over because its latency estimate is out of the tie band is
 * probed again after `probeAfter` such picks. A probe that answers in the band puts it straight
 * back (its sample replaces the estimate: one GC pause does not cost an endpoint its share); one
 * that is still slow doubles `probeAfter` (up to `maxProbeAfter`), so a persistently slow endpoint
 * sees a logarithmic trickle of probes, not a fixed fraction of the traffic, plus one probe every
 * `maxProbeIntervalMs` at most, which bounds how long a recovered endpoint waits to come back.
 */
import { BaseBalancer, type EndpointState } from "./endpoint-set.js";
import { DEFAULT_PEAK_EWMA, type BalancerOptions, type Outcome, type PeakEwmaConfig } from "./types.js";

export class PeakEwmaBalancer<E> extends BaseBalancer<E> {
  readonly name = "peak-ewma";
  private readonly config: PeakEwmaConfig;
  /** Time constant of the exponential decay, from the half-life. */
  private readonly tauMs: number;

  constructor(options: BalancerOptions<E>) {
    super(options);
    this.config = { ...DEFAULT_PEAK_EWMA, ...options.peakEwma };
    if (!(this.config.halfLifeMs > 0)) throw new RangeError("peak-ewma halfLifeMs must be > 0");
    this.tauMs = this.config.halfLifeMs / Math.LN2;
  }

  protected override initialEstimate(): number {
    return this.config.defaultRttMs;
  }

  protected override choose(now: number): EndpointState<E> {
    const first = this.leastRecent();
    if (this.ready.length === 1 || (first.probe && first.inFlight === 0)) return this.chosen(first);
    // Probe an outlier after enough lost picks, or when it has not been heard from for a while (so a
    // recovered endpoint returns within seconds even when its pick-count threshold has grown large).
    const quietMs = now - first.stampMs;
    if (first.inFlight === 0 && first.skips > 0 && (first.skips >= first.probeAfter || quietMs >= this.config.maxProbeIntervalMs)) {
      first.outlierProbe = true;
      return this.chosen(first);
    }
    // A uniform choice among the others: index in [0, n-1), skipping `first`.
    let i = Math.floor(this.random() * (this.ready.length - 1));
    if (i >= first.index) i++;
    const second = this.ready[i]!;
    const a = this.cost(first, now);
    const b = this.cost(second, now);
    // The tie band is for fairness between equally loaded endpoints (sequential traffic); with
    // unequal queues the cost decides alone.
    if (a <= b || (first.inFlight === second.inFlight && this.tie(a, b))) return this.chosen(first);
    // `first` lost. Count it as an outlier skip only if its latency (not its queue) lost.
    const rival = this.decayed(second, now);
    const own = this.decayed(first, now);
    if (own > rival && !this.tie(own, rival)) {
      first.skips++;
      first.rivalMs = rival;
    }
    return this.chosen(second);
  }

  private chosen(state: EndpointState<E>): EndpointState<E> {
    state.skips = 0;
    return state;
  }

  private tie(a: number, b: number): boolean {
    const low = Math.min(a, b);
    const high = Math.max(a, b);
    return high - low <= this.config.tieMs || high <= low * (1 + this.config.tieRatio);
  }

  protected override observe(state: EndpointState<E>, outcome: Outcome, now: number): void {
    const sample = outcome.ok ? outcome.latencyMs : Math.max(outcome.latencyMs, this.config.failurePenaltyMs);
    const decayed = this.decayed(state, now);
    if (state.outlierProbe) {
      state.outlierProbe = false;
      const recovered = this.tie(sample, state.rivalMs) || sample <= state.rivalMs;
      state.probeAfter = recovered ? 1 : Math.min(state.probeAfter * 2, this.config.maxProbeAfter);
      // A fresh measurement after a pause: believed as is when it says the endpoint recovered.
      if (recovered) {
        state.estimateMs = sample;
        state.stampMs = now;
        state.samples++;
        return;
      }
    }
    if (state.samples === 0 || sample > decayed) {
      // The first answer replaces the default guess; a slower one than expected is believed at once.
      state.estimateMs = sample;
    } else {
      const w = Math.exp(-(now - state.stampMs) / this.tauMs);
      state.estimateMs = state.estimateMs * w + sample * (1 - w);
    }
    state.stampMs = now;
    state.samples++;
  }

  protected override currentEstimate(state: EndpointState<E>, now: number): number {
    return this.decayed(state, now);
  }

  private decayed(state: EndpointState<E>, now: number): number {
    return state.estimateMs * Math.exp(-(now - state.stampMs) / this.tauMs);
  }

  private cost(state: EndpointState<E>, now: number): number {
    const oldest = state.oldestStart();
    const latency = oldest === undefined ? this.decayed(state, now) : Math.max(this.decayed(state, now), now - oldest);
    return latency * (state.inFlight + 1);
  }
}
