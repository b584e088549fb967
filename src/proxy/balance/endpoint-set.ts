/**
 * What every balancer shares: the endpoint set, matched by key across updates; in-flight
 * tracking; connect-failure backoff with re-probing; and recency order. Every structure is chosen
 * so that one pick is O(1) whatever the set size:
 * - `ready` is an array (uniform random choice by index, swap-remove by stored index);
 * - recency is a doubly linked list (head = least recently picked, move-to-tail on pick);
 * - backed-off endpoints sit in a min-heap on their retry time (only touched when one expires);
 * - each endpoint's in-flight picks are a linked list in start order (oldest = head).
 * Subclasses implement `choose()` and may observe outcomes.
 */
import { Backoff } from "../../core/backoff.js";
import { systemClock, type Clock } from "../../core/clock.js";
import {
  DEFAULT_BACKOFF,
  type Balancer,
  type BalancerOptions,
  type BackoffConfig,
  type EndpointStats,
  type Outcome,
  type Pick,
} from "./types.js";

export class EndpointState<E> {
  /** Position in `ready`, or -1 while backed off. */
  index = -1;
  /** Position in the backoff heap, or -1. */
  heapIndex = -1;
  retryAt = 0;
  /** Recency list links (only while ready). */
  older: EndpointState<E> | null = null;
  newer: EndpointState<E> | null = null;
  /** In-flight picks, oldest first. */
  firstInFlight: Handle<E> | null = null;
  lastInFlight: Handle<E> | null = null;
  inFlight = 0;
  /** True for a new endpoint and after a backoff expires: the next pick of it is a probe. */
  probe = true;
  removed = false;
  picks = 0;
  failures = 0;
  /** Latency estimate (used by peak-EWMA), its time, and how many samples it has seen. */
  estimateMs: number;
  stampMs: number;
  samples = 0;
  /** Outlier probing (peak-EWMA): picks lost on latency since last picked, the threshold, the rival's estimate. */
  skips = 0;
  probeAfter = 1;
  rivalMs = 0;
  outlierProbe = false;
  readonly backoff: Backoff;

  constructor(
    readonly key: string,
    public endpoint: E,
    backoff: BackoffConfig,
    random: () => number,
    estimateMs: number,
    now: number,
  ) {
    this.backoff = new Backoff({ ...backoff, random });
    this.estimateMs = estimateMs;
    this.stampMs = now;
  }

  /** Start time of the oldest request still in flight (undefined when idle). */
  oldestStart(): number | undefined {
    return this.firstInFlight?.startedAt;
  }
}

export class Handle<E> implements Pick<E> {
  older: Handle<E> | null = null;
  newer: Handle<E> | null = null;
  private settled = false;

  constructor(
    private readonly owner: BaseBalancer<E>,
    readonly state: EndpointState<E>,
    readonly startedAt: number,
  ) {}

  get endpoint(): E {
    return this.state.endpoint;
  }

  done(outcome: Outcome): void {
    if (this.settled) return;
    this.settled = true;
    this.owner.settle(this, outcome);
  }

  failed(): void {
    if (this.settled) return;
    this.settled = true;
    this.owner.settle(this, "failed");
  }

  cancel(): void {
    if (this.settled) return;
    this.settled = true;
    this.owner.settle(this, "cancelled");
  }
}

export abstract class BaseBalancer<E> implements Balancer<E> {
  abstract readonly name: string;
  protected readonly clock: Clock;
  protected readonly random: () => number;
  private readonly backoffConfig: BackoffConfig;
  private readonly byKey = new Map<string, EndpointState<E>>();
  protected readonly ready: EndpointState<E>[] = [];
  private readonly heap: EndpointState<E>[] = [];
  private lru: EndpointState<E> | null = null;
  private mru: EndpointState<E> | null = null;

