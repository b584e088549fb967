/**
 * An in-memory ClusterState: the cache behind the local-folder source, and the cluster that unit
 * tests of controllers build by hand. `apply` and `remove` produce the watch events.
 */
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

type AnyHandler = (event: ResourceEvent) => void;

interface Named {
  metadata?: { name?: string; namespace?: string };
}

export class MemoryCluster implements ClusterState {
  private readonly objects = new Map<ResourceKind, Map<string, unknown>>();
  private readonly handlers = new Map<ResourceKind, Set<AnyHandler>>();
  private readonly statuses = new Map<string, unknown>();

  constructor() {
    for (const kind of RESOURCE_KINDS) {
      this.objects.set(kind, new Map());
      this.handlers.set(kind, new Set());
    }
  }

  list<K extends ResourceKind>(kind: K, namespace?: string): ResourceTypes[K][] {
    const all = [...this.objects.get(kind)!.values()] as ResourceTypes[K][];
    if (namespace === undefined || !RESOURCE_API[kind].namespaced) return all;
    return all.filter((o) => (o as Named).metadata?.namespace === namespace);
  }

  get<K extends ResourceKind>(kind: K, namespace: string | undefined, name: string): ResourceTypes[K] | undefined {
    const ns = RESOURCE_API[kind].namespaced ? namespace : undefined;
    return this.objects.get(kind)!.get(objectKey(ns, name)) as ResourceTypes[K] | undefined;
  }

  watch<K extends ResourceKind>(kind: K, handler: (event: ResourceEvent<K>) => void): Unsubscribe {
    const set = this.handlers.get(kind)!;
    const h = handler as unknown as AnyHandler;
    set.add(h);
    return () => set.delete(h);
  }

  ready(): Promise<void> {
    return Promise.resolve();
  }

  /** Adds or replaces an object; emits ADDED or MODIFIED (nothing when it is unchanged). */
  apply<K extends ResourceKind>(kind: K, object: ResourceTypes[K]): void {
    const meta = (object as Named).metadata ?? {};
    if (!meta.name) throw new Error(`${kind} without metadata.name`);
    const key = objectKey(RESOURCE_API[kind].namespaced ? meta.namespace ?? "default" : undefined, meta.name);
    const store = this.objects.get(kind)!;
    const previous = store.get(key);
    if (previous !== undefined && JSON.stringify(previous) === JSON.stringify(object)) return;
    store.set(key, object);
    this.emit({ type: previous === undefined ? "ADDED" : "MODIFIED", kind, object } as ResourceEvent);
  }

  /** Removes an object; emits DELETED with its last state. Returns whether it existed. */
  remove(kind: ResourceKind, namespace: string | undefined, name: string): boolean {
    const key = objectKey(RESOURCE_API[kind].namespaced ? namespace : undefined, name);
    const store = this.objects.get(kind)!;
    const previous = store.get(key);
    if (previous === undefined) return false;
    store.delete(key);
    this.emit({ type: "DELETED", kind, object: previous } as ResourceEvent);
    return true;
  }

  /** Every (kind, key) currently held; sources use it to compute deletions on a re-list. */
  keys(kind: ResourceKind): string[] {
    return [...this.objects.get(kind)!.keys()];
  }

  async writeStatus(kind: ResourceKind, namespace: string, name: string, status: unknown): Promise<void> {
    this.statuses.set(`${kind}/${objectKey(namespace, name)}`, status);
  }

  /** The last status written for an object (local source: statuses are not written back to files). */
  statusOf(kind: ResourceKind, namespace: string, name: string): unknown {
    return this.statuses.get(`${kind}/${objectKey(namespace, name)}`);
  }

  async close(): Promise<void> {
    for (const set of this.handlers.values()) set.clear();
  }

  private emit(event: ResourceEvent): void {
    for (const handler of [...this.handlers.get(event.kind)!]) {
      try {
        handler(event);
      } catch {
        // A failing subscriber must not stop the others from seeing the change; subscribers log their own errors.
      }
    }
  }
}
