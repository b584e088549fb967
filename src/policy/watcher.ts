/**
 * Keeps the effective policy of every watched pod port up to date from cluster watch events, and
 * the status conditions of policy resources. Events are coalesced: all changes in one turn of the
 * event loop cause one recompute of the ports they can affect (the changed pod's ports, or every
 * port in the namespace whose policy resources changed). Subscribers are told only when the
 * compiled policy actually differs. No sockets: the gRPC server (server.ts) sits on top.
 */
import type { Logger } from "pino";
import type { InboundServer } from "../api/index.js";
import { POLICY_KINDS, type ClusterState, type ResourceKind, type Unsubscribe } from "../cluster/types.js";
import { systemClock, type Clock, type TimerHandle } from "../core/clock.js";
import { errorMessage } from "../core/errors.js";
import { CompileCache, compileInboundServer, type PolicySettings } from "./compile.js";
import type { PolicyMetrics } from "./metrics.js";
import { desiredStatuses, withTransitionTimes } from "./status.js";

export type PolicyListener = (server: InboundServer) => void;

interface PortWatch {
  namespace: string;
  pod: string;
  port: number;
  listeners: Set<PolicyListener>;
  current?: InboundServer;
  json?: string;
}

export interface PolicyWatcherOptions {
  cluster: ClusterState;
  settings: PolicySettings;
  logger: Logger;
  metrics: PolicyMetrics;
  clock?: Clock;
  /** Write status conditions of policy resources (off for read-only uses such as `tether authz`). */
  writeStatus?: boolean;
}

const WATCHED: readonly ResourceKind[] = ["Pod", "Namespace", ...POLICY_KINDS];

export class PolicyWatcher {
  private readonly ports = new Map<string, PortWatch>();
  private readonly unsubscribe: Unsubscribe[] = [];
  private readonly dirtyNamespaces = new Set<string>();
  private readonly dirtyPods = new Set<string>();
  private statusDirty = true;
  private timer: TimerHandle | undefined;
  private readonly clock: Clock;
  private readonly writtenStatus = new Map<string, string>();
  private stopped = false;

  constructor(private readonly options: PolicyWatcherOptions) {
    this.clock = options.clock ?? systemClock;
    for (const kind of WATCHED) {
      this.unsubscribe.push(
        options.cluster.watch(kind, (event) => {
          const meta = (event.object as { metadata?: { name?: string; namespace?: string } }).metadata ?? {};
          if (kind === "Pod") {
            // A pod's own change only affects its own ports; statuses do not depend on pods.
            this.dirtyPods.add(`${meta.namespace ?? "default"}/${meta.name ?? ""}`);
          } else {
            this.dirtyNamespaces.add(kind === "Namespace" ? meta.name ?? "" : meta.namespace ?? "default");
            this.statusDirty = true;
          }
          this.schedule();
        }),
      );
    }
    if (options.writeStatus !== false) this.schedule();
  }

  /**
   * Subscribes to a pod port. Returns undefined when the pod does not exist; otherwise the current
   * policy has already been passed to `listener` when this returns.
   */
  subscribe(namespace: string, pod: string, port: number, listener: PolicyListener): Unsubscribe | undefined {
    const key = `${namespace}/${pod}:${port}`;
    let watch = this.ports.get(key);
    if (!watch) {
      if (!this.options.cluster.get("Pod", namespace, pod)) return undefined;
      watch = { namespace, pod, port, listeners: new Set() };
      this.recompute(watch);
      if (!watch.current) return undefined;
      this.ports.set(key, watch);
      this.options.metrics.watches.set(this.ports.size);
    }
    watch.listeners.add(listener);
    listener(watch.current!);
    const w = watch;
    return () => {
      w.listeners.delete(listener);
      if (w.listeners.size === 0 && this.ports.get(key) === w) {
        this.ports.delete(key);
        this.options.metrics.watches.set(this.ports.size);
      }
    };
  }