  constructor(protected readonly options: BalancerOptions<E>) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.backoffConfig = { ...DEFAULT_BACKOFF, ...options.backoff };
  }

  /** Chooses among ready endpoints (there is at least one). */
  protected abstract choose(now: number): EndpointState<E>;
  /** Initial latency estimate of a new endpoint. */
  protected initialEstimate(): number {
    return 0;
  }
  /** Called when a pick finished with a response. */
  protected observe(_state: EndpointState<E>, _outcome: Outcome, _now: number): void {}

  update(endpoints: readonly E[]): void {
    const now = this.clock.now();
    const seen = new Set<string>();
    for (const endpoint of endpoints) {
      const key = this.options.key(endpoint);
      if (seen.has(key)) continue;
      seen.add(key);
      const known = this.byKey.get(key);
      if (known) {
        known.endpoint = endpoint;
        continue;
      }
      const state = new EndpointState(key, endpoint, this.backoffConfig, this.random, this.initialEstimate(), now);
      this.byKey.set(key, state);
      this.makeReady(state);
    }
    for (const [key, state] of this.byKey) {
      if (seen.has(key)) continue;
      this.byKey.delete(key);
      state.removed = true;
      if (state.index >= 0) this.unready(state);
      if (state.heapIndex >= 0) this.heapRemove(state);
    }
  }

  pick(): Pick<E> | undefined {
    const now = this.clock.now();
    this.releaseExpired(now);
    if (this.ready.length === 0) return undefined;
    const state = this.choose(now);
    const handle = new Handle(this, state, now);
    state.picks++;
    state.inFlight++;
    if (state.lastInFlight) {
      state.lastInFlight.newer = handle;
      handle.older = state.lastInFlight;
    } else state.firstInFlight = handle;
    state.lastInFlight = handle;
    this.touch(state);
    return handle;
  }

  size(): { total: number; available: number } {
    this.releaseExpired(this.clock.now());
    return { total: this.byKey.size, available: this.ready.length };
  }

  retryInMs(): number | undefined {
    const top = this.heap[0];
    return top ? Math.max(0, top.retryAt - this.clock.now()) : undefined;
  }

  stats(): EndpointStats<E>[] {
    this.releaseExpired(this.clock.now());
    return [...this.byKey.values()].map((s) => ({
      key: s.key,
      endpoint: s.endpoint,
      condition: s.index < 0 ? "backed-off" : s.probe ? "probing" : "ready",
      inFlight: s.inFlight,
      estimateMs: this.currentEstimate(s, this.clock.now()),
      picks: s.picks,
      failures: s.failures,
    }));
  }

  /** The estimate shown in stats; undefined for balancers that keep none. */
  protected currentEstimate(_state: EndpointState<E>, _now: number): number | undefined {
    return undefined;
  }

  /** Least recently picked ready endpoint. */
  protected leastRecent(): EndpointState<E> {
    return this.lru!;
  }

  /** @internal called by Handle once per pick. */
  settle(handle: Handle<E>, outcome: Outcome | "failed" | "cancelled"): void {
    const state = handle.state;
    state.inFlight--;
    if (handle.older) handle.older.newer = handle.newer;
    else state.firstInFlight = handle.newer;
    if (handle.newer) handle.newer.older = handle.older;
    else state.lastInFlight = handle.older;
    if (state.removed || outcome === "cancelled") return;
    const now = this.clock.now();
    if (outcome !== "failed") {
      state.probe = false;
      if (state.index >= 0) state.backoff.reset();
      this.observe(state, outcome, now);
      return;
    }
    state.failures++;
    // Concurrent failures of one endpoint back it off once, not once per connection attempt.
    if (state.index < 0) return;
    this.unready(state);
    state.probe = true;
    state.retryAt = now + state.backoff.next();
    this.heapPush(state);
  }

  private releaseExpired(now: number): void {
    for (;;) {
      const top = this.heap[0];
      if (!top || top.retryAt > now) return;
      this.heapRemove(top);
      this.makeReady(top);
    }
  }

  /** Adds to `ready`, at the least-recent end so a new or recovered endpoint is considered next. */
  private makeReady(state: EndpointState<E>): void {
    state.index = this.ready.length;
    this.ready.push(state);
    state.newer = this.lru;
    state.older = null;
    if (this.lru) this.lru.older = state;
    else this.mru = state;
    this.lru = state;
  }

  private unready(state: EndpointState<E>): void {
    const last = this.ready.pop()!;
    if (last !== state) {
      this.ready[state.index] = last;
      last.index = state.index;
    }
    state.index = -1;
    this.unlink(state);
  }

  private touch(state: EndpointState<E>): void {
    if (this.mru === state) return;
    this.unlink(state);
    this.appendRecent(state);
  }

  private appendRecent(state: EndpointState<E>): void {
    state.older = this.mru;
    state.newer = null;
    if (this.mru) this.mru.newer = state;
    else this.lru = state;
    this.mru = state;
  }

  private unlink(state: EndpointState<E>): void {
    if (state.older) state.older.newer = state.newer;
    else this.lru = state.newer;
    if (state.newer) state.newer.older = state.older;
    else this.mru = state.older;
    state.older = state.newer = null;
  }

  // ---- min-heap on retryAt ----
  private heapPush(state: EndpointState<E>): void {
    state.heapIndex = this.heap.length;
    this.heap.push(state);
    this.siftUp(state.heapIndex);
  }

  private heapRemove(state: EndpointState<E>): void {
    const i = state.heapIndex;
    const last = this.heap.pop()!;
    state.heapIndex = -1;
    if (last === state) return;
    this.heap[i] = last;
    last.heapIndex = i;
    this.siftDown(i);
    this.siftUp(last.heapIndex);
  }

  private siftUp(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.heap[parent]!.retryAt <= this.heap[i]!.retryAt) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private siftDown(i: number): void {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let smallest = i;
      if (l < this.heap.length && this.heap[l]!.retryAt < this.heap[smallest]!.retryAt) smallest = l;
      if (r < this.heap.length && this.heap[r]!.retryAt < this.heap[smallest]!.retryAt) smallest = r;
      if (smallest === i) return;
      this.swap(i, smallest);
      i = smallest;
    }
  }

  private swap(a: number, b: number): void {
    const x = this.heap[a]!;
    const y = this.heap[b]!;
    this.heap[a] = y;
    this.heap[b] = x;
    x.heapIndex = b;
    y.heapIndex = a;
  }
}
