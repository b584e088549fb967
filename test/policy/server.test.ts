import { test } from "node:test";
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { pino } from "pino";
import { InboundPoliciesService, type InboundServer } from "../../src/api/index.js";
import { ManualClock } from "../../src/core/clock.js";
import type { Condition } from "../../src/cluster/policy-resources.js";
import { PolicyMetrics } from "../../src/policy/metrics.js";
import { startPolicyServer } from "../../src/policy/server.js";
import { PolicyWatcher } from "../../src/policy/watcher.js";
import { CONTROLLER_NAME } from "../../src/policy/status.js";
import { baseCluster, httpRoute, meshTls, network, policy, ref, server, SETTINGS, id } from "./fixtures.js";

const logger = pino({ level: "silent" });

function watcherOn(cluster = baseCluster()) {
  const clock = new ManualClock();
  const metrics = new PolicyMetrics();
  const watcher = new PolicyWatcher({ cluster, settings: SETTINGS, logger, metrics, clock });
  return { cluster, clock, watcher, metrics };
}

const accepted = (status: unknown) => ((status as { conditions: Condition[] }).conditions ?? []).find((c) => c.type === "Accepted");

test("status: invalid and dangling resources are Accepted=False with a reason, and recover", async () => {
  const { cluster, clock, watcher, metrics } = watcherOn();
  cluster.apply("NetworkAuthentication", network("shop", "bad-net", [{ cidr: "10.0.0.0/8" }, { cidr: "300.0.0.0/8" }]));
  cluster.apply("Server", server("shop", "web", { podSelector: { matchLabels: { app: "web" } } }));
  cluster.apply("AuthorizationPolicy", policy("shop", "uses-bad", ref.server("web"), [ref.network("bad-net")]));
  cluster.apply("AuthorizationPolicy", policy("shop", "dangling", ref.server("web"), [ref.meshTls("missing")]));
  cluster.apply("AuthorizationPolicy", policy("shop", "odd-target", { kind: "Deployment", name: "web" }, [ref.network("bad-net")]));
  cluster.apply("AuthorizationPolicy", policy("shop", "no-server", ref.server("nope"), [ref.serviceAccount("a")]));
  watcher.flush();

  const net = accepted(cluster.statusOf("NetworkAuthentication", "shop", "bad-net"))!;
  assert.equal(net.status, "False");
  assert.equal(net.reason, "Invalid");
  assert.match(net.message, /spec\.networks\[1\]\.cidr/);
  assert.equal(accepted(cluster.statusOf("Server", "shop", "web"))!.status, "True");
  assert.equal(accepted(cluster.statusOf("AuthorizationPolicy", "shop", "uses-bad"))!.reason, "RefInvalid");
  assert.equal(accepted(cluster.statusOf("AuthorizationPolicy", "shop", "dangling"))!.reason, "RefNotFound");
  const odd = accepted(cluster.statusOf("AuthorizationPolicy", "shop", "odd-target"))!;
  assert.equal(odd.reason, "Invalid");
  assert.match(odd.message, /spec\.targetRef\.kind: unknown kind "Deployment"/);
  assert.equal(accepted(cluster.statusOf("AuthorizationPolicy", "shop", "no-server"))!.reason, "TargetNotFound");
  const firstTime = net.lastTransitionTime;

  // Unrelated changes later do not rewrite an unchanged condition (its transition time stays).
  const writes = async () => {
    await new Promise((r) => setImmediate(r)); // let the asynchronous status writes settle
    return (await metrics.statusWrites.get()).values.reduce((n, v) => n + v.value, 0);
  };
  const before = await writes();
  clock.advance(1000);
  cluster.apply("Server", server("pay", "unrelated", {}));
  watcher.flush();
  assert.equal(accepted(cluster.statusOf("NetworkAuthentication", "shop", "bad-net"))!.lastTransitionTime, firstTime);
  assert.equal((await writes()) - before, 1, "only the new Server's status is written");

  // Fixing the network makes it and the policy that uses it Accepted.
  clock.advance(5000);
  cluster.apply("NetworkAuthentication", network("shop", "bad-net", [{ cidr: "10.0.0.0/8" }]));
  watcher.flush();
  const fixed = accepted(cluster.statusOf("NetworkAuthentication", "shop", "bad-net"))!;
  assert.equal(fixed.status, "True");
  assert.notEqual(fixed.lastTransitionTime, firstTime);
  assert.equal(accepted(cluster.statusOf("AuthorizationPolicy", "shop", "uses-bad"))!.status, "True");
  watcher.stop();
});

