import { test } from "node:test";
import assert from "node:assert/strict";
import { loadKubeConfig } from "../../src/cluster/kubernetes.js";
import { statRows } from "../../src/viz/aggregate.js";
import { scrapeSource } from "../../src/viz/sources.js";
import { kubernetesTargets, podWorkload } from "../../src/viz/targets.js";
import { startKubeApiFixture } from "../support/kube-api-fixture.js";
import { NS, startFakeMesh } from "./fake-mesh.js";

const meshedPod = (name: string, opts: { replicaSet?: string; hash?: string; sa?: string; phase?: string; proxy?: boolean } = {}) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: {
    name,
    namespace: NS,
    labels: opts.hash ? { "pod-template-hash": opts.hash } : {},
    ...(opts.replicaSet ? { ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: opts.replicaSet, uid: "u", controller: true }] } : {}),
  },
  spec: { serviceAccountName: opts.sa ?? "default", containers: [{ name: "app" }, ...(opts.proxy === false ? [] : [{ name: "tether-proxy" }])] },
  status: { phase: opts.phase ?? "Running" },
});

test("podWorkload: the Deployment behind a ReplicaSet, else the owner, else the pod", () => {
  assert.equal(podWorkload({ metadata: { name: "echo-7f9c-abcde", labels: { "pod-template-hash": "7f9c" }, ownerReferences: [{ kind: "ReplicaSet", name: "echo-7f9c" }] } }), "echo");
  assert.equal(podWorkload({ metadata: { name: "db-0", ownerReferences: [{ kind: "StatefulSet", name: "db" }] } }), "db");
  assert.equal(podWorkload({ metadata: { name: "lonely" } }), "lonely");
});

test("Kubernetes targets: running pods with a tether-proxy container, scraped through the API server's pod proxy", { timeout: 20_000 }, async (t) => {
  const mesh = await startFakeMesh(2);
  t.after(() => mesh.close());
  const api = await startKubeApiFixture();
  t.after(() => api.close());
  api.apply(meshedPod("client-0", { sa: "client" }));
  api.apply(meshedPod("echo-0", { replicaSet: "echo-5d8f", hash: "5d8f", sa: "echo" }));
  api.apply(meshedPod("echo-1", { replicaSet: "echo-5d8f", hash: "5d8f", sa: "echo" }));
  api.apply(meshedPod("plain-0", { proxy: false }));
  api.apply(meshedPod("starting-0", { phase: "Pending" }));
  // The pod proxy subresource: /api/v1/namespaces/NS/pods/NAME:4191/proxy/metrics -> that proxy's /metrics.
  const proxied: string[] = [];
  api.route("GET", `/api/v1/namespaces/${NS}/pods/`, async (req, res) => {
    const m = /^\/api\/v1\/namespaces\/demo\/pods\/([^/:]+):4191\/proxy\/metrics$/.exec((req.url ?? "").split("?")[0]!);
    if (!m) return false;
    proxied.push(m[1]!);
    const target = mesh.all.find((p) => p.target.pod === m[1]);
    if (!target) {
      res.writeHead(503).end("no endpoints");
      return;
    }
    res.writeHead(200, { "content-type": target.metrics.registry.contentType }).end(await target.metrics.registry.metrics());
  });

  const targets = kubernetesTargets(loadKubeConfig({ kubeconfig: await api.kubeconfigPath() }), { namespace: NS });
  const listed = await targets.list();
  assert.deepEqual(
    listed.map((p) => [p.pod, p.workload, p.identity]),
    [
      ["client-0", "client-0", "client.demo.serviceaccount.identity.tether.cluster.local"],
      ["echo-0", "echo", "echo.demo.serviceaccount.identity.tether.cluster.local"],
      ["echo-1", "echo", "echo.demo.serviceaccount.identity.tether.cluster.local"],
    ].sort(),
  );
  const source = scrapeSource({ targets });
  await source.poll();
  mesh.traffic(40);
  const windows = await source.poll();
  assert.deepEqual(windows.map((w) => w.error), [undefined, undefined, undefined]);
  const echo = statRows(windows, "deploy", "inbound").find((r) => r.name === "echo")!;
  assert.equal(echo.requests, 40);
  assert.equal(echo.podsReporting, 2);
  assert.deepEqual([...new Set(proxied)].sort(), ["client-0", "echo-0", "echo-1"]);
});