  /** Runs pending recomputes now (tests; normally a zero-delay timer does it). */
  flush(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stopped) return;
    const namespaces = new Set(this.dirtyNamespaces);
    const pods = new Set(this.dirtyPods);
    this.dirtyNamespaces.clear();
    this.dirtyPods.clear();
    const cache = new CompileCache();
    for (const w of this.ports.values()) {
      if (namespaces.has(w.namespace) || pods.has(`${w.namespace}/${w.pod}`)) this.recompute(w, cache);
    }
    if (this.statusDirty && this.options.writeStatus !== false) {
      this.statusDirty = false;
      try {
        this.writeStatuses();
      } catch (err) {
        // Runs from a timer: a throw here would take the controller down.
        this.options.metrics.statusErrors.inc();
        this.options.logger.error({ err: errorMessage(err) }, "computing policy statuses failed; will retry on the next change");
      }
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    for (const u of this.unsubscribe) u();
    this.ports.clear();
  }

  private schedule(): void {
    if (this.timer === undefined && !this.stopped) this.timer = this.clock.setTimeout(() => this.flush(), 0);
  }

  private recompute(w: PortWatch, cache?: CompileCache): void {
    const pod = this.options.cluster.get("Pod", w.namespace, w.pod);
    // A deleted pod keeps its last policy: its proxy is going away and has nothing better to use.
    if (!pod) return;
    const stop = this.options.metrics.compileSeconds.startTimer();
    let next: InboundServer;
    try {
      next = compileInboundServer(this.options.cluster, pod, w.port, this.options.settings, cache);
    } catch (err) {
      this.options.metrics.compileErrors.inc();
      this.options.logger.error({ err: errorMessage(err), workload: `${w.namespace}/${w.pod}`, port: w.port }, "policy compilation failed; keeping the last policy");
      return;
    } finally {
      stop();
    }
    const json = JSON.stringify(next);
    if (json === w.json) return;
    w.current = next;
    w.json = json;
    for (const l of [...w.listeners]) {
      try {
        l(next);
      } catch (err) {
        this.options.logger.warn({ err: errorMessage(err), workload: `${w.namespace}/${w.pod}`, port: w.port }, "policy subscriber failed");
      }
    }
  }

  private writeStatuses(): void {
    const { cluster, settings, logger, metrics } = this.options;
    const now = new Date(this.clock.now()).toISOString();
    const invalid = new Map<string, number>();
    const present = new Set<string>();
    for (const d of desiredStatuses(cluster, settings.trustDomain)) {
      const rejected = [...(d.conditions ?? []), ...(d.parents ?? []).flatMap((p) => p.conditions)].find((c) => c.status === "False");
      if (rejected) invalid.set(d.kind, (invalid.get(d.kind) ?? 0) + 1);
      const key = `${d.kind}/${d.namespace}/${d.name}`;
      present.add(key);
      const written = this.writtenStatus.get(key);
      const status = withTransitionTimes(d, now, written === undefined ? undefined : JSON.parse(written));
      const json = JSON.stringify(status);
      if (json === (written ?? JSON.stringify(d.current ?? null))) continue;
      this.writtenStatus.set(key, json);
      if (rejected) logger.warn({ kind: d.kind, resource: `${d.namespace}/${d.name}`, reason: rejected.reason, message: rejected.message }, "policy resource not accepted");
      cluster.writeStatus(d.kind, d.namespace, d.name, status).then(
        () => metrics.statusWrites.inc({ result: "ok" }),
        (err: unknown) => {
          metrics.statusWrites.inc({ result: "error" });
          // Forget it so the next change retries the write.
          this.writtenStatus.delete(key);
          logger.warn({ kind: d.kind, resource: `${d.namespace}/${d.name}`, err: errorMessage(err) }, "status write failed");
        },
      );
    }
    for (const key of this.writtenStatus.keys()) if (!present.has(key)) this.writtenStatus.delete(key);
    for (const kind of POLICY_KINDS) metrics.invalidResources.set({ kind }, invalid.get(kind) ?? 0);
  }
}
