import { test } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import { KubernetesCluster, loadKubeConfig } from "../../src/cluster/kubernetes.js";
import type { ResourceEvent, ResourceKind } from "../../src/cluster/types.js";
import { ClusterError } from "../../src/cluster/errors.js";
import { startKubeApiFixture, type KubeApiFixture, type KubeApiFixtureOptions } from "../support/kube-api-fixture.js";
import { waitFor } from "../support/kube-wait.js";

const silent = pino({ level: "silent" });

async function setup(
  t: { after: (fn: () => Promise<void>) => void },
  fixtureOptions: KubeApiFixtureOptions = {},
  clusterOptions: { resyncMs?: number; kinds?: ResourceKind[] } = {},
): Promise<{ fixture: KubeApiFixture; cluster: KubernetesCluster }> {
  const fixture = await startKubeApiFixture({ bookmarkIntervalMs: 50, ...fixtureOptions });
  const kubeConfig = loadKubeConfig({ kubeconfig: await fixture.kubeconfigPath() });
  const cluster = new KubernetesCluster({
    kubeConfig,
    logger: silent,
    backoff: { initialMs: 10, maxMs: 100 },
    resyncMs: clusterOptions.resyncMs ?? 0,
    ...(clusterOptions.kinds ? { kinds: clusterOptions.kinds } : {}),
  });
  t.after(async () => {
    await cluster.close();
    await fixture.close();
  });
  return { fixture, cluster };
}

function pod(name: string, namespace = "shop", labels: Record<string, string> = {}) {
  return { apiVersion: "v1", kind: "Pod", metadata: { name, namespace, labels }, spec: { serviceAccountName: "web", containers: [{ name: "app", image: "app" }] } };
}

function record<K extends ResourceKind>(cluster: KubernetesCluster, kind: K): string[] {
  const seen: string[] = [];
  cluster.watch(kind, (e: ResourceEvent<K>) => seen.push(`${e.type} ${(e.object as { metadata?: { name?: string } }).metadata?.name}`));
  return seen;
}

function listRequests(fixture: KubeApiFixture, path: string): number {
  return fixture.requests.filter((r) => r.method === "GET" && r.path === path && r.query.watch === undefined).length;
}

test("lists every kind, becomes ready, and caches objects with kind and apiVersion", { timeout: 20_000 }, async (t) => {
  const { fixture, cluster } = await setup(t);
  fixture.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: "shop", labels: { "tether.io/inject": "enabled" } } });
  fixture.apply(pod("web-1"));
  fixture.apply(pod("other", "elsewhere"));
  fixture.apply({ apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice", metadata: { name: "web-abc", namespace: "shop" }, addressType: "IPv4", endpoints: [] });
  await cluster.ready();
  const got = cluster.get("Pod", "shop", "web-1");
  assert.equal(got?.kind, "Pod");
  assert.equal(got?.apiVersion, "v1");
  assert.equal(cluster.list("Pod").length, 2);
  assert.equal(cluster.list("Pod", "shop").length, 1);
  assert.equal(cluster.get("Namespace", undefined, "shop")?.metadata?.labels?.["tether.io/inject"], "enabled");
  assert.equal(cluster.list("EndpointSlice", "shop").length, 1);
  // The real client authenticated with the kubeconfig's token and asked for bookmarks.
  await waitFor(() => fixture.openWatches() >= 12, "every kind watching");
  const watches = fixture.requests.filter((r) => r.query.watch === "true");
  assert.deepEqual(watches.filter((r) => r.authorization !== "Bearer fixture-token" || r.query.allowWatchBookmarks !== "true"), []);
});

test("watch turns creations, updates and deletions into events", { timeout: 20_000 }, async (t) => {
  const { fixture, cluster } = await setup(t);
  await cluster.ready();
  const seen = record(cluster, "Pod");
  await waitFor(() => fixture.openWatches() >= 12, "every kind watching");
  fixture.apply(pod("a"));
  await waitFor(() => cluster.get("Pod", "shop", "a"), "pod a added");
  fixture.apply(pod("a", "shop", { version: "2" }));
  await waitFor(() => cluster.get("Pod", "shop", "a")?.metadata?.labels?.version === "2", "pod a modified");
  fixture.remove("v1", "Pod", "shop", "a");
  await waitFor(() => cluster.get("Pod", "shop", "a") === undefined, "pod a deleted");
  assert.deepEqual(seen, ["ADDED a", "MODIFIED a", "DELETED a"]);
});

