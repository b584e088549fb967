/**
 * Builders for pods and Services, the endpoint-slice controller wired to a writer, a follower
 * of Destination/Get that tests await with a bound, and the lifecycle scenario every cluster
 * source runs.
 */
import type { Pod, Service } from "kubernetes-types/core/v1.js";
import assert from "node:assert/strict";
import pino from "pino";
import type { DestinationUpdate } from "../../src/api/index.js";
import { DestinationState, watchDestination, type DestinationClient } from "../../src/api/destination-client.js";
import type { ClusterState } from "../../src/cluster/types.js";
import { PROXY_CONTAINER_NAME } from "../../src/api/mesh.js";
import { startSliceController, type SliceWriter } from "../../src/discovery/slice-controller.js";

export const quietLogger = pino({ level: "silent" });

export interface PodSpec {
  name: string;
  namespace?: string;
  ip: string;
  app?: string;
  meshed?: boolean;
  serviceAccount?: string;
  ready?: boolean;
  terminating?: boolean;
  annotations?: Record<string, string>;
  /** Container ports, name -> number. */
  ports?: Record<string, number>;
  replicaSet?: string;
  hostname?: string;
  subdomain?: string;
}

export function makePod(p: PodSpec): Pod {
  const containers = [
    { name: "app", image: "app", ports: Object.entries(p.ports ?? {}).map(([name, containerPort]) => ({ name, containerPort })) },
  ];
  if (p.meshed) containers.push({ name: PROXY_CONTAINER_NAME, image: "tether-proxy", ports: [] });
  const hash = "5d8f7c9b4";
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: p.name,
      namespace: p.namespace ?? "shop",
      uid: `uid-${p.name}`,
      labels: { app: p.app ?? "web", ...(p.replicaSet ? { "pod-template-hash": hash } : {}) },
      annotations: p.annotations,
      ...(p.replicaSet
        ? { ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: `${p.replicaSet}-${hash}`, uid: "rs", controller: true }] }
        : {}),
      ...(p.terminating ? { deletionTimestamp: "2026-01-01T00:00:00Z" } : {}),
    },
    spec: {
      serviceAccountName: p.serviceAccount ?? "web",
      containers,
      ...(p.hostname ? { hostname: p.hostname } : {}),
      ...(p.subdomain ? { subdomain: p.subdomain } : {}),
    },
    status: {
      phase: "Running",
      podIP: p.ip,
      podIPs: [{ ip: p.ip }],
      conditions: [{ type: "Ready", status: p.ready === false ? "False" : "True" }],
    },
  };
}

export interface ServiceSpec {
  name: string;
  namespace?: string;
  clusterIP?: string;
  app?: string;
  ports?: { name?: string; port: number; targetPort?: number | string }[];
  annotations?: Record<string, string>;
}

export function makeService(s: ServiceSpec): Service {
  const ip = s.clusterIP ?? "10.96.0.10";
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: s.name, namespace: s.namespace ?? "shop", uid: `uid-svc-${s.name}`, annotations: s.annotations },
    spec: {
      clusterIP: ip,
      clusterIPs: ip === "None" ? undefined : [ip],
      selector: { app: s.app ?? "web" },
      ports: (s.ports ?? [{ port: 80, targetPort: 8080 }]).map((p) => ({ protocol: "TCP", ...p })),
    },
  };
}

/** The endpoint-slice controller, writing through `writer` (a MemoryCluster, a fixture, files). */
export function runSliceController(cluster: ClusterState, writer: SliceWriter): () => void {
  return startSliceController({ cluster, writer });
}

/** Resolves when `predicate` holds, checking after every call of the returned `poke`; rejects after `ms`. */
export function waitFor(predicate: () => boolean, ms: number, what: string): { promise: Promise<void>; poke: () => void } {
  let poke = () => {};
  const promise = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    poke = () => {
      if (predicate()) {
        clearTimeout(timer);
        resolve();
      }
    };
    poke();
  });
  return { promise, poke };
}

/** Follows one path over gRPC and lets a test wait, with a bound, for the state it expects. */
export class Follower {
  readonly state = new DestinationState();
  readonly messages: { update: DestinationUpdate; first: boolean }[] = [];
  error: Error | undefined;
  private readonly waiters = new Set<() => void>();
  private readonly watch;

  constructor(client: DestinationClient, path: string) {
    this.watch = watchDestination(
      client,
      path,
      (update, first) => {
        this.messages.push({ update, first });
        this.state.apply(update, first);
        for (const w of [...this.waiters]) w();
      },
      {
        onError: (err) => {
          this.error = err;
          for (const w of [...this.waiters]) w();
        },
      },
    );
  }

  /** Resolves once `predicate` holds (checked now and on every message); rejects after `ms`. */
  until(predicate: (f: Follower) => boolean, ms: number, what: string): Promise<void> {
    const { promise, poke } = waitFor(() => predicate(this), ms, what);
    this.waiters.add(poke);
    return promise.finally(() => this.waiters.delete(poke));
  }

  addresses(): string[] {
    return this.state.list().map((e) => `${e.address}:${e.port}`);
  }

