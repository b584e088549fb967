import { test } from "node:test";
import assert from "node:assert/strict";
import { MemoryCluster } from "../../src/cluster/memory.js";
import { endpointSlicesFor, MAX_ENDPOINTS_PER_SLICE, startSliceController } from "../../src/discovery/slice-controller.js";
import { makePod, makeService } from "./support.js";

test("slices carry conditions the way the Kubernetes controller writes them", () => {
  const service = makeService({ name: "web" });
  const slices = endpointSlicesFor(service, [
    makePod({ name: "ok", ip: "10.0.0.1" }),
    makePod({ name: "starting", ip: "10.0.0.2", ready: false }),
    makePod({ name: "leaving", ip: "10.0.0.3", terminating: true }),
    makePod({ name: "other-app", ip: "10.0.0.4", app: "other" }),
    { ...makePod({ name: "done", ip: "10.0.0.5" }), status: { phase: "Succeeded", podIP: "10.0.0.5" } },
    { ...makePod({ name: "no-ip", ip: "" }) },
  ]);
  assert.equal(slices.length, 1);
  const slice = slices[0]!;
  assert.equal(slice.metadata?.labels?.["kubernetes.io/service-name"], "web");
  assert.deepEqual(slice.ports, [{ name: "", port: 8080, protocol: "TCP" }]);
  assert.deepEqual(
    slice.endpoints.map((e) => [e.targetRef?.name, e.conditions]),
    [
      ["leaving", { ready: false, serving: true, terminating: true }],
      ["ok", { ready: true, serving: true, terminating: false }],
      ["starting", { ready: false, serving: false, terminating: false }],
    ],
  );
  // Stable names: the same input gives the same slices.
  assert.deepEqual(endpointSlicesFor(service, [makePod({ name: "ok", ip: "10.0.0.1" })])[0]!.metadata?.name, slice.metadata?.name);
});

test("pods that resolve a named port differently go to different slices; big Services are split", () => {
  const service = makeService({ name: "api", ports: [{ name: "grpc", port: 9000, targetPort: "grpc" }] });
  const slices = endpointSlicesFor(service, [
    makePod({ name: "a", ip: "10.0.0.1", ports: { grpc: 7000 } }),
    makePod({ name: "b", ip: "10.0.0.2", ports: { grpc: 7001 } }),
  ]);
  assert.deepEqual(slices.map((s) => s.ports?.[0]?.port).sort(), [7000, 7001]);
  const many = Array.from({ length: 250 }, (_, i) => makePod({ name: `p${i}`, ip: `10.1.${i >> 8}.${i & 255}` }));
  const big = endpointSlicesFor(makeService({ name: "web" }), many);
  assert.deepEqual(big.map((s) => s.endpoints.length), [MAX_ENDPOINTS_PER_SLICE, MAX_ENDPOINTS_PER_SLICE, 50]);
  assert.equal(new Set(big.map((s) => s.metadata?.name)).size, 3);
  assert.deepEqual(endpointSlicesFor({ metadata: { name: "manual", namespace: "shop" }, spec: { ports: [{ port: 80 }] } }, many), []);
});

test("the running controller follows pods and Services and removes slices it no longer wants", () => {
  const cluster = new MemoryCluster();
  const stop = startSliceController({
    cluster,
    writer: { put: (s) => cluster.apply("EndpointSlice", s), delete: (ns, name) => void cluster.remove("EndpointSlice", ns, name) },
  });
  const manual = { metadata: { name: "hand-made", namespace: "shop", labels: { "kubernetes.io/service-name": "ext" } }, addressType: "IPv4", endpoints: [] };
  cluster.apply("EndpointSlice", manual);
  cluster.apply("Service", makeService({ name: "web" }));
  cluster.apply("Pod", makePod({ name: "a", ip: "10.0.0.1" }));
  const endpoints = () => cluster.list("EndpointSlice", "shop").flatMap((s) => s.endpoints.map((e) => e.addresses[0]));
  assert.deepEqual(endpoints(), ["10.0.0.1"]);
  cluster.apply("Pod", makePod({ name: "b", ip: "10.0.0.2" }));
  assert.deepEqual(endpoints().sort(), ["10.0.0.1", "10.0.0.2"]);
  cluster.remove("Service", "shop", "web");
  assert.deepEqual(cluster.list("EndpointSlice", "shop").map((s) => s.metadata?.name), ["hand-made"], "only slices it manages are removed");
  stop();
  cluster.apply("Service", makeService({ name: "web" }));
  assert.equal(cluster.list("EndpointSlice", "shop").length, 1, "stopped");
});
