/**
 * Destination/Get over in-process gRPC on loopback, with a MemoryCluster whose EndpointSlices
 * follow the pods as the endpoint-slice controller would.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { MemoryCluster } from "../../src/cluster/memory.js";
import { createDestinationClient, destinationErrorCode, type DestinationClient } from "../../src/api/destination-client.js";
import { startDestinationServer, type DestinationServer } from "../../src/discovery/server.js";
import { Follower, lifecycleScenario, makePod, makeService, quietLogger, runSliceController } from "./support.js";

/** The bound the issue sets for a change to reach subscribers. */
const CHANGE_MS = 100;
/** The first message needs a connection too; it is not a change, so it gets more room. */
const CONNECT_MS = 5000;

let cluster: MemoryCluster;
let server: DestinationServer;
let client: DestinationClient;
let stopController: () => void;
const followers: Follower[] = [];

function follow(path: string): Follower {
  const f = new Follower(client, path);
  followers.push(f);
  return f;
}

before(async () => {
  cluster = new MemoryCluster();
  stopController = runSliceController(cluster, {
    put: (s) => cluster.apply("EndpointSlice", s),
    delete: (ns, name) => cluster.remove("EndpointSlice", ns, name),
  });
  server = await startDestinationServer({ cluster, listen: "127.0.0.1:0", logger: quietLogger, trustDomain: "cluster.local" });
  client = createDestinationClient(server.address);
});

after(async () => {
  for (const f of followers) f.close();
  client.close();
  await server.close();
  stopController();
});

test("create, scale, make unready, delete: the first message holds the full set, each change arrives within the bound", { timeout: 30_000 }, async () => {
  await lifecycleScenario({
    client,
    cluster,
    objects: {
      applyPod: (p) => cluster.apply("Pod", p),
      removePod: (ns, name) => void cluster.remove("Pod", ns, name),
      applyService: (s) => cluster.apply("Service", s),
    },
    changeMs: CHANGE_MS,
    connectMs: CONNECT_MS,
    track: (f) => followers.push(f),
  });
});

test("a new subscriber gets the full current set as its first message", { timeout: 30_000 }, async () => {
  cluster.apply("Service", makeService({ name: "late", app: "late", clusterIP: "10.96.0.11" }));
  for (let i = 1; i <= 5; i++) cluster.apply("Pod", makePod({ name: `late-${i}`, app: "late", ip: `10.0.1.${i}` }));
  const f = follow("late.shop.svc.cluster.local:80");
  await f.until((x) => x.messages.length > 0, CONNECT_MS, "first message");
  const first = f.messages[0]!.update;
  assert.equal(first.update, "add");
  assert.equal(first.update === "add" && first.add.endpoints.length, 5);
});

test("identities, hints and labels reach the client", { timeout: 30_000 }, async () => {
  cluster.apply("Service", makeService({ name: "mixed", app: "mixed", clusterIP: "10.96.0.12", ports: [{ name: "grpc", port: 9000, targetPort: "grpc" }] }));
  cluster.apply("Pod", makePod({ name: "m-1", app: "mixed", ip: "10.0.2.1", meshed: true, serviceAccount: "mixed", ports: { grpc: 7000 }, replicaSet: "mixed" }));
  cluster.apply("Pod", makePod({ name: "m-2", app: "mixed", ip: "10.0.2.2", ports: { grpc: 7001 }, annotations: { "config.tether.io/opaque-ports": "grpc" } }));
  const f = follow("mixed.shop.svc.cluster.local:9000");
  await f.until((x) => x.state.endpoints.size === 2, CONNECT_MS, "two endpoints");
  const [meshed, plain] = f.state.list();
  assert.deepEqual(meshed, {
    address: "10.0.2.1",
    port: 7000,
    weight: 10000,
    identity: "mixed.shop.serviceaccount.identity.tether.cluster.local",
    protocolHint: "h2",
    labels: { namespace: "shop", pod: "m-1", serviceaccount: "mixed", replicaset: "mixed-5d8f7c9b4", deployment: "mixed", service: "mixed" },
  });
  assert.equal(plain!.port, 7001);
  assert.equal(plain!.identity, "");
  assert.equal(plain!.protocolHint, "opaque");
});

