import { test } from "node:test";
import assert from "node:assert/strict";
import { figuresOf, histogramQuantile, statRows, topRows, certificates, denials, type Bucket } from "../../src/viz/aggregate.js";
import type { Labels, Sample } from "../../src/viz/prom-text.js";
import { windowBetween, type PodRef, type PodWindow } from "../../src/viz/window.js";
import { parsePrometheusText } from "../../src/viz/prom-text.js";

const b = (pairs: [number, number][]): Bucket[] => pairs.map(([le, count]) => ({ le, count }));

test("histogramQuantile interpolates as Prometheus' histogram_quantile does", () => {
  const h = b([[0.1, 50], [0.2, 90], [0.5, 100], [Infinity, 100]]);
  const cases: [number, Bucket[], number | undefined][] = [
    [0.5, h, 0.1], // rank 50 is the first bucket's top
    [0.25, h, 0.05], // first bucket interpolates from 0
    [0.7, h, 0.15], // rank 70: 20 of the 40 in (0.1, 0.2]
    [0.95, h, 0.35], // rank 95: half of (0.2, 0.5]
    [0.99, b([[1, 10], [Infinity, 100]]), 1], // in +Inf: the largest finite bound
    [0.5, b([[1, 0], [Infinity, 0]]), undefined], // empty
    [0.5, b([[1, 5]]), undefined], // no +Inf bucket: not a histogram
    [0, h, 0],
    [1, h, 0.5],
    [0.5, b([[Infinity, 4], [0.01, 4], [0.005, 0]]), 0.0075], // unsorted input
  ];
  for (const [q, buckets, want] of cases) {
    const got = histogramQuantile(q, buckets);
    if (want === undefined) assert.equal(got, undefined, `q=${q}`);
    else assert.ok(got !== undefined && Math.abs(got - want) < 1e-9, `q=${q}: got ${got}, want ${want}`);
  }
});

const pod = (name: string, workload: string, namespace = "demo"): PodRef => ({ namespace, pod: name, workload });
const s = (name: string, labels: Labels, value: number): Sample => ({ name, labels, value });
const req = (direction: string, value: number, extra: Labels = {}) =>
  s("tether_proxy_requests_total", { direction, authority: "echo:8080", peer_identity: "", dst_pod: "", tls: "true", ...extra }, value);
const resp = (direction: string, classification: string, value: number, extra: Labels = {}) =>
  s("tether_proxy_responses_total", { direction, authority: "echo:8080", classification, ...extra }, value);
const bucket = (direction: string, le: string, value: number, extra: Labels = {}) =>
  s("tether_proxy_response_latency_seconds_bucket", { direction, authority: "echo:8080", le, ...extra }, value);

function win(p: PodRef, seconds: number, increases: Sample[], gauges: Sample[] = [], error?: string): PodWindow {
  return { pod: p, seconds, increases, gauges, ...(error ? { error } : {}) };
}

test("figures: rate, success rate, quantiles, mTLS share and TCP connections in one direction", () => {
  const w = win(pod("echo-0", "echo"), 10, [
    req("inbound", 90),
    req("inbound", 10, { tls: "false" }),
    req("outbound", 500),
    resp("inbound", "success", 99),
    resp("inbound", "failure", 1),
    bucket("inbound", "0.01", 80),
    bucket("inbound", "0.1", 100),
    bucket("inbound", "+Inf", 100),
    bucket("outbound", "+Inf", 500),
  ], [
    s("tether_proxy_tcp_open_connections", { direction: "inbound", peer: "src", tls: "true" }, 3),
    s("tether_proxy_tcp_open_connections", { direction: "outbound", peer: "dst", tls: "true" }, 7),
  ]);
  const f = figuresOf([w], { direction: "inbound" });
  assert.equal(f.rps, 10);
  assert.equal(f.requests, 100);
  assert.equal(f.successRate, 0.99);
  assert.equal(f.mtlsShare, 0.9);
  assert.equal(f.tcpConnections, 3);
  assert.ok(Math.abs(f.p50! - 0.00625) < 1e-12);
  assert.ok(Math.abs(f.p99! - 0.0955) < 1e-12);
});

test("figures: no traffic leaves success rate, quantiles and mTLS share undefined, not zero", () => {
  const f = figuresOf([win(pod("a", "a"), 10, [])], { direction: "inbound" });
  assert.deepEqual(f, { rps: 0, requests: 0, tcpConnections: 0 });
});

test("figures: with no requests, mTLS share comes from TCP connections opened", () => {
  const w = win(pod("db-0", "db"), 5, [
    s("tether_proxy_tcp_open_total", { direction: "inbound", peer: "src", tls: "true" }, 3),
    s("tether_proxy_tcp_open_total", { direction: "inbound", peer: "src", tls: "false" }, 1),
  ]);
  assert.equal(figuresOf([w], { direction: "inbound" }).mtlsShare, 0.75);
});

