import { test } from "node:test";
import assert from "node:assert/strict";
import type { DestinationUpdate } from "../../src/api/index.js";
import { DestinationState } from "../../src/api/destination-client.js";
import { MemoryCluster } from "../../src/cluster/memory.js";
import { DestinationWatcher, type Sink } from "../../src/discovery/watcher.js";
import { parseDestinationPath } from "../../src/discovery/path.js";
import { makePod, makeService, quietLogger, runSliceController } from "./support.js";

class RecordingSink implements Sink<DestinationUpdate> {
  readonly received: DestinationUpdate[][] = [];
  readonly state = new DestinationState();
  full = false;
  write(messages: readonly DestinationUpdate[]): boolean {
    messages.forEach((m, i) => this.state.apply(m, this.received.length === 0 && i === 0));
    this.received.push([...messages]);
    return !this.full;
  }
  addrs(): string[] {
    return this.state.list().map((e) => `${e.address}:${e.port}`);
  }
}

async function setup() {
  const cluster = new MemoryCluster();
  const stopController = runSliceController(cluster, {
    put: (s) => cluster.apply("EndpointSlice", s),
    delete: (ns, name) => cluster.remove("EndpointSlice", ns, name),
  });
  const watcher = new DestinationWatcher<DestinationUpdate>({ cluster, trustDomain: "cluster.local", logger: quietLogger, encode: (u) => u });
  await watcher.start();
  const target = (p: string) => parseDestinationPath(p, "cluster.local");
  const settle = () => new Promise<void>((r) => setImmediate(r));
  return { cluster, watcher, target, settle, stop: () => (stopController(), watcher.stop()) };
}

test("one shared watch per target, computed once per change, released with its last subscriber", { timeout: 30_000 }, async () => {
  const { cluster, watcher, target, settle, stop } = await setup();
  cluster.apply("Service", makeService({ name: "web" }));
  cluster.apply("Pod", makePod({ name: "a", ip: "10.0.0.1" }));
  const sinks = Array.from({ length: 50 }, () => new RecordingSink());
  const subs = sinks.map((s) => watcher.subscribe(target("web.shop.svc.cluster.local:80"), s));
  assert.equal(watcher.watchCount, 1);
  for (const s of sinks) assert.deepEqual(s.addrs(), ["10.0.0.1:8080"]);

  cluster.apply("Pod", makePod({ name: "b", ip: "10.0.0.2" }));
  await settle();
  for (const s of sinks) assert.deepEqual(s.addrs(), ["10.0.0.1:8080", "10.0.0.2:8080"]);
  // Every subscriber got the very same message object: encoded once, written to all.
  const shared = sinks[0]!.received[1]![0];
  for (const s of sinks) assert.equal(s.received[1]![0], shared);
  const adds = await watcher.metrics.updates.get();
  assert.equal(adds.values.find((v) => v.labels.type === "add")?.value, 1);

  for (const sub of subs.slice(1)) sub.close();
  assert.equal(watcher.watchCount, 1);
  subs[0]!.close();
  assert.equal(watcher.watchCount, 0);
  stop();
});

test("a burst of changes in one tick is coalesced into one update", { timeout: 30_000 }, async () => {
  const { cluster, watcher, target, settle, stop } = await setup();
  cluster.apply("Service", makeService({ name: "web" }));
  const sink = new RecordingSink();
  const sub = watcher.subscribe(target("web.shop.svc.cluster.local:80"), sink);
  for (let i = 1; i <= 20; i++) cluster.apply("Pod", makePod({ name: `p${i}`, ip: `10.0.0.${i}` }));
  await settle();
  assert.equal(sink.received.length, 2);
  assert.equal(sink.addrs().length, 20);
  sub.close();
  stop();
});

test("a full subscriber is skipped, then gets one catch-up diff when it drains", { timeout: 30_000 }, async () => {
  const { cluster, watcher, target, settle, stop } = await setup();
  cluster.apply("Service", makeService({ name: "web" }));
  cluster.apply("Pod", makePod({ name: "a", ip: "10.0.0.1" }));
  const slow = new RecordingSink();
  const fast = new RecordingSink();
  const slowSub = watcher.subscribe(target("web.shop.svc.cluster.local:80"), slow);
  watcher.subscribe(target("web.shop.svc.cluster.local:80"), fast);
  slow.full = true;
  cluster.apply("Pod", makePod({ name: "b", ip: "10.0.0.2" }));
  await settle();
  cluster.apply("Pod", makePod({ name: "c", ip: "10.0.0.3" }));
  await settle();
  cluster.remove("Pod", "shop", "a");
  await settle();
  assert.equal(fast.received.length, 4);
  assert.equal(slow.received.length, 2, "writes stop while the sink is full");
  slow.full = false;
  slowSub.resume();
  assert.equal(slow.received.length, 3, "one catch-up");
  assert.deepEqual(slow.addrs(), ["10.0.0.2:8080", "10.0.0.3:8080"]);
  assert.deepEqual(slow.addrs(), fast.addrs());
  stop();
});