for (const graceful of [false, true]) {
  test(`after watches are dropped (${graceful ? "cleanly" : "abruptly"}) it resumes from its resourceVersion without re-listing`, { timeout: 20_000 }, async (t) => {
    const { fixture, cluster } = await setup(t);
    await cluster.ready();
    await waitFor(() => fixture.openWatches() >= 12, "every kind watching");
    const lists = listRequests(fixture, "/api/v1/pods");
    const seen = record(cluster, "Pod");
    for (let round = 0; round < 3; round++) {
      assert.ok(fixture.dropWatches({ graceful }) > 0);
      // Made while no watch is open: the resumed watch replays it from the server's history.
      fixture.apply(pod(`p${round}`));
      await waitFor(() => cluster.get("Pod", "shop", `p${round}`), `pod p${round} after reconnect`);
    }
    assert.deepEqual(seen, ["ADDED p0", "ADDED p1", "ADDED p2"]);
    assert.equal(listRequests(fixture, "/api/v1/pods"), lists, "no re-list was needed");
    const resumed = fixture.requests.filter((r) => r.path === "/api/v1/pods" && r.query.watch === "true").slice(1);
    assert.ok(resumed.length >= 3 && resumed.every((r) => Number(r.query.resourceVersion) > 0));
  });
}

for (const as of ["status", "event"] as const) {
  test(`410 Gone (${as === "status" ? "HTTP 410" : "ERROR event"}) re-lists and reconciles changes made while disconnected`, { timeout: 20_000 }, async (t) => {
    const { fixture, cluster } = await setup(t);
    fixture.apply(pod("keep"));
    fixture.apply(pod("change"));
    fixture.apply(pod("gone"));
    await cluster.ready();
    await waitFor(() => fixture.openWatches() >= 12, "every kind watching");
    const seen = record(cluster, "Pod");
    fixture.apply(pod("watched"));
    await waitFor(() => cluster.get("Pod", "shop", "watched"), "a pod that arrived through the watch");
    const lists = listRequests(fixture, "/api/v1/pods");
    // All in one turn: no client can reconnect in between, so only a re-list can see these.
    fixture.dropWatches();
    fixture.apply(pod("change", "shop", { version: "2" }));
    fixture.remove("v1", "Pod", "shop", "gone");
    fixture.apply(pod("new"));
    fixture.expire({ as });
    await waitFor(() => seen.length >= 4, "three reconciling events");
    assert.ok(listRequests(fixture, "/api/v1/pods") > lists, "the pods were re-listed");
    // Unchanged objects (listed before, or delivered by the watch) produce no event.
    assert.deepEqual([...seen].sort(), ["ADDED new", "ADDED watched", "DELETED gone", "MODIFIED change"]);
    assert.deepEqual(cluster.list("Pod").map((p) => p.metadata?.name).sort(), ["change", "keep", "new", "watched"]);
    const gone = fixture.requests.filter((r) => r.path === "/api/v1/pods" && r.query.watch === "true" && r.status === (as === "status" ? 410 : 200));
    assert.ok(gone.length > 0);
    // Watching goes on after the re-list.
    fixture.apply(pod("later"));
    await waitFor(() => cluster.get("Pod", "shop", "later"), "pod added after the re-list");
  });
}

test("an ERROR 410 on an open watch re-lists", { timeout: 20_000 }, async (t) => {
  const { fixture, cluster } = await setup(t, {}, { kinds: ["Pod"] });
  await cluster.ready();
  await waitFor(() => fixture.openWatches() === 1, "pod watch open");
  const lists = listRequests(fixture, "/api/v1/pods");
  fixture.expire({ as: "event" });
  await waitFor(() => listRequests(fixture, "/api/v1/pods") > lists, "a re-list");
  fixture.apply(pod("x"));
  await waitFor(() => cluster.get("Pod", "shop", "x"), "pod x after the re-list");
});

