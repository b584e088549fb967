/**
 * Shared watches: one per target (Service port, or IP:port), however many subscribers it has.
 * A cluster change marks the watches it touches dirty; once per microtask each dirty watch
 * recomputes its answer once, diffs it against the previous one, encodes the messages once and
 * writes the same encoded messages to every subscriber. The watch is released when its last
 * subscriber leaves. A subscriber whose stream is full is skipped until it drains, then gets one
 * catch-up diff from what it last received (memory stays bounded however slow it is).
 */
import type { Logger } from "pino";
import type { DestinationUpdate } from "../api/index.js";
import type { ClusterState } from "../cluster/types.js";
import { errorMessage, TetherError, type CodeOf } from "../core/errors.js";
import { ClusterIndex, splitKey, type Touched } from "./cluster-index.js";
import { diffSnapshots, fullUpdate } from "./diff.js";
import { NOT_FOUND, podSnapshot, serviceSnapshot, type Lookups, type SkipReason, type Snapshot } from "./endpoints.js";
import { DiscoveryMetrics } from "./metrics.js";
import { addTo, deleteFrom } from "./multimap.js";
import { targetKey, type DestinationTarget } from "./path.js";

/** Discovery could not answer (a malformed object in the cache); the client should retry. */
export class DiscoveryError extends TetherError<CodeOf<"DiscoveryError">> {}

/** Where a subscriber's messages go: `write` returns false when the consumer is behind. */
export interface Sink<T> {
  write(messages: readonly T[]): boolean;
}

export interface Subscription {
  /** The sink drained: send what it missed. */
  resume(): void;
  close(): void;
}

export interface WatcherOptions<T> {
  cluster: ClusterState;
  trustDomain: string;
  logger: Logger;
  metrics?: DiscoveryMetrics;
  /** Turns a message into what sinks take (the gRPC server serializes once here). */
  encode: (update: DestinationUpdate) => T;
}

interface Subscriber<T> {
  sink: Sink<T>;
  /** Set while the sink is full: the answer it has been sent so far. */
  behind?: Snapshot;
}

interface Watch<T> {
  key: string;
  target: DestinationTarget;
  snapshot: Snapshot;
  /** The encoded full answer, shared by subscribers that join before the next change. */
  full?: T[];
  subscribers: Set<Subscriber<T>>;
}

/** Distinct skip reports logged, at most; counting goes on regardless. */
const MAX_LOGGED_SKIPS = 1000;

export class DestinationWatcher<T> {
  private readonly index: ClusterIndex;
  private readonly watches = new Map<string, Watch<T>>();
  private readonly byService = new Map<string, Set<Watch<T>>>();
  private readonly byIp = new Map<string, Set<Watch<T>>>();
  private readonly dirty = new Set<Watch<T>>();
  private flushQueued = false;
  private readonly loggedSkips = new Set<string>();
  readonly metrics: DiscoveryMetrics;
  private readonly lookups: Lookups;

  constructor(private readonly options: WatcherOptions<T>) {
    this.index = new ClusterIndex(options.cluster);
    this.metrics = options.metrics ?? new DiscoveryMetrics();
    const cluster = options.cluster;
    this.lookups = {
      pod: (ns, name) => cluster.get("Pod", ns, name),
      namespace: (name) => cluster.get("Namespace", undefined, name),
      trustDomain: options.trustDomain,
      report: (reason, detail) => this.reportSkip(reason, detail),
    };
  }

  /** Waits for the cluster cache, then starts following changes. */
  async start(): Promise<void> {
    await this.options.cluster.ready();
    this.index.start(
      (t) => this.onTouched(t),
      (err, kind) => {
        this.metrics.errors.inc();
        this.options.logger.error({ err: errorMessage(err), kind }, "indexing a cluster object failed; it is ignored until it changes");
      },
    );
  }

  stop(): void {
    this.index.stop();
    this.watches.clear();
    this.byService.clear();
    this.byIp.clear();
    this.dirty.clear();
  }

  /** Number of shared watches (for tests and the bench: one per target, not per subscriber). */
  get watchCount(): number {
    return this.watches.size;
  }

  /** Subscribes and writes the full current answer to the sink before returning. */
  subscribe(target: DestinationTarget, sink: Sink<T>): Subscription {
    const key = targetKey(target);
    let watch = this.watches.get(key);
    if (!watch) {
      let snapshot: Snapshot;
      try {
        snapshot = this.compute(target);
      } catch (err) {
        this.metrics.errors.inc();
        this.options.logger.error({ err: errorMessage(err), target: key }, "computing destination failed");
        throw new DiscoveryError("DISCOVERY_INTERNAL", `cannot compute the endpoints of ${key} from the cluster state: ${errorMessage(err)}; retry later`);
      }
      watch = { key, target, snapshot, subscribers: new Set() };
      this.watches.set(key, watch);
      this.register(watch);
      this.metrics.watches.set(this.watches.size);
    }
    const w = watch;
    const sub: Subscriber<T> = { sink };
    w.subscribers.add(sub);
    this.metrics.subscribers.inc();
    w.full ??= fullUpdate(w.snapshot).map(this.options.encode);
    this.deliver(w, sub, w.full, w.snapshot);
    let closed = false;
    return {
      resume: () => {
        if (closed || !sub.behind) return;
        const missed = diffSnapshots(sub.behind, w.snapshot);
        sub.behind = undefined;
        if (missed.length > 0) this.deliver(w, sub, missed.map(this.options.encode), w.snapshot);
      },
      close: () => {
        if (closed) return;
        closed = true;
        this.metrics.subscribers.dec();
        w.subscribers.delete(sub);
        if (w.subscribers.size === 0 && this.watches.get(key) === w) this.release(w);
      },
    };
  }

