import { test } from "node:test";
import assert from "node:assert/strict";
import { MemoryCluster } from "../../src/cluster/memory.js";
import type { ResourceEvent } from "../../src/cluster/types.js";

test("memory cluster emits ADDED, MODIFIED (only on change) and DELETED", () => {
  const cluster = new MemoryCluster();
  const seen: ResourceEvent<"Pod">[] = [];
  cluster.watch("Pod", (e) => seen.push(e));
  const pod = { metadata: { name: "a", namespace: "ns" }, spec: { containers: [] } };
  cluster.apply("Pod", pod);
  cluster.apply("Pod", structuredClone(pod));
  cluster.apply("Pod", { ...pod, metadata: { ...pod.metadata, labels: { x: "1" } } });
  assert.equal(cluster.list("Pod", "ns").length, 1);
  assert.equal(cluster.list("Pod", "other").length, 0);
  assert.ok(cluster.remove("Pod", "ns", "a"));
  assert.equal(cluster.remove("Pod", "ns", "a"), false);
  assert.deepEqual(seen.map((e) => e.type), ["ADDED", "MODIFIED", "DELETED"]);
});

test("cluster-scoped kinds ignore the namespace", () => {
  const cluster = new MemoryCluster();
  cluster.apply("Namespace", { metadata: { name: "shop", labels: { "tether.io/inject": "enabled" } } });
  assert.ok(cluster.get("Namespace", "whatever", "shop"));
  assert.equal(cluster.list("Namespace", "x").length, 1);
});