test("unknown Service, unknown port and empty Service answer at once, distinctly", { timeout: 30_000 }, async () => {
  cluster.apply("Service", makeService({ name: "idle", app: "nobody", clusterIP: "10.96.0.13" }));
  const unknown = follow("nope.shop.svc.cluster.local:80");
  const badPort = follow("idle.shop.svc.cluster.local:81");
  const empty = follow("idle.shop.svc.cluster.local:80");
  const unknownIp = follow("192.0.2.1:80");
  await Promise.all([unknown, badPort, empty, unknownIp].map((f) => f.until((x) => x.messages.length > 0, CONNECT_MS, "first message")));
  assert.deepEqual(unknown.messages[0]!.update, { update: "noEndpoints", noEndpoints: { exists: false } });
  assert.deepEqual(badPort.messages[0]!.update, { update: "noEndpoints", noEndpoints: { exists: false } });
  assert.deepEqual(unknownIp.messages[0]!.update, { update: "noEndpoints", noEndpoints: { exists: false } });
  assert.deepEqual(empty.messages[0]!.update, { update: "noEndpoints", noEndpoints: { exists: true } });

  // The Service appears: its subscribers see it without re-asking.
  cluster.apply("Service", makeService({ name: "nope", app: "nope", clusterIP: "10.96.0.14" }));
  await unknown.until((x) => x.state.exists === true, CHANGE_MS, "service created");
  cluster.apply("Pod", makePod({ name: "nope-1", app: "nope", ip: "10.0.3.1" }));
  await unknown.until((x) => x.addresses().join() === "10.0.3.1:8080", CHANGE_MS, "first endpoint");
  cluster.remove("Service", "shop", "nope");
  await unknown.until((x) => x.state.exists === false && x.state.endpoints.size === 0, CHANGE_MS, "service deleted");
});

test("headless Services resolve by name and by pod hostname", { timeout: 30_000 }, async () => {
  cluster.apply("Service", makeService({ name: "db", app: "db", clusterIP: "None", ports: [{ name: "pg", port: 5432, targetPort: 5432 }] }));
  cluster.apply("Pod", makePod({ name: "db-0", app: "db", ip: "10.0.4.1", hostname: "db-0", subdomain: "db", meshed: true, serviceAccount: "db" }));
  cluster.apply("Pod", makePod({ name: "db-1", app: "db", ip: "10.0.4.2", hostname: "db-1", subdomain: "db", meshed: true, serviceAccount: "db" }));
  const all = follow("db.shop.svc.cluster.local:5432");
  const one = follow("db-1.db.shop.svc.cluster.local:5432");
  await all.until((x) => x.state.endpoints.size === 2, CONNECT_MS, "both pods");
  await one.until((x) => x.addresses().join() === "10.0.4.2:5432", CONNECT_MS, "db-1 only");
  assert.equal(one.state.list()[0]!.identity, "db.shop.serviceaccount.identity.tether.cluster.local");
});

test("a pod IP resolves to that pod alone and follows it", { timeout: 30_000 }, async () => {
  cluster.apply("Pod", makePod({ name: "solo", app: "solo", ip: "10.0.5.1", meshed: true, serviceAccount: "solo" }));
  const f = follow("10.0.5.1:7777");
  await f.until((x) => x.state.endpoints.size === 1, CONNECT_MS, "the pod");
  assert.deepEqual(f.state.list()[0]!.identity, "solo.shop.serviceaccount.identity.tether.cluster.local");
  assert.equal(f.state.list()[0]!.port, 7777);
  cluster.remove("Pod", "shop", "solo");
  await f.until((x) => x.state.exists === false, CHANGE_MS, "pod deleted");
});

test("a bad path is refused with INVALID_ARGUMENT and a stable code", { timeout: 30_000 }, async () => {
  const f = follow("example.com:443");
  await f.until((x) => x.error !== undefined, CONNECT_MS, "error");
  assert.equal((f.error as grpc.ServiceError).code, grpc.status.INVALID_ARGUMENT);
  assert.equal(destinationErrorCode(f.error!), "DISCOVERY_NOT_IN_CLUSTER");
  const noPort = follow("web.shop.svc.cluster.local");
  await noPort.until((x) => x.error !== undefined, CONNECT_MS, "error");
  assert.equal(destinationErrorCode(noPort.error!), "DISCOVERY_BAD_PATH");
});

test("streams that close release their shared watch", { timeout: 30_000 }, async () => {
  cluster.apply("Service", makeService({ name: "brief", app: "brief", clusterIP: "10.96.0.15" }));
  const before = server.watcher.watchCount;
  const f = new Follower(client, "brief.shop.svc.cluster.local:80");
  await f.until((x) => x.messages.length > 0, CONNECT_MS, "first message");
  assert.equal(server.watcher.watchCount, before + 1);
  f.close();
  const deadline = Date.now() + CONNECT_MS;
  while (server.watcher.watchCount !== before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(server.watcher.watchCount, before);
});