  private deliver(w: Watch<T>, sub: Subscriber<T>, messages: readonly T[], sentState: Snapshot): void {
    let ok: boolean;
    try {
      ok = sub.sink.write(messages);
    } catch (err) {
      // A broken stream is closed by its own error handler; the other subscribers carry on.
      this.options.logger.debug({ err: errorMessage(err), target: w.key }, "write to subscriber failed");
      return;
    }
    this.metrics.messagesSent.inc(messages.length);
    if (!ok) {
      sub.behind = sentState;
      this.metrics.slowSubscribers.inc();
    }
  }

  private register(w: Watch<T>): void {
    if (w.target.kind === "ip") addTo(this.byIp, w.target.ip, w);
    else addTo(this.byService, `${w.target.namespace}/${w.target.name}`, w);
  }

  private release(w: Watch<T>): void {
    this.watches.delete(w.key);
    this.dirty.delete(w);
    if (w.target.kind === "ip") deleteFrom(this.byIp, w.target.ip, w);
    else deleteFrom(this.byService, `${w.target.namespace}/${w.target.name}`, w);
    this.metrics.watches.set(this.watches.size);
  }

  private compute(target: DestinationTarget): Snapshot {
    if (target.kind === "service") {
      const key = `${target.namespace}/${target.name}`;
      return serviceSnapshot(
        { service: this.index.service(key), slices: this.index.slicesOf(key), port: target.port, hostname: target.hostname },
        this.lookups,
      );
    }
    const serviceKey = this.index.serviceKeyForIp(target.ip);
    if (serviceKey) {
      return serviceSnapshot({ service: this.index.service(serviceKey), slices: this.index.slicesOf(serviceKey), port: target.port }, this.lookups);
    }
    const pod = this.index.podForIp(target.ip);
    return pod ? podSnapshot(pod, target.ip, target.port, this.lookups) : NOT_FOUND;
  }

  private onTouched(t: Touched): void {
    for (const s of t.services) for (const w of this.byService.get(s) ?? []) this.dirty.add(w);
    for (const ip of t.ips) for (const w of this.byIp.get(ip) ?? []) this.dirty.add(w);
    if (t.namespaces.size > 0) {
      for (const w of this.watches.values()) if (t.namespaces.has(namespaceOf(w, this.index))) this.dirty.add(w);
    }
    if (this.dirty.size > 0 && !this.flushQueued) {
      this.flushQueued = true;
      // Coalesce a burst of synchronous events (one re-list, one folder reload) into one update.
      queueMicrotask(() => this.flush());
    }
  }

  private flush(): void {
    this.flushQueued = false;
    const batch = [...this.dirty];
    this.dirty.clear();
    for (const w of batch) {
      if (this.watches.get(w.key) !== w) continue;
      const started = performance.now();
      let next: Snapshot;
      try {
        next = this.compute(w.target);
      } catch (err) {
        // Keep serving the last good answer; the next change retries.
        this.metrics.errors.inc();
        this.options.logger.error({ err: errorMessage(err), target: w.key }, "computing destination failed; keeping the previous answer");
        continue;
      }
      const updates = diffSnapshots(w.snapshot, next);
      if (updates.length === 0) continue;
      w.snapshot = next;
      w.full = undefined;
      for (const u of updates) this.metrics.updates.inc({ type: u.update });
      const encoded = updates.map(this.options.encode);
      for (const sub of w.subscribers) if (!sub.behind) this.deliver(w, sub, encoded, next);
      this.metrics.fanoutSeconds.observe((performance.now() - started) / 1000);
    }
  }

  private reportSkip(reason: SkipReason, detail: string): void {
    this.metrics.skipped.inc({ reason });
    if (this.loggedSkips.has(detail)) return;
    if (this.loggedSkips.size >= MAX_LOGGED_SKIPS) this.loggedSkips.clear();
    this.loggedSkips.add(detail);
    this.options.logger.warn({ reason }, detail);
  }
}

function namespaceOf<T>(w: Watch<T>, index: ClusterIndex): string {
  if (w.target.kind === "service") return w.target.namespace;
  const svc = index.serviceKeyForIp(w.target.ip);
  if (svc) return splitKey(svc)[0];
  return index.podForIp(w.target.ip)?.metadata?.namespace ?? "";
}
