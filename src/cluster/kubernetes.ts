/**
 * ClusterState backed by a Kubernetes API server: one client-node informer (ListWatch) per kind,
 * feeding one cache (a MemoryCluster, which also fans events out to watchers).
 *
 * What client-node's ListWatch does for us: list, then watch from the list's resourceVersion,
 * resume from the last seen resourceVersion when a watch ends cleanly, and re-list when the server
 * answers 410 Gone (as an HTTP status or as an ERROR event). What it does not, and this file adds:
 * - restart after errors (a failed list, a refused or broken connection): it stops for good, so
 *   each kind restarts it after a capped exponential backoff with jitter;
 * - ask for bookmarks (so a resume after a quiet period does not fall behind and hit 410);
 * - a kind whose CRD is not installed (404) counts as listed-and-empty so ready() is not blocked,
 *   is logged once, and is re-listed in the background until it appears;
 * - periodic resync: a fresh list compared with the cache, so an event lost anywhere is repaired
 *   (only real differences become events);
 * - one cache in the raw JSON shape of the watch stream, with kind/apiVersion always set (list
 *   items of built-in kinds come without them).
 * Every re-list reconciles the cache: objects gone become DELETED, changed ones MODIFIED.
 */
import { KubeConfig, ListWatch, Watch, type KubernetesListObject, type KubernetesObject } from "@kubernetes/client-node";
import { pino, type Logger } from "pino";
import { Counter, Gauge, Registry } from "prom-client";
import { ClusterError } from "./errors.js";
import { kubeRequest, resourcePath, statusMessage } from "./kube-http.js";
import { MemoryCluster } from "./memory.js";
import {
  RESOURCE_API,
  RESOURCE_KINDS,
  objectKey,
  type ClusterState,
  type ResourceEvent,
  type ResourceKind,
  type ResourceTypes,
  type Unsubscribe,
} from "./types.js";

export interface KubernetesClusterOptions {
  kubeConfig: KubeConfig;
  logger?: Logger;
  /** Metrics go here (a per-component registry); a new one when absent. */
  registry?: Registry;
  /** Kinds to list and watch; default every kind of RESOURCE_KINDS. */
  kinds?: readonly ResourceKind[];
  /** Full re-list of every kind this often (0: never). Default 10 minutes. */
  resyncMs?: number;
  /** Restart delays after errors: exponential from initialMs, capped at maxMs, with jitter. */
  backoff?: { initialMs: number; maxMs: number };
  /** A list or status request taking longer than this fails (and is retried). Default 30 s. */
  requestTimeoutMs?: number;
  random?: () => number;
}

interface Metrics {
  relists: Counter<"kind">;
  restarts: Counter<"kind" | "reason">;
  events: Counter<"kind" | "type">;
  absent: Gauge<"kind">;
}

function makeMetrics(registry: Registry): Metrics {
  return {
    relists: new Counter({ name: "tether_cluster_relists_total", help: "Full lists of a kind (initial, after 410 Gone, after errors, resync).", labelNames: ["kind"], registers: [registry] }),
    restarts: new Counter({ name: "tether_cluster_watch_restarts_total", help: "Informer restarts after an error, by reason.", labelNames: ["kind", "reason"], registers: [registry] }),
    events: new Counter({ name: "tether_cluster_watch_events_total", help: "Watch events received from the API server, bookmarks and errors included.", labelNames: ["kind", "type"], registers: [registry] }),
    absent: new Gauge({ name: "tether_cluster_kind_absent", help: "1 while the API server does not serve a kind (its CRD is not installed).", labelNames: ["kind"], registers: [registry] }),
  };
}

interface Shared {
  kc: KubeConfig;
  store: MemoryCluster;
  logger: Logger;
  metrics: Metrics;
  backoff: { initialMs: number; maxMs: number };
  resyncMs: number;
  requestTimeoutMs: number;
  random: () => number;
}

/**
 * A Watch that always asks for bookmarks, reports every event (bookmarks included) to its owner,
 * and aborts every connection it opened once closed (ListWatch.stop() cannot abort a connection
 * that is still being opened).
 */
class TrackedWatch extends Watch {
  private closed = false;
  private readonly open = new Set<AbortController>();

  constructor(
    kc: KubeConfig,
    private readonly onEvent: (type: string, object: unknown) => void,
  ) {
    super(kc);
  }