test("bookmarks keep a quiet watch's resourceVersion current, so a resume after compaction needs no re-list", { timeout: 20_000 }, async (t) => {
  const { fixture, cluster } = await setup(t, {}, { kinds: ["Pod", "Service"] });
  await cluster.ready();
  await waitFor(() => fixture.openWatches() === 2, "both kinds watching");
  // Many changes to Services move the global resourceVersion while the Pod watch stays quiet.
  for (let i = 0; i < 20; i++) fixture.apply({ apiVersion: "v1", kind: "Service", metadata: { name: `s${i}`, namespace: "shop" }, spec: { ports: [{ port: 80 }] } });
  const bookmarks = async () => {
    const metric = await cluster.registry.getSingleMetric("tether_cluster_watch_events_total")!.get();
    return metric.values.find((v) => v.labels.kind === "Pod" && v.labels.type === "BOOKMARK")?.value ?? 0;
  };
  const before = await bookmarks();
  await waitFor(async () => (await bookmarks()) > before, "a pod bookmark after the service changes");
  const lists = listRequests(fixture, "/api/v1/pods");
  fixture.dropWatches();
  fixture.expire();
  fixture.apply(pod("after"));
  await waitFor(() => cluster.get("Pod", "shop", "after"), "pod after compaction");
  assert.equal(listRequests(fixture, "/api/v1/pods"), lists, "resumed from the bookmark, no 410");
});

test("custom resources are listed and watched, and writeStatus merge-patches the status subresource", { timeout: 20_000 }, async (t) => {
  const { fixture, cluster } = await setup(t);
  await cluster.ready();
  fixture.apply({
    apiVersion: "policy.tether.io/v1alpha1",
    kind: "Server",
    metadata: { name: "web-grpc", namespace: "shop" },
    spec: { podSelector: { matchLabels: { app: "web" } }, port: "grpc", proxyProtocol: "gRPC" },
  });
  await waitFor(() => cluster.get("Server", "shop", "web-grpc"), "server added");
  const conditions = [{ type: "Accepted", status: "True", reason: "Accepted", message: "", lastTransitionTime: "2026-01-01T00:00:00Z" }];
  await cluster.writeStatus("Server", "shop", "web-grpc", { conditions });
  assert.deepEqual(fixture.get("policy.tether.io/v1alpha1", "Server", "shop", "web-grpc")?.status, { conditions });
  await waitFor(() => cluster.get("Server", "shop", "web-grpc")?.status?.conditions?.[0]?.type === "Accepted", "status seen through the watch");
  assert.equal(cluster.get("Server", "shop", "web-grpc")?.spec.port, "grpc", "the spec was left alone");
  const patch = fixture.requests.find((r) => r.method === "PATCH");
  assert.equal(patch?.path, "/apis/policy.tether.io/v1alpha1/namespaces/shop/servers/web-grpc/status");
  await assert.rejects(cluster.writeStatus("Server", "shop", "nope", {}), (err: unknown) => err instanceof ClusterError && err.code === "CLUSTER_OBJECT_NOT_FOUND");
});

test("a kind whose CRD is missing does not block ready, and is picked up once installed", { timeout: 20_000 }, async (t) => {
  const { fixture, cluster } = await setup(t, { omitKinds: ["Server", "GRPCRoute"] });
  await cluster.ready();
  assert.deepEqual(cluster.absentKinds().sort(), ["GRPCRoute", "Server"]);
  assert.deepEqual(cluster.list("Server"), []);
  const seen = record(cluster, "Server");
  fixture.defineResource({ group: "policy.tether.io", version: "v1alpha1", kind: "Server", plural: "servers", namespaced: true, custom: true, statusSubresource: true });
  fixture.apply({ apiVersion: "policy.tether.io/v1alpha1", kind: "Server", metadata: { name: "s", namespace: "shop" }, spec: { podSelector: {}, port: 8080 } });
  await waitFor(() => cluster.get("Server", "shop", "s"), "server listed after its CRD appeared");
  assert.deepEqual(cluster.absentKinds(), ["GRPCRoute"]);
  fixture.apply({ apiVersion: "policy.tether.io/v1alpha1", kind: "Server", metadata: { name: "t", namespace: "shop" }, spec: { podSelector: {}, port: 9090 } });
  await waitFor(() => cluster.get("Server", "shop", "t"), "server watched after its CRD appeared");
  // Uninstalling the CRD deletes its objects; the cache follows.
  fixture.removeResource("Server");
  await waitFor(() => cluster.list("Server").length === 0, "servers gone with their CRD");
  assert.deepEqual(seen, ["ADDED s", "ADDED t", "DELETED s", "DELETED t"]);
});