test("an IP watch follows the Service that takes the IP, and a pod IP watch follows its pod", { timeout: 30_000 }, async () => {
  const { cluster, watcher, target, settle, stop } = await setup();
  const byIp = new RecordingSink();
  watcher.subscribe(target("10.96.0.10:80"), byIp);
  assert.deepEqual(byIp.received[0], [{ update: "noEndpoints", noEndpoints: { exists: false } }]);
  cluster.apply("Pod", makePod({ name: "a", ip: "10.0.0.1", meshed: true }));
  cluster.apply("Service", makeService({ name: "web", clusterIP: "10.96.0.10" }));
  await settle();
  assert.deepEqual(byIp.addrs(), ["10.0.0.1:8080"]);

  const byPod = new RecordingSink();
  watcher.subscribe(target("10.0.0.1:8080"), byPod);
  assert.equal(byPod.state.list()[0]!.identity, "web.shop.serviceaccount.identity.tether.cluster.local");
  cluster.apply("Pod", makePod({ name: "a", ip: "10.0.0.1", meshed: false }));
  await settle();
  assert.equal(byPod.state.list()[0]!.identity, "", "the pod left the mesh");
  cluster.remove("Pod", "shop", "a");
  await settle();
  assert.equal(byPod.state.exists, false);
  assert.equal(byIp.state.exists, true);
  assert.deepEqual(byIp.addrs(), []);
  cluster.remove("Service", "shop", "web");
  await settle();
  assert.equal(byIp.state.exists, false);
  stop();
});

test("a namespace annotation change re-evaluates protocol hints", { timeout: 30_000 }, async () => {
  const { cluster, watcher, target, settle, stop } = await setup();
  cluster.apply("Namespace", { metadata: { name: "shop" } });
  cluster.apply("Service", makeService({ name: "web" }));
  cluster.apply("Pod", makePod({ name: "a", ip: "10.0.0.1", meshed: true }));
  const sink = new RecordingSink();
  watcher.subscribe(target("web.shop.svc.cluster.local:80"), sink);
  assert.equal(sink.state.list()[0]!.protocolHint, "h2");
  cluster.apply("Namespace", { metadata: { name: "shop", annotations: { "config.tether.io/opaque-ports": "8080" } } });
  await settle();
  assert.equal(sink.state.list()[0]!.protocolHint, "opaque");
  stop();
});

test("malformed objects are counted and logged, never crash, and the last good answer stays", { timeout: 30_000 }, async () => {
  const { cluster, watcher, target, settle, stop } = await setup();
  cluster.apply("Service", makeService({ name: "web" }));
  cluster.apply("Pod", makePod({ name: "a", ip: "10.0.0.1" }));
  const sink = new RecordingSink();
  watcher.subscribe(target("web.shop.svc.cluster.local:80"), sink);
  cluster.apply("Service", { metadata: { name: "web", namespace: "shop" }, spec: { ports: "oops" } } as never);
  cluster.apply("EndpointSlice", { metadata: { name: "bad", namespace: "shop", labels: { "kubernetes.io/service-name": "web" } }, endpoints: 5 } as never);
  await settle();
  assert.deepEqual(sink.addrs(), ["10.0.0.1:8080"]);
  assert.ok(((await watcher.metrics.errors.get()).values[0]?.value ?? 0) >= 2);
  // The shared watch still gives its last good answer to a new subscriber...
  const late = new RecordingSink();
  watcher.subscribe(target("web.shop.svc.cluster.local:80"), late);
  assert.deepEqual(late.addrs(), ["10.0.0.1:8080"]);
  // ...and a target that must be computed now is refused with a code, so the client retries.
  assert.throws(
    () => watcher.subscribe(target("web.shop.svc.cluster.local:81"), new RecordingSink()),
    (e: Error & { code?: string }) => e.code === "DISCOVERY_INTERNAL" && /retry later/.test(e.message),
  );
  stop();
});