  override async watch(
    path: string,
    params: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: any, watchObj?: any) => void,
    done: (err: any) => void,
  ): Promise<AbortController> {
    if (this.closed) {
      done(null);
      return new AbortController();
    }
    let controller: AbortController | undefined;
    let finished = false;
    controller = await super.watch(
      path,
      { ...params, allowWatchBookmarks: true },
      (phase, obj, raw) => {
        this.onEvent(phase, obj);
        callback(phase, obj, raw);
      },
      (err) => {
        finished = true;
        if (controller) this.open.delete(controller);
        done(err);
      },
    );
    if (this.closed) controller.abort();
    else if (!finished) this.open.add(controller);
    return controller;
  }

  close(): void {
    this.closed = true;
    for (const c of this.open) c.abort();
    this.open.clear();
  }
}

type AnyObject = KubernetesObject & { metadata?: { name?: string; namespace?: string; resourceVersion?: string } };

/** Lists and watches one kind; keeps its part of the shared cache in step with the server. */
class KindReflector {
  private readonly api: (typeof RESOURCE_API)[ResourceKind];
  private readonly apiVersion: string;
  private readonly log: Logger;
  private generation = 0;
  private informer: ListWatch<AnyObject> | undefined;
  private watcher: TrackedWatch | undefined;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private readonly delays = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  private closed = false;
  absent = false;
  synced = false;
  private onSynced: (() => void) | undefined;

  constructor(
    readonly kind: ResourceKind,
    private readonly shared: Shared,
  ) {
    this.api = RESOURCE_API[kind];
    this.apiVersion = this.api.group ? `${this.api.group}/${this.api.version}` : this.api.version;
    this.log = shared.logger.child({ kind });
  }

