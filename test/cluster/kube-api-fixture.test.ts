/** The fixture's own wire protocol, checked with plain HTTP (so its faithfulness does not rest on one client). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { startKubeApiFixture, type KubeApiFixture } from "../support/kube-api-fixture.js";
import { waitFor } from "../support/kube-wait.js";

async function withFixture(t: { after: (fn: () => Promise<void>) => void }, options = {}): Promise<KubeApiFixture> {
  const fixture = await startKubeApiFixture(options);
  t.after(() => fixture.close());
  return fixture;
}

async function call(fixture: KubeApiFixture, method: string, path: string, body?: unknown, contentType = "application/json") {
  const res = await fetch(fixture.url + path, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": contentType } }),
  });
  return { status: res.status, body: (await res.json()) as any };
}

/** Opens a watch and collects its events line by line until closed. */
function openWatch(fixture: KubeApiFixture, path: string) {
  const events: any[] = [];
  const state = { status: 0, ended: false, error: undefined as Error | undefined, transferEncoding: "" };
  const req = request(fixture.url + path, (res) => {
    state.status = res.statusCode ?? 0;
    state.transferEncoding = String(res.headers["transfer-encoding"] ?? "");
    let buffer = "";
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        events.push(JSON.parse(buffer.slice(0, nl)));
        buffer = buffer.slice(nl + 1);
      }
    });
    res.on("end", () => (state.ended = true));
    res.on("error", (err) => (state.error = err));
  });
  req.on("error", (err) => (state.error = err));
  req.end();
  return { events, state, close: () => req.destroy() };
}

const pod = (name: string, namespace = "shop") => ({ apiVersion: "v1", kind: "Pod", metadata: { name, namespace }, spec: { containers: [] } });

test("lists: core and grouped, all namespaces and one, built-in items without kind", { timeout: 10_000 }, async (t) => {
  const f = await withFixture(t);
  f.apply(pod("a"));
  f.apply(pod("b", "other"));
  f.apply({ apiVersion: "policy.tether.io/v1alpha1", kind: "Server", metadata: { name: "s", namespace: "shop" }, spec: { port: 80 } });
  const all = await call(f, "GET", "/api/v1/pods");
  assert.equal(all.body.kind, "PodList");
  assert.equal(all.body.apiVersion, "v1");
  assert.equal(all.body.metadata.resourceVersion, String(f.resourceVersion()));
  assert.deepEqual(all.body.items.map((p: any) => p.metadata.name).sort(), ["a", "b"]);
  assert.equal(all.body.items.length, 2);
  assert.equal(all.body.items[0].kind, undefined);
  const shop = await call(f, "GET", "/api/v1/namespaces/shop/pods");
  assert.deepEqual(shop.body.items.map((p: any) => p.metadata.name), ["a"]);
  const servers = await call(f, "GET", "/apis/policy.tether.io/v1alpha1/servers");
  assert.equal(servers.body.kind, "ServerList");
  assert.equal(servers.body.items[0].kind, "Server", "custom resources keep kind in lists");
  const one = await call(f, "GET", "/apis/policy.tether.io/v1alpha1/namespaces/shop/servers/s");
  assert.equal(one.body.metadata.name, "s");
  assert.ok(Number(one.body.metadata.resourceVersion) > 0 && one.body.metadata.uid);
  const missing = await call(f, "GET", "/api/v1/namespaces/shop/pods/zzz");
  assert.equal(missing.status, 404);
  assert.equal(missing.body.kind, "Status");
  assert.equal(missing.body.reason, "NotFound");
});

test("unknown resources (a CRD not installed) answer 404; namespaces are cluster-scoped objects", { timeout: 10_000 }, async (t) => {
  const f = await withFixture(t, { omitKinds: ["Server"] });
  assert.equal((await call(f, "GET", "/apis/policy.tether.io/v1alpha1/servers")).status, 404);
  assert.equal((await call(f, "GET", "/apis/nothing.io/v1/things")).status, 404);
  f.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: "shop" } });
  assert.equal((await call(f, "GET", "/api/v1/namespaces/shop")).body.kind, "Namespace");
  assert.equal((await call(f, "GET", "/api/v1/namespaces")).body.items.length, 1);
});