test("status: routes get one parent entry per Server parentRef, keeping other controllers' entries", () => {
  const { cluster, watcher } = watcherOn();
  cluster.apply("Server", server("shop", "web", {}));
  const route = httpRoute("shop", "r", "web", []);
  route.spec.parentRefs!.push({ group: "policy.tether.io", kind: "Server", name: "gone" });
  route.status = { parents: [{ parentRef: { kind: "Gateway", name: "gw" }, controllerName: "example.com/gw", conditions: [] }] } as never;
  cluster.apply("HTTPRoute", route);
  watcher.flush();
  const status = cluster.statusOf("HTTPRoute", "shop", "r") as { parents: { controllerName: string; parentRef: { name: string }; conditions: Condition[] }[] };
  assert.deepEqual(
    status.parents.map((p) => [p.controllerName, p.parentRef.name, p.conditions[0]?.status ?? "-"]),
    [
      ["example.com/gw", "gw", "-"],
      [CONTROLLER_NAME, "web", "True"],
      [CONTROLLER_NAME, "gone", "False"],
    ],
  );
  watcher.stop();
});

test("watcher: subscribers get the current policy, then only real changes", () => {
  const { cluster, watcher } = watcherOn();
  const seen: InboundServer[] = [];
  const stop = watcher.subscribe("shop", "web-1", 8080, (s) => seen.push(s))!;
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.name, "default:all-authenticated");

  cluster.apply("Server", server("pay", "elsewhere", {}));
  cluster.apply("Pod", { ...cluster.get("Pod", "shop", "api-1")!, metadata: { ...cluster.get("Pod", "shop", "api-1")!.metadata, labels: { app: "api", v: "2" } } });
  watcher.flush();
  assert.equal(seen.length, 1, "changes elsewhere send nothing");

  cluster.apply("Server", server("shop", "web", { podSelector: { matchLabels: { app: "web" } } }));
  cluster.apply("MeshTLSAuthentication", meshTls("shop", "m", { identities: [id("a", "shop")] }));
  cluster.apply("AuthorizationPolicy", policy("shop", "p", ref.server("web"), [ref.meshTls("m")]));
  watcher.flush();
  assert.equal(seen.length, 2, "one burst of changes, one update");
  assert.equal(seen[1]!.name, "server:shop/web");
  assert.deepEqual(seen[1]!.authorizations.map((a) => a.identities), [[id("a", "shop")]]);

  // A change to the pod's labels that unselects it moves the port back to the default.
  const pod = cluster.get("Pod", "shop", "web-1")!;
  cluster.apply("Pod", { ...pod, metadata: { ...pod.metadata, labels: { app: "other" } } });
  watcher.flush();
  assert.equal(seen.length, 3);
  assert.equal(seen[2]!.name, "default:all-authenticated");

  // The namespace annotation changes the default policy of its pods' uncovered ports.
  cluster.apply("Namespace", { metadata: { name: "shop", annotations: { "config.tether.io/default-inbound-policy": "audit" } } });
  watcher.flush();
  assert.equal(seen.length, 4);
  assert.deepEqual([seen[3]!.name, seen[3]!.audit], ["default:audit", true]);
  stop();
  assert.equal(watcher.subscribe("shop", "missing", 8080, () => {}), undefined);
  watcher.stop();
});