  start(onSynced: () => void): void {
    this.onSynced = onSynced;
    this.newGeneration();
    this.scheduleResync();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.resyncTimer);
    for (const d of this.delays) {
      clearTimeout(d.timer);
      d.resolve();
    }
    this.delays.clear();
    this.stopInformer();
  }

  /** A fresh informer: a full list (reconciled into the cache), then a watch from it. */
  private newGeneration(): void {
    clearTimeout(this.retryTimer);
    this.stopInformer();
    const gen = ++this.generation;
    const current = () => gen === this.generation && !this.closed;
    const watcher = new TrackedWatch(this.shared.kc, (type) => {
      if (!current()) return;
      this.shared.metrics.events.inc({ kind: this.kind, type });
      // Any event, a bookmark included, proves the connection healthy again.
      if (type !== "ERROR") this.attempt = 0;
    });
    const informer = new ListWatch<AnyObject>(resourcePath(this.api), watcher, () => this.list(gen), false, undefined, undefined, {
      // ListWatch's own delay between clean reconnects grows to 30 s; keep it within our cap.
      delayFn: (ms) => this.delay(Math.min(ms, this.shared.backoff.maxMs)),
    });
    informer.on("add", (obj) => current() && this.upsert(obj));
    informer.on("update", (obj) => current() && this.upsert(obj));
    informer.on("delete", (obj) => current() && this.shared.store.remove(this.kind, obj.metadata?.namespace, obj.metadata?.name ?? ""));
    informer.on("error", (err) => current() && this.onError(err));
    this.informer = informer;
    this.watcher = watcher;
    void informer.start();
  }

  private stopInformer(): void {
    this.watcher?.close();
    void this.informer?.stop();
    this.informer = undefined;
    this.watcher = undefined;
  }

  /** The informer's list function; it also reconciles the cache with the list, before ListWatch sees it. */
  private async list(gen: number): Promise<KubernetesListObject<AnyObject>> {
    this.shared.metrics.relists.inc({ kind: this.kind });
    const res = await kubeRequest(this.shared.kc, "GET", resourcePath(this.api), { timeoutMs: this.shared.requestTimeoutMs });
    if (res.status !== 200) {
      throw new ClusterError("CLUSTER_LIST_FAILED", `listing ${this.kind} (${resourcePath(this.api)}) failed with HTTP ${res.status}: ${statusMessage(res.body)}`, {
        statusCode: res.status,
      });
    }
    const list = res.body as KubernetesListObject<AnyObject>;
    if (!Array.isArray(list?.items)) throw new ClusterError("CLUSTER_LIST_FAILED", `listing ${this.kind} returned no items array`);
    if (gen !== this.generation || this.closed) throw new ClusterError("CLUSTER_CLOSED", "superseded list");
    list.items = list.items.map((o) => this.normalize(o));
    this.reconcile(list.items);
    if (this.absent) {
      this.absent = false;
      this.shared.metrics.absent.set({ kind: this.kind }, 0);
      this.log.info("kind is now served; listed it");
    }
    this.attempt = 0;
    this.markSynced();
    return list;
  }

  /** Makes the cache hold exactly `items` for this kind: DELETED for the missing, ADDED/MODIFIED for the rest. */
  private reconcile(items: AnyObject[]): void {
    const store = this.shared.store;
    const wanted = new Set(items.map((o) => objectKey(this.api.namespaced ? o.metadata?.namespace : undefined, o.metadata?.name ?? "")));
    for (const key of store.keys(this.kind)) {
      if (wanted.has(key)) continue;
      const slash = key.indexOf("/");
      if (slash < 0) store.remove(this.kind, undefined, key);
      else store.remove(this.kind, key.slice(0, slash), key.slice(slash + 1));
    }
    for (const item of items) this.upsert(item);
  }

  private upsert(obj: AnyObject): void {
    if (!obj.metadata?.name) {
      this.log.warn("ignored an object without metadata.name");
      return;
    }
    // The same resourceVersion is the same object (key order in JSON may differ between list and watch).
    const cached = this.shared.store.get(this.kind, obj.metadata.namespace, obj.metadata.name) as AnyObject | undefined;
    const rv = obj.metadata.resourceVersion;
    if (rv !== undefined && cached?.metadata?.resourceVersion === rv) return;
    this.shared.store.apply(this.kind, this.normalize(obj) as unknown as ResourceTypes[ResourceKind]);
  }

  /** List items of built-in kinds carry no kind/apiVersion; the cache always has them. */
  private normalize(obj: AnyObject): AnyObject {
    if (obj.kind === this.kind && obj.apiVersion === this.apiVersion) return obj;
    const { apiVersion: _a, kind: _k, ...rest } = obj;
    return { apiVersion: this.apiVersion, kind: this.kind, ...rest };
  }

  private onError(err: unknown): void {
    const status = (err as { statusCode?: number; code?: unknown })?.statusCode;
    if (status === 404) {
      // The kind is not served: its CRD is not installed (or was removed). Nothing exists of it.
      if (!this.absent) {
        this.absent = true;
        this.shared.metrics.absent.set({ kind: this.kind }, 1);
        this.log.warn(
          { path: resourcePath(this.api) },
          `the API server does not serve ${this.kind} (${this.apiVersion}): install its CRD (deploy/crds/); treating it as empty and retrying`,
        );
      }
      this.reconcile([]);
      this.markSynced();
      this.retry("not_found", () => this.newGeneration());
      return;
    }
    const reason = status ? `http_${status}` : "connection";
    this.log.warn({ err: errorText(err), status, attempt: this.attempt + 1 }, `${this.kind} list/watch failed; retrying with backoff`);
    // A failed watch resumes from the last resourceVersion (ListWatch re-lists by itself if that is gone).
    const informer = this.informer;
    this.retry(reason, () => void informer?.start());
  }

  private retry(reason: string, action: () => void): void {
    this.shared.metrics.restarts.inc({ kind: this.kind, reason });
    clearTimeout(this.retryTimer);
    const ceiling = Math.min(this.shared.backoff.maxMs, this.shared.backoff.initialMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    const wait = Math.round(ceiling / 2 + (this.shared.random() * ceiling) / 2);
    const gen = this.generation;
    this.retryTimer = setTimeout(() => {
      // A resync may have replaced the informer meanwhile; then this retry has nothing left to do.
      if (!this.closed && gen === this.generation) action();
    }, wait);
  }

  private scheduleResync(): void {
    if (this.shared.resyncMs <= 0) return;
    this.resyncTimer = setTimeout(() => {
      if (this.closed) return;
      this.log.debug("resync: re-listing");
      this.newGeneration();
      this.scheduleResync();
    }, this.shared.resyncMs);
  }

  private delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.closed) return resolve();
      const entry = {
        timer: setTimeout(() => {
          this.delays.delete(entry);
          resolve();
        }, ms),
        resolve,
      };
      this.delays.add(entry);
    });
  }

  private markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    this.onSynced?.();
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : typeof err === "object" ? JSON.stringify(err) : String(err);
}

export class KubernetesCluster implements ClusterState {
  readonly registry: Registry;
  private readonly store = new MemoryCluster();
  private readonly reflectors: KindReflector[];
  private readonly readyPromise: Promise<void>;
  private readonly kc: KubeConfig;
  private readonly logger: Logger;
  private readonly requestTimeoutMs: number;