test("watch: chunked JSON lines; initial ADDED without resourceVersion; namespace filter; DELETED with last state", { timeout: 10_000 }, async (t) => {
  const f = await withFixture(t);
  f.apply(pod("a"));
  const w = openWatch(f, "/api/v1/namespaces/shop/pods?watch=true");
  t.after(() => w.close());
  await waitFor(() => w.events.length === 1, "the initial ADDED");
  assert.equal(w.state.transferEncoding, "chunked");
  f.apply(pod("x", "other"));
  f.apply({ ...pod("a"), metadata: { name: "a", namespace: "shop", labels: { v: "2" } } });
  f.remove("v1", "Pod", "shop", "a");
  await waitFor(() => w.events.length === 3, "MODIFIED and DELETED");
  assert.deepEqual(w.events.map((e) => e.type), ["ADDED", "MODIFIED", "DELETED"]);
  assert.equal(w.events[2].object.metadata.labels.v, "2");
  assert.equal(w.events[2].object.kind, "Pod");
  assert.equal(w.events[2].object.metadata.resourceVersion, String(f.resourceVersion()));
});

test("watch from a resourceVersion replays later changes; bookmarks only when asked", { timeout: 10_000 }, async (t) => {
  const f = await withFixture(t, { bookmarkIntervalMs: 20 });
  f.apply(pod("a"));
  const rv = f.resourceVersion();
  f.apply(pod("b"));
  f.remove("v1", "Pod", "shop", "a");
  const w = openWatch(f, `/api/v1/pods?watch=true&resourceVersion=${rv}&allowWatchBookmarks=true`);
  const plain = openWatch(f, `/api/v1/pods?watch=true&resourceVersion=${f.resourceVersion()}`);
  t.after(() => {
    w.close();
    plain.close();
  });
  await waitFor(() => w.events.some((e) => e.type === "BOOKMARK"), "a bookmark");
  assert.deepEqual(w.events.slice(0, 2).map((e) => `${e.type} ${e.object.metadata.name}`), ["ADDED b", "DELETED a"]);
  const bookmark = w.events.find((e) => e.type === "BOOKMARK");
  assert.deepEqual(bookmark.object, { kind: "Pod", apiVersion: "v1", metadata: { resourceVersion: String(f.resourceVersion()) } });
  f.apply(pod("c"));
  await waitFor(() => plain.events.length === 1, "the plain watch's event");
  assert.deepEqual(plain.events.map((e) => e.type), ["ADDED"], "no bookmark without allowWatchBookmarks");
});

test("expire: 410 Gone as HTTP status or as an ERROR event; dropWatches closes abruptly", { timeout: 10_000 }, async (t) => {
  const f = await withFixture(t);
  f.apply(pod("a"));
  const old = f.resourceVersion();
  f.apply(pod("b"));
  f.expire();
  const gone = await call(f, "GET", `/api/v1/pods?watch=true&resourceVersion=${old}`);
  assert.equal(gone.status, 410);
  assert.equal(gone.body.reason, "Expired");
  assert.equal(gone.body.code, 410);
  const current = openWatch(f, `/api/v1/pods?watch=true&resourceVersion=${f.resourceVersion()}`);
  await waitFor(() => f.openWatches() === 1, "the current watch open");
  f.expire({ as: "event" });
  await waitFor(() => current.state.ended, "open watch ended after the ERROR event");
  assert.equal(current.events[0]?.type, "ERROR");
  assert.equal(current.events[0]?.object.code, 410);
  const resumed = openWatch(f, `/api/v1/pods?watch=true&resourceVersion=${old}`);
  await waitFor(() => resumed.state.ended, "the expired watch ended");
  assert.equal(resumed.state.status, 200);
  assert.equal(resumed.events[0]?.object.reason, "Expired");
  const dropped = openWatch(f, "/api/v1/pods?watch=true");
  await waitFor(() => f.openWatches() === 1, "the watch open");
  assert.equal(f.dropWatches(), 1);
  await waitFor(() => dropped.state.error !== undefined || dropped.state.ended, "the dropped watch noticed");
  assert.equal(f.openWatches(), 0);
});

