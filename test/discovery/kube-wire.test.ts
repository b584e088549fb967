/**
 * Discovery on the Kubernetes cluster source: the real @kubernetes/client-node informers talk to
 * the kube-apiserver wire fixture; pods and EndpointSlices are written to the fixture (slices as
 * the endpoint-slice controller would, reacting to the informer cache), and subscribers of
 * Destination/Get follow, including through dropped watches and 410 Gone.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { KubernetesCluster, loadKubeConfig } from "../../src/cluster/kubernetes.js";
import { createDestinationClient } from "../../src/api/destination-client.js";
import { startDestinationServer } from "../../src/discovery/server.js";
import { startKubeApiFixture } from "../support/kube-api-fixture.js";
import { Follower, lifecycleScenario, makePod, makeService, quietLogger, runSliceController } from "./support.js";

const CHANGE_MS = 100;
const CONNECT_MS = 5000;
/** After a dropped watch the informer reconnects with backoff; changes still arrive, later. */
const RECONNECT_MS = 5000;

async function setup(t: { after: (fn: () => Promise<void>) => void }) {
  const fixture = await startKubeApiFixture({ bookmarkIntervalMs: 50 });
  const cluster = new KubernetesCluster({
    kubeConfig: loadKubeConfig({ kubeconfig: await fixture.kubeconfigPath() }),
    logger: quietLogger,
    kinds: ["Namespace", "Pod", "Service", "EndpointSlice"],
    backoff: { initialMs: 10, maxMs: 100 },
    resyncMs: 0,
  });
  await cluster.ready();
  const stopController = runSliceController(cluster, {
    put: (s) => void fixture.apply(s as never),
    delete: (ns, name) => void fixture.remove("discovery.k8s.io/v1", "EndpointSlice", ns, name),
  });
  const server = await startDestinationServer({ cluster, listen: "127.0.0.1:0", logger: quietLogger });
  const client = createDestinationClient(server.address);
  const followers: Follower[] = [];
  t.after(async () => {
    for (const f of followers) f.close();
    client.close();
    await server.close();
    stopController();
    await cluster.close();
    await fixture.close();
  });
  return { fixture, cluster, client, followers };
}

test("wire fixture: create, scale, make unready, delete reach subscribers within the bound", { timeout: 30_000 }, async (t) => {
  const { fixture, cluster, client, followers } = await setup(t);
  await lifecycleScenario({
    client,
    cluster,
    objects: {
      applyPod: (p) => void fixture.apply(p as never),
      removePod: (ns, name) => void fixture.remove("v1", "Pod", ns, name),
      applyService: (s) => void fixture.apply(s as never),
    },
    changeMs: CHANGE_MS,
    connectMs: CONNECT_MS,
    track: (f) => followers.push(f),
  });
});

test("wire fixture: changes made while watches are down, or after 410 Gone, still reach subscribers", { timeout: 30_000 }, async (t) => {
  const { fixture, client, followers } = await setup(t);
  fixture.apply(makeService({ name: "web", clusterIP: "10.96.0.10" }) as never);
  fixture.apply(makePod({ name: "web-1", ip: "10.0.0.1", meshed: true }) as never);
  const f = new Follower(client, "web.shop.svc.cluster.local:80");
  followers.push(f);
  await f.until((x) => x.addresses().join() === "10.0.0.1:8080", CONNECT_MS, "first pod");

  fixture.dropWatches();
  fixture.apply(makePod({ name: "web-2", ip: "10.0.0.2", meshed: true }) as never);
  await f.until((x) => x.addresses().join() === "10.0.0.1:8080,10.0.0.2:8080", RECONNECT_MS, "pod added across a dropped watch");

  fixture.expire({ as: "event" });
  fixture.remove("v1", "Pod", "shop", "web-1");
  await f.until((x) => x.addresses().join() === "10.0.0.2:8080", RECONNECT_MS, "pod removed across 410 Gone");
  assert.equal(f.messages[0]!.first, true);
  assert.ok(f.messages.slice(1).every((m) => !m.first), "one stream throughout: no re-sent full set");
});