  constructor(options: KubernetesClusterOptions) {
    this.kc = options.kubeConfig;
    this.logger = (options.logger ?? pino({ level: "info" })).child({ component: "cluster" });
    this.registry = options.registry ?? new Registry();
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    const shared: Shared = {
      kc: this.kc,
      store: this.store,
      logger: this.logger,
      metrics: makeMetrics(this.registry),
      backoff: options.backoff ?? { initialMs: 500, maxMs: 30_000 },
      resyncMs: options.resyncMs ?? 10 * 60_000,
      requestTimeoutMs: this.requestTimeoutMs,
      random: options.random ?? Math.random,
    };
    const kinds = options.kinds ?? RESOURCE_KINDS;
    this.reflectors = kinds.map((kind) => new KindReflector(kind, shared));
    let pending = this.reflectors.length;
    let resolveReady!: () => void;
    this.readyPromise = new Promise((resolve) => (resolveReady = resolve));
    if (pending === 0) resolveReady();
    const server = this.kc.getCurrentCluster()?.server;
    this.logger.info({ server, kinds }, "starting informers");
    for (const r of this.reflectors) {
      r.start(() => {
        pending -= 1;
        if (pending === 0) {
          this.logger.info("every kind listed: cache ready");
          resolveReady();
        }
      });
    }
  }

  list<K extends ResourceKind>(kind: K, namespace?: string): ResourceTypes[K][] {
    return this.store.list(kind, namespace);
  }

  get<K extends ResourceKind>(kind: K, namespace: string | undefined, name: string): ResourceTypes[K] | undefined {
    return this.store.get(kind, namespace, name);
  }

  watch<K extends ResourceKind>(kind: K, handler: (event: ResourceEvent<K>) => void): Unsubscribe {
    return this.store.watch(kind, handler);
  }

  ready(): Promise<void> {
    return this.readyPromise;
  }

  /** Kinds the API server does not serve right now (their CRD is missing). */
  absentKinds(): ResourceKind[] {
    return this.reflectors.filter((r) => r.absent).map((r) => r.kind);
  }

  /** A merge PATCH of the object's status subresource. */
  async writeStatus(kind: ResourceKind, namespace: string, name: string, status: unknown): Promise<void> {
    const path = `${resourcePath(RESOURCE_API[kind], namespace, name)}/status`;
    const res = await kubeRequest(this.kc, "PATCH", path, {
      body: { status },
      contentType: "application/merge-patch+json",
      timeoutMs: this.requestTimeoutMs,
    });
    if (res.status === 200 || res.status === 201) return;
    const what = `${kind} ${objectKey(RESOURCE_API[kind].namespaced ? namespace : undefined, name)}`;
    if (res.status === 404) {
      throw new ClusterError("CLUSTER_OBJECT_NOT_FOUND", `cannot write the status of ${what}: it does not exist (or its CRD lacks the status subresource)`, { statusCode: 404 });
    }
    throw new ClusterError(
      "CLUSTER_STATUS_WRITE_FAILED",
      `writing the status of ${what} failed with HTTP ${res.status}: ${statusMessage(res.body)}${res.status === 403 ? " (grant patch on the status subresource in the controller's RBAC)" : ""}`,
      { statusCode: res.status },
    );
  }

  async close(): Promise<void> {
    for (const r of this.reflectors) r.close();
    await this.store.close();
  }
}

/** A KubeConfig from a kubeconfig file, or from the pod's service account when in a cluster. */
export function loadKubeConfig(source: { kubeconfig?: string; inCluster?: boolean }): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (source.inCluster) kc.loadFromCluster();
    else if (source.kubeconfig) kc.loadFromFile(source.kubeconfig);
    else throw new Error("neither a kubeconfig path nor in-cluster was given");
  } catch (err) {
    throw new ClusterError(
      "CLUSTER_CONFIG_INVALID",
      `cannot load the Kubernetes configuration${source.kubeconfig ? ` from ${source.kubeconfig}` : " (in-cluster)"}: ${errorText(err)}`,
      { cause: err },
    );
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster || !cluster.server || cluster.server.includes("undefined")) {
    throw new ClusterError(
      "CLUSTER_CONFIG_INVALID",
      source.inCluster
        ? "in-cluster configuration needs KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT: run inside a pod or pass --kubeconfig"
        : `the kubeconfig ${source.kubeconfig} has no current cluster with a server: set current-context`,
    );
  }
  return kc;
}