test("statRows groups by pod, deployment and namespace; rates add, ratios weight by traffic", () => {
  const windows = [
    win(pod("echo-0", "echo"), 10, [req("inbound", 100), resp("inbound", "success", 100), bucket("inbound", "0.01", 100), bucket("inbound", "0.1", 100), bucket("inbound", "+Inf", 100)]),
    win(pod("echo-1", "echo"), 5, [req("inbound", 100), resp("inbound", "success", 80), resp("inbound", "failure", 20), bucket("inbound", "0.01", 0), bucket("inbound", "0.1", 100), bucket("inbound", "+Inf", 100)]),
    win(pod("echo-2", "echo"), 10, [], [], "cannot scrape: refused"),
    win(pod("web-0", "web", "shop"), 10, [req("inbound", 50)]),
  ];
  const byDeploy = statRows(windows, "deploy", "inbound");
  assert.deepEqual(byDeploy.map((r) => [r.namespace, r.name, r.pods, r.podsReporting]), [["demo", "echo", 3, 2], ["shop", "web", 1, 1]]);
  const echo = byDeploy[0]!;
  assert.equal(echo.rps, 30); // 10 rps + 20 rps
  assert.equal(echo.successRate, 0.9);
  assert.equal(echo.p50, 0.01); // rank 100 of 200 is the top of the first bucket
  assert.deepEqual(echo.errors, ["echo-2: cannot scrape: refused"]);
  assert.equal(byDeploy[1]!.successRate, undefined);

  const byPod = statRows(windows, "pod", "inbound", "demo");
  assert.deepEqual(byPod.map((r) => [r.name, r.rps]), [["echo-0", 10], ["echo-1", 20], ["echo-2", 0]]);
  const byNs = statRows(windows, "ns", "inbound");
  assert.deepEqual(byNs.map((r) => [r.name, r.pods, r.rps]), [["demo", 3, 30], ["shop", 1, 5]]);
});

test("topRows ranks (pod, direction, authority) by rate with per-authority latency", () => {
  const w = win(pod("client-0", "client"), 10, [
    req("outbound", 300, { authority: "a:1", dst_pod: "a-0" }),
    req("outbound", 100, { authority: "a:1", dst_pod: "a-1" }),
    req("outbound", 50, { authority: "b:1" }),
    req("outbound", 0, { authority: "c:1" }),
    bucket("outbound", "0.01", 400, { authority: "a:1" }),
    bucket("outbound", "+Inf", 400, { authority: "a:1" }),
    bucket("outbound", "1", 50, { authority: "b:1" }),
    bucket("outbound", "+Inf", 50, { authority: "b:1" }),
  ]);
  const rows = topRows([w, win(pod("x", "x"), 10, [req("inbound", 1000)], [], "broken")], 10);
  assert.deepEqual(rows.map((r) => [r.authority, r.rps]), [["a:1", 40], ["b:1", 5]]);
  assert.ok(rows[0]!.p99! <= 0.01);
  assert.ok(rows[1]!.p99! > 0.9);
  assert.equal(topRows([w], 1).length, 1);
});

test("certificates report expiry per pod relative to now; denials list only deny decisions inside the window", () => {
  const windows = [
    win(pod("a-0", "a"), 10, [
      s("tether_proxy_inbound_authorizations_total", { port: "8080", decision: "deny", authorization: "", route: "", reason: "unauthorized", client_identity: "evil.demo.serviceaccount.identity.tether.cluster.local" }, 4),
      s("tether_proxy_inbound_authorizations_total", { port: "8080", decision: "allow", authorization: "authz", route: "", reason: "", client_identity: "good" }, 100),
      s("tether_proxy_inbound_authorizations_total", { port: "8080", decision: "deny", authorization: "", route: "", reason: "no-identity", client_identity: "" }, 0),
    ], [s("tether_proxy_identity_cert_expiration_timestamp_seconds", {}, 1_000_3600)]),
    win(pod("b-0", "b"), 10, [], [s("tether_proxy_identity_cert_expiration_timestamp_seconds", {}, 0)]),
  ];
  assert.deepEqual(
    certificates(windows, 1_000_0000).map((c) => [c.pod, c.remaining]),
    [["a-0", 3600], ["b-0", undefined]],
  );
  const d = denials(windows);
  assert.equal(d.length, 1);
  assert.equal(d[0]!.count, 4);
  assert.equal(d[0]!.reason, "unauthorized");
  assert.equal(d[0]!.clientIdentity, "evil.demo.serviceaccount.identity.tether.cluster.local");
});

test("windowBetween: counter increases (resets and new series count whole), gauges as they are, failures carried", () => {
  const p = pod("echo-0", "echo");
  const before = parsePrometheusText([
    "# TYPE tether_proxy_requests_total counter",
    'tether_proxy_requests_total{direction="inbound"} 10',
    'tether_proxy_requests_total{direction="outbound"} 50',
    "# TYPE tether_proxy_response_latency_seconds histogram",
    'tether_proxy_response_latency_seconds_bucket{le="+Inf"} 7',
    "# TYPE tether_proxy_tcp_open_connections gauge",
    "tether_proxy_tcp_open_connections 9",
  ].join("\n"));
  const after = parsePrometheusText([
    "# TYPE tether_proxy_requests_total counter",
    'tether_proxy_requests_total{direction="inbound"} 25',
    'tether_proxy_requests_total{direction="outbound"} 5',
    'tether_proxy_requests_total{direction="inbound",tls="true"} 3',
    "# TYPE tether_proxy_response_latency_seconds histogram",
    'tether_proxy_response_latency_seconds_bucket{le="+Inf"} 12',
    "# TYPE tether_proxy_tcp_open_connections gauge",
    "tether_proxy_tcp_open_connections 2",
  ].join("\n"));
  const w = windowBetween({ pod: p, at: 1000, exposition: before }, { pod: p, at: 6000, exposition: after });
  assert.equal(w.seconds, 5);
  assert.equal(w.error, undefined);
  assert.deepEqual(w.increases.map((x) => x.value), [15, 5, 3, 5]);
  assert.deepEqual(w.gauges.map((x) => x.value), [2]);

  const failed = windowBetween({ pod: p, at: 1000, exposition: before }, { pod: p, at: 6000, error: "refused" });
  assert.equal(failed.error, "refused");
  assert.equal(failed.increases.length, 0);
  const afterFailure = windowBetween({ pod: p, at: 1000, error: "refused" }, { pod: p, at: 6000, exposition: after });
  assert.match(afterFailure.error ?? "", /no earlier scrape/);
  assert.equal(afterFailure.increases.length, 0);
});