test("list errors are retried with backoff until the server answers", { timeout: 20_000 }, async (t) => {
  const fixture = await startKubeApiFixture();
  let failures = 0;
  const unroute = fixture.route("GET", "/api/v1/pods", (_req, res) => {
    failures += 1;
    res.writeHead(500, { "content-type": "application/json" });
    res.end(JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", message: "etcd unavailable", reason: "InternalError", code: 500 }));
  });
  const cluster = new KubernetesCluster({
    kubeConfig: loadKubeConfig({ kubeconfig: await fixture.kubeconfigPath() }),
    logger: silent,
    kinds: ["Pod", "Namespace"],
    backoff: { initialMs: 5, maxMs: 50 },
    resyncMs: 0,
  });
  t.after(async () => {
    await cluster.close();
    await fixture.close();
  });
  fixture.apply(pod("a"));
  let ready = false;
  void cluster.ready().then(() => (ready = true));
  await waitFor(() => failures >= 3, "three failed lists");
  assert.equal(ready, false, "not ready while pods cannot be listed");
  unroute();
  await cluster.ready();
  assert.ok(cluster.get("Pod", "shop", "a"));
});

test("watch errors (HTTP 500, refused watches) are retried and the watch resumes", { timeout: 20_000 }, async (t) => {
  const { fixture, cluster } = await setup(t, {}, { kinds: ["Pod"] });
  await cluster.ready();
  await waitFor(() => fixture.openWatches() === 1, "pod watch open");
  let refused = 0;
  const unroute = fixture.route("GET", "/api/v1/pods", (req, res) => {
    if (!req.url?.includes("watch=true")) return false;
    refused += 1;
    res.writeHead(500, { "content-type": "application/json" });
    res.end(JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", message: "overloaded", reason: "InternalError", code: 500 }));
  });
  fixture.dropWatches();
  fixture.apply(pod("during-outage"));
  await waitFor(() => refused >= 3, "three refused watches");
  assert.equal(cluster.get("Pod", "shop", "during-outage"), undefined);
  unroute();
  await waitFor(() => cluster.get("Pod", "shop", "during-outage"), "the change made during the outage");
  const restarts = (await cluster.registry.getSingleMetric("tether_cluster_watch_restarts_total")!.get()).values;
  assert.ok(restarts.some((v) => v.labels.reason === "http_500" && v.value >= 3));
});

test("resync repairs a change whose watch event was lost", { timeout: 20_000 }, async (t) => {
  const { fixture, cluster } = await setup(t, {}, { kinds: ["Pod"], resyncMs: 100 });
  fixture.apply(pod("a"));
  await cluster.ready();
  const seen = record(cluster, "Pod");
  fixture.apply(pod("a", "shop", { lost: "event" }), { silent: true });
  await waitFor(() => cluster.get("Pod", "shop", "a")?.metadata?.labels?.lost === "event", "the silent change after a resync");
  assert.deepEqual(seen, ["MODIFIED a"]);
});

test("loadKubeConfig refuses a missing file and in-cluster outside a pod", () => {
  assert.throws(() => loadKubeConfig({ kubeconfig: "/nonexistent/kubeconfig" }), (err: unknown) => err instanceof ClusterError && err.code === "CLUSTER_CONFIG_INVALID");
  const saved = process.env.KUBERNETES_SERVICE_HOST;
  delete process.env.KUBERNETES_SERVICE_HOST;
  try {
    assert.throws(() => loadKubeConfig({ inCluster: true }), (err: unknown) => err instanceof ClusterError && err.code === "CLUSTER_CONFIG_INVALID");
  } finally {
    if (saved !== undefined) process.env.KUBERNETES_SERVICE_HOST = saved;
  }
});