/** Collects stream messages; `next` waits (bounded) for the next one. */
function collect(stream: grpc.ClientReadableStream<InboundServer>) {
  const queue: InboundServer[] = [];
  const waiters: ((m: InboundServer) => void)[] = [];
  let error: grpc.ServiceError | undefined;
  const errorWaiters: ((e: grpc.ServiceError) => void)[] = [];
  stream.on("data", (m: InboundServer) => {
    const w = waiters.shift();
    if (w) w(m);
    else queue.push(m);
  });
  stream.on("error", (e: grpc.ServiceError) => {
    error = e;
    for (const w of errorWaiters.splice(0)) w(e);
  });
  return {
    next: (ms = 5000) =>
      new Promise<InboundServer>((resolve, reject) => {
        const m = queue.shift();
        if (m) return resolve(m);
        const timer = setTimeout(() => reject(new Error("no message within timeout")), ms);
        waiters.push((x) => {
          clearTimeout(timer);
          resolve(x);
        });
      }),
    error: (ms = 5000) =>
      new Promise<grpc.ServiceError>((resolve, reject) => {
        if (error) return resolve(error);
        const timer = setTimeout(() => reject(new Error("no error within timeout")), ms);
        errorWaiters.push((e) => {
          clearTimeout(timer);
          resolve(e);
        });
      }),
  };
}

test("WatchPort over gRPC: first the current policy, then updates; bad requests refused", { timeout: 20000 }, async () => {
  const cluster = baseCluster();
  const srv = await startPolicyServer({ cluster, listen: "127.0.0.1:0", ...SETTINGS, logger });
  const client = new InboundPoliciesService(srv.address, grpc.credentials.createInsecure());
  const watchPort = (req: { workload: string; port: number }) => client.WatchPort!(req) as grpc.ClientReadableStream<InboundServer>;
  try {
    const call = watchPort({ workload: "shop/web-1", port: 8080 });
    const s = collect(call);
    const first = await s.next();
    assert.equal(first.name, "default:all-authenticated");
    assert.deepEqual(first.routes.map((r) => r.name), ["probe", "default"]);
    assert.equal(first.routes[0]!.matches[0]!.pathType, "Exact");

    // An unrelated change, then a relevant one: the next message must be the relevant one.
    cluster.apply("Server", server("pay", "unrelated", {}));
    await new Promise((r) => setTimeout(r, 20));
    cluster.apply("Server", server("shop", "web", { podSelector: { matchLabels: { app: "web" } }, proxyProtocol: "HTTP/1" }));
    const second = await s.next();
    assert.equal(second.name, "server:shop/web");
    assert.equal(second.protocol, "http1");
    assert.deepEqual(second.authorizations, []);

    cluster.apply("NetworkAuthentication", network("shop", "inner", [{ cidr: "10.0.0.0/8", except: ["10.1.0.0/16"] }]));
    cluster.apply("AuthorizationPolicy", policy("shop", "inner", ref.namespace("shop"), [ref.network("inner")]));
    const third = await s.next();
    assert.deepEqual(third.authorizations, [
      { name: "authorizationpolicy:shop/inner", networks: [{ cidr: "10.0.0.0/8", except: ["10.1.0.0/16"] }], authentication: "unauthenticated", identities: [] },
    ]);

    cluster.remove("Server", "shop", "web");
    assert.equal((await s.next()).name, "default:all-authenticated");
    assert.equal((await srv.metrics.streams.get()).values[0]?.value, 1);
    call.cancel();

    const missing = collect(watchPort({ workload: "shop/nope", port: 8080 }));
    assert.equal((await missing.error()).code, grpc.status.NOT_FOUND);
    const bad = collect(watchPort({ workload: "not a workload", port: 8080 }));
    assert.equal((await bad.error()).code, grpc.status.INVALID_ARGUMENT);
    const badPort = collect(watchPort({ workload: "shop/web-1", port: 0 }));
    assert.equal((await badPort.error()).code, grpc.status.INVALID_ARGUMENT);
  } finally {
    client.close();
    await srv.close();
  }
});
