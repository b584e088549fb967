import { test } from "node:test";
import assert from "node:assert/strict";
import { edges } from "../../src/viz/edges.js";
import type { Labels } from "../../src/viz/prom-text.js";
import type { PodRef, PodWindow } from "../../src/viz/window.js";

const ID = (sa: string, ns = "demo") => `${sa}.${ns}.serviceaccount.identity.tether.cluster.local`;
const pod = (name: string, workload: string, identity?: string, namespace = "demo"): PodRef => ({ namespace, pod: name, workload, ...(identity ? { identity } : {}) });
const req = (direction: string, value: number, labels: Labels) => ({
  name: "tether_proxy_requests_total",
  labels: { direction, authority: "echo.demo.svc.cluster.local:8080", peer_identity: "", dst_pod: "", tls: "true", ...labels },
  value,
});
const win = (p: PodRef, increases: PodWindow["increases"], error?: string): PodWindow => ({ pod: p, seconds: 10, increases, gauges: [], ...(error ? { error } : {}) });

test("joins the client's outbound view with the server's inbound view into one edge with both identities", () => {
  const windows = [
    win(pod("client-0", "client"), [
      req("outbound", 100, { dst_pod: "echo-0", peer_identity: ID("echo") }),
      req("outbound", 100, { dst_pod: "echo-1", peer_identity: ID("echo") }),
    ]),
    win(pod("echo-0", "echo"), [req("inbound", 100, { peer_identity: ID("client") })]),
    win(pod("echo-1", "echo"), [req("inbound", 100, { peer_identity: ID("client") })]),
  ];
  const got = edges(windows);
  assert.equal(got.length, 1);
  const e = got[0]!;
  assert.equal(e.src.label, "demo/client");
  assert.equal(e.dst.label, "demo/echo");
  assert.deepEqual(e.clientIdentities, [ID("client")]);
  assert.deepEqual(e.serverIdentities, [ID("echo")]);
  assert.equal(e.mtls, true);
  assert.equal(e.rps, 20);
  assert.equal(e.seenBy, "both");
});

test("an edge with any plaintext request is not mTLS; unknown destinations show their authority", () => {
  const windows = [
    win(pod("client-0", "client", ID("client")), [
      req("outbound", 10, { dst_pod: "echo-0", peer_identity: ID("echo") }),
      req("outbound", 1, { dst_pod: "echo-0", tls: "false" }),
      req("outbound", 5, { authority: "example.com:443", tls: "false" }),
    ]),
    win(pod("echo-0", "echo"), [req("inbound", 11, { peer_identity: ID("client") })]),
  ];
  const got = edges(windows);
  assert.deepEqual(got.map((e) => [e.src.label, e.dst.label, e.mtls, e.seenBy]), [
    ["demo/client", "demo/echo", false, "both"],
    ["demo/client", "example.com:443", false, "client"],
  ]);
});

test("inbound from an identity no proxy reports (an attacker, another cluster) is its own edge; plaintext is unauthenticated", () => {
  const windows = [
    win(pod("client-0", "client", ID("client")), [req("outbound", 10, { dst_pod: "echo-0", peer_identity: ID("echo") })]),
    win(pod("echo-0", "echo", ID("echo")), [
      req("inbound", 10, { peer_identity: ID("client") }),
      req("inbound", 3, { peer_identity: ID("intruder", "other") }),
      req("inbound", 2, { tls: "false" }),
    ]),
  ];
  const got = edges(windows);
  assert.deepEqual(got.map((e) => [e.src.label, e.dst.label, e.mtls, e.seenBy, e.clientIdentities.join()]), [
    ["demo/client", "demo/echo", true, "both", ID("client")],
    [ID("intruder", "other"), "demo/echo", true, "server", ID("intruder", "other")],
    ["unauthenticated", "demo/echo", false, "server", ""],
  ]);
});

test("dst_pod as namespace/name resolves across namespaces; failed scrapes add nothing; zero increases add nothing", () => {
  const windows = [
    win(pod("web-0", "web", undefined, "shop"), [
      req("outbound", 10, { dst_pod: "demo/echo-0", peer_identity: ID("echo") }),
      req("outbound", 0, { dst_pod: "demo/echo-1", peer_identity: ID("echo") }),
    ]),
    win(pod("echo-0", "echo"), [req("inbound", 10, { peer_identity: ID("web", "shop") })]),
    win(pod("broken-0", "broken"), [req("outbound", 10, { dst_pod: "echo-0" })], "cannot scrape"),
  ];
  const got = edges(windows);
  assert.deepEqual(got.map((e) => [e.src.label, e.dst.label, e.seenBy, e.clientIdentities.join()]), [["shop/web", "demo/echo", "both", ID("web", "shop")]]);
});