  close(): void {
    this.watch.close();
  }
}

/** How a scenario changes the cluster: through a MemoryCluster, an API server, or files. */
export interface ObjectWriter {
  applyPod(pod: Pod): void | Promise<void>;
  removePod(namespace: string, name: string): void | Promise<void>;
  applyService(service: Service): void | Promise<void>;
}

/**
 * Create, scale, make unready, terminate, delete and scale to zero, with subscribers by name and
 * by cluster IP: the first message holds the full set, then each change reaches both within
 * `changeMs` of the cluster cache showing it, as deltas. Uses namespace `life` so it can share a cluster with other tests.
 */
export async function lifecycleScenario(opts: {
  client: DestinationClient;
  /** Read to know when the initial pods are in the cache (asynchronous sources). */
  cluster: ClusterState;
  objects: ObjectWriter;
  changeMs: number;
  connectMs: number;
  track: (f: Follower) => void;
}): Promise<void> {
  const { objects, changeMs, connectMs } = opts;
  const pod = (name: string, ip: string, extra: Partial<PodSpec> = {}) =>
    makePod({ name, ip, namespace: "life", app: "life", meshed: true, serviceAccount: "life", ...extra });
  await objects.applyService(makeService({ name: "life", namespace: "life", app: "life", clusterIP: "10.96.7.1" }));
  await objects.applyPod(pod("life-1", "10.7.0.1"));
  await objects.applyPod(pod("life-2", "10.7.0.2"));

  // The first message holds the full set known to the server; wait until that is both pods.
  const cached = waitFor(
    () => opts.cluster.list("EndpointSlice", "life").flatMap((sl) => sl.endpoints ?? []).filter((e) => e.conditions?.ready).length === 2,
    connectMs,
    "both pods in the cache",
  );
  const poll = setInterval(cached.poke, 5);
  await cached.promise.finally(() => clearInterval(poll));

  const watchers = ["life.life.svc.cluster.local:80", "10.96.7.1:80"].map((p) => {
    const f = new Follower(opts.client, p);
    opts.track(f);
    return f;
  });
  const same = (a: string[], b: string[]) => JSON.stringify(a) === JSON.stringify(b);
  await Promise.all(watchers.map((f) => f.until((x) => same(x.addresses(), ["10.7.0.1:8080", "10.7.0.2:8080"]), connectMs, "both pods")));
  for (const f of watchers) {
    assert.equal(f.messages[0]!.update.update, "add");
    assert.equal(f.messages[0]!.update.update === "add" && f.messages[0]!.update.add.endpoints.length, 2, "first message holds the full set");
    assert.equal(f.state.list()[0]!.identity, "life.life.serviceaccount.identity.tether.cluster.local");
  }

  /**
   * The bound runs from the moment the cluster cache shows the change (the last of `pods` to
   * change), so it measures discovery, not how a file watcher or an API server delivers it.
   */
  const step = async (what: string, pods: string[], change: () => void | Promise<void>, want: string[]) => {
    const before = watchers.map((f) => f.messages.length);
    const pending = new Set(pods);
    let stopWatch = () => {};
    const reached = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what}: the cluster cache did not show the change within ${connectMs} ms`)), connectMs);
      stopWatch = opts.cluster.watch("Pod", (e) => {
        pending.delete(e.object.metadata?.name ?? "");
        if (pending.size > 0) return;
        clearTimeout(timer);
        stopWatch();
        // The clock of the bound starts here.
        Promise.all(watchers.map((f) => f.until((x) => same(x.addresses(), want), changeMs, `${what} within ${changeMs} ms`))).then(() => resolve(), reject);
      });
    });
    try {
      await change();
      await reached;
    } finally {
      stopWatch();
    }
    watchers.forEach((f, i) => {
      for (const m of f.messages.slice(before[i])) {
        assert.equal(m.first, false);
        if (m.update.update === "add") assert.ok(m.update.add.endpoints.length <= 1, `${what}: deltas only`);
      }
    });
  };
  await step("scale up", ["life-3"], () => objects.applyPod(pod("life-3", "10.7.0.3")), ["10.7.0.1:8080", "10.7.0.2:8080", "10.7.0.3:8080"]);
  await step("unready", ["life-1"], () => objects.applyPod(pod("life-1", "10.7.0.1", { ready: false })), ["10.7.0.2:8080", "10.7.0.3:8080"]);
  await step("terminating", ["life-2"], () => objects.applyPod(pod("life-2", "10.7.0.2", { terminating: true })), ["10.7.0.3:8080"]);
  await step("ready again", ["life-1"], () => objects.applyPod(pod("life-1", "10.7.0.1")), ["10.7.0.1:8080", "10.7.0.3:8080"]);
  await step("deleted", ["life-3"], () => objects.removePod("life", "life-3"), ["10.7.0.1:8080"]);
  await step("scale to zero", ["life-1", "life-2"], async () => {
    await objects.removePod("life", "life-1");
    await objects.removePod("life", "life-2");
  }, []);
  for (const f of watchers) assert.deepEqual(f.messages.at(-1)!.update, { update: "noEndpoints", noEndpoints: { exists: true } });
}