test("writes: POST create, merge/json PATCH, status subresource, PUT conflicts, DELETE", { timeout: 10_000 }, async (t) => {
  const f = await withFixture(t);
  const created = await call(f, "POST", "/apis/policy.tether.io/v1alpha1/namespaces/shop/servers", { apiVersion: "policy.tether.io/v1alpha1", kind: "Server", metadata: { name: "s" }, spec: { port: 80 } });
  assert.equal(created.status, 201);
  assert.equal(created.body.metadata.namespace, "shop");
  assert.equal(created.body.metadata.generation, 1);
  assert.equal((await call(f, "POST", "/apis/policy.tether.io/v1alpha1/namespaces/shop/servers", created.body)).status, 409);
  const path = "/apis/policy.tether.io/v1alpha1/namespaces/shop/servers/s";
  const patched = await call(f, "PATCH", path, { spec: { port: 81 }, status: { ignored: true } }, "application/merge-patch+json");
  assert.equal(patched.body.spec.port, 81);
  assert.equal(patched.body.status, undefined, "the main resource ignores status");
  assert.equal(patched.body.metadata.generation, 2);
  const status = await call(f, "PATCH", `${path}/status`, { status: { conditions: [{ type: "Accepted" }] }, spec: { port: 1 } }, "application/merge-patch+json");
  assert.equal(status.body.status.conditions[0].type, "Accepted");
  assert.equal(status.body.spec.port, 81, "the status subresource ignores spec");
  assert.equal(status.body.metadata.generation, 2);
  const jp = await call(f, "PATCH", path, [{ op: "replace", path: "/spec/port", value: 82 }], "application/json-patch+json");
  assert.equal(jp.body.spec.port, 82);
  assert.equal((await call(f, "PATCH", path, {}, "application/strategic-merge-patch+json")).status, 415);
  const stale = await call(f, "PUT", path, { ...created.body, spec: { port: 90 } });
  assert.equal(stale.status, 409);
  const fresh = await call(f, "PUT", path, { ...jp.body, spec: { port: 90 } });
  assert.equal(fresh.body.spec.port, 90);
  assert.equal((await call(f, "DELETE", path)).status, 200);
  assert.equal((await call(f, "GET", path)).status, 404);
});

test("route() serves other paths first; requests are logged; discovery and version answer", { timeout: 10_000 }, async (t) => {
  const f = await withFixture(t);
  const unroute = f.route("POST", "/apis/authentication.k8s.io/v1/tokenreviews", (_req, res, body) => {
    const review = JSON.parse(body.toString());
    res.writeHead(201, { "content-type": "application/json" });
    res.end(JSON.stringify({ ...review, status: { authenticated: review.spec.token === "good" } }));
  });
  const review = await call(f, "POST", "/apis/authentication.k8s.io/v1/tokenreviews", { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token: "good" } });
  assert.equal(review.body.status.authenticated, true);
  unroute();
  assert.equal((await call(f, "POST", "/apis/authentication.k8s.io/v1/tokenreviews", {})).status, 404);
  assert.equal((await call(f, "GET", "/version")).body.major, "1");
  const resources = await call(f, "GET", "/apis/discovery.k8s.io/v1");
  assert.ok(resources.body.resources.some((r: any) => r.kind === "EndpointSlice" && r.name === "endpointslices"));
  assert.ok(f.requests.some((r) => r.method === "POST" && r.status === 201));
});
