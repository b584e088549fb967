/**
 * `npm run bench -- policy`: authorization decisions per second on realistic compiled servers
 * (with and without routes), and compile cost as the number of policy resources grows.
 */
import { performance } from "node:perf_hooks";
import type { Pod } from "kubernetes-types/core/v1.js";
import { authorize, forgetCompiled, type ConnectionFacts, type RequestFacts } from "../src/api/inbound-policy.js";
import type { InboundServer } from "../src/api/index.js";
import { MemoryCluster } from "../src/cluster/memory.js";
import { compileInboundServer, DEFAULT_SETTINGS } from "../src/policy/compile.js";
import { desiredStatuses } from "../src/policy/status.js";
import { PolicyWatcher } from "../src/policy/watcher.js";
import { PolicyMetrics } from "../src/policy/metrics.js";
import { ManualClock } from "../src/core/clock.js";
import { pino } from "pino";

const TD = "cluster.local";
const ident = (sa: string, ns: string) => `${sa}.${ns}.serviceaccount.identity.tether.${TD}`;
const P = "policy.tether.io/v1alpha1";
const G = "gateway.networking.k8s.io/v1";
const ts = (i: number) => new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString();

function pod(): Pod {
  return {
    metadata: { name: "web-1", namespace: "shop", labels: { app: "web" } },
    spec: {
      containers: [
        {
          name: "app",
          ports: [
            { name: "http", containerPort: 8080 },
            { name: "grpc", containerPort: 9090 },
          ],
          readinessProbe: { httpGet: { path: "/ready", port: 8080 } },
        },
      ],
    },
  };
}

/**
 * A namespace with `n` of each policy kind: Servers on other pods, MeshTLSAuthentications,
 * NetworkAuthentications, routes on the web Server and policies on routes and Servers.
 */
function cluster(n: number, routes: boolean): MemoryCluster {
  const c = new MemoryCluster();
  c.apply("Namespace", { metadata: { name: "shop" } });
  c.apply("Pod", pod());
  c.apply("Server", { apiVersion: P, kind: "Server", metadata: { name: "web", namespace: "shop", creationTimestamp: ts(0) }, spec: { podSelector: { matchLabels: { app: "web" } }, port: "grpc", proxyProtocol: "gRPC" } });
  for (let i = 0; i < n; i++) {
    const meta = (name: string) => ({ name, namespace: "shop", creationTimestamp: ts(i + 1) });
    c.apply("Server", { apiVersion: P, kind: "Server", metadata: meta(`other-${i}`), spec: { podSelector: { matchLabels: { app: `other-${i}` } }, port: 9090 } });
    c.apply("MeshTLSAuthentication", {
      apiVersion: P,
      kind: "MeshTLSAuthentication",
      metadata: meta(`m-${i}`),
      spec: { identities: [ident(`client-${i}`, "shop"), `*.team-${i}.serviceaccount.identity.tether.${TD}`] },
    });
    c.apply("NetworkAuthentication", { apiVersion: P, kind: "NetworkAuthentication", metadata: meta(`n-${i}`), spec: { networks: [{ cidr: `10.${i % 250}.0.0/16`, except: [`10.${i % 250}.9.0/24`] }] } });
    // One in ten policies targets the web Server itself; the rest target routes or other Servers.
    const onWeb = i % 10 === 0;
    if (routes && !onWeb) {
      const kind = i % 2 === 0 ? "GRPCRoute" : "HTTPRoute";
      const parentRefs = [{ group: "policy.tether.io", kind: "Server", name: "web" }];
      if (kind === "GRPCRoute") {
        c.apply("GRPCRoute", { apiVersion: G, kind, metadata: meta(`r-${i}`), spec: { parentRefs, rules: [{ matches: [{ method: { service: "shop.v1.Catalog", method: `Method${i}` } }] }] } });
      } else {
        c.apply("HTTPRoute", {
          apiVersion: G,
          kind,
          metadata: meta(`r-${i}`),
          spec: { parentRefs, rules: [{ matches: [{ path: { type: "PathPrefix", value: `/api/v${i}` }, method: "GET", headers: [{ name: "x-tenant", value: "t.*", type: "RegularExpression" }] }] }] },
        });
      }
      c.apply("AuthorizationPolicy", { apiVersion: P, kind: "AuthorizationPolicy", metadata: meta(`p-${i}`), spec: { targetRef: { group: "gateway.networking.k8s.io", kind, name: `r-${i}` }, requiredAuthenticationRefs: [{ kind: "MeshTLSAuthentication", name: `m-${i}` }] } });
    } else {
      const target = onWeb ? "web" : `other-${i}`;
      c.apply("AuthorizationPolicy", {
        apiVersion: P,
        kind: "AuthorizationPolicy",
        metadata: meta(`p-${i}`),
        spec: { targetRef: { group: "policy.tether.io", kind: "Server", name: target }, requiredAuthenticationRefs: [{ kind: "MeshTLSAuthentication", name: `m-${i}` }, { kind: "NetworkAuthentication", name: `n-${i}` }] },
      });
    }
  }
  return c;
}

function opsPerSecond(fn: (i: number) => void, ms = 400): number {
  for (let i = 0; i < 2000; i++) fn(i); // warm up
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let k = 0; k < 1000; k++) fn(n++);
    now = performance.now();
  }
  return (n / (now - start)) * 1000;
}

function timeMs(fn: () => void, minIterations = 3, budgetMs = 300): number {
  fn();
  let n = 0;
  const start = performance.now();
  while (n < minIterations || performance.now() - start < budgetMs) {
    fn();
    n++;
  }
  return (performance.now() - start) / n;
}

const fmt = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)}k` : x.toFixed(0));

function printTable(title: string, rows: string[][]): void {
  console.log(`\n${title}`);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log("  " + r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("   "));
}

export async function run(_args: string[]): Promise<void> {
  const settings = { ...DEFAULT_SETTINGS, trustDomain: TD };
  const p = pod();
  const allowedClient = (i: number): ConnectionFacts => ({ tls: true, clientIdentity: ident(`client-${(i * 10) % 100}`, "shop"), clientIp: `10.${(i * 10) % 100}.1.${i % 250}` });
  const deniedClient: ConnectionFacts = { tls: true, clientIdentity: ident("stranger", "elsewhere"), clientIp: "192.0.2.1" };

  const defaultServer = compileInboundServer(cluster(0, false), p, 8080, settings);
  const flat = compileInboundServer(cluster(100, false), p, 9090, settings);
  const routed = compileInboundServer(cluster(100, true), p, 9090, settings);
  const grpcReq = (i: number): RequestFacts => ({ method: "POST", path: `/shop.v1.Catalog/Method${(i % 45) * 2 + 2}`, headers: { "content-type": "application/grpc" } });
  const httpReq = (i: number): RequestFacts => ({ method: "GET", path: `/api/v${(i % 45) * 2 + 1}/items?x=1`, headers: { "x-tenant": "t1" } });
  const decisions: [string, InboundServer, (i: number) => [ConnectionFacts, RequestFacts | undefined]][] = [
    ["default all-authenticated, connection", defaultServer, () => [allowedClient(1), undefined]],
    ["default all-authenticated, probe GET", defaultServer, () => [{ tls: false, clientIp: "10.0.0.1" }, { method: "GET", path: "/ready", headers: {} }]],
    [`Server, ${flat.authorizations.length} authorizations, allowed`, flat, (i) => [allowedClient(i), undefined]],
    [`Server, ${flat.authorizations.length} authorizations, denied`, flat, () => [deniedClient, undefined]],
    [`Server + ${routed.routes.length} routes, gRPC allowed`, routed, (i) => [{ tls: true, clientIdentity: ident(`client-${(i % 45) * 2 + 2}`, "shop"), clientIp: "10.0.0.1" }, grpcReq(i)]],
    [`Server + ${routed.routes.length} routes, HTTP allowed`, routed, (i) => [{ tls: true, clientIdentity: `x.team-${(i % 45) * 2 + 1}.serviceaccount.identity.tether.${TD}`, clientIp: "10.0.0.1" }, httpReq(i)]],
    [`Server + ${routed.routes.length} routes, no route`, routed, () => [deniedClient, { method: "POST", path: "/other.Svc/Nope", headers: {} }]],
  ];
  const rows = [["case", "decisions/s", "allowed"]];
  for (const [name, server, facts] of decisions) {
    const [c0, r0] = facts(0);
    const allowed = authorize(server, c0, r0).allowed;
    const rate = opsPerSecond((i) => {
      const [c, r] = facts(i);
      authorize(server, c, r);
    });
    rows.push([name, fmt(rate), String(allowed)]);
  }
  printTable("policy decisions (authorize, one core)", rows);

  const compileRows = [["resources per kind", "objects", "compile port (ms)", "first authorize (ms)", "all statuses (ms)"]];
  for (const n of [10, 100, 1000]) {
    const c = cluster(n, true);
    const objects = ["Server", "AuthorizationPolicy", "MeshTLSAuthentication", "NetworkAuthentication", "HTTPRoute", "GRPCRoute"].reduce((s, k) => s + c.list(k as never).length, 0);
    let compiled: InboundServer | undefined;
    const compileMs = timeMs(() => {
      compiled = compileInboundServer(c, p, 9090, settings);
    });
    const firstAuth = timeMs(() => {
      forgetCompiled(compiled!);
      authorize(compiled!, allowedClient(3), grpcReq(3));
    });
    const statusMs = timeMs(() => desiredStatuses(c, TD), 1);
    compileRows.push([String(n), String(objects), compileMs.toFixed(3), firstAuth.toFixed(3), statusMs.toFixed(2)]);
  }
  printTable("compile cost as policy resources grow (one namespace)", compileRows);

  // A policy change reaching every watched pod port of the namespace (100 resources per kind).
  const fanoutRows = [["watched pods", "recompute after a change (ms)", "updates sent"]];
  for (const pods of [10, 100, 1000]) {
    const c = cluster(100, true);
    for (let i = 0; i < pods; i++) c.apply("Pod", { ...pod(), metadata: { name: `web-${i}`, namespace: "shop", labels: { app: "web" } } });
    const watcher = new PolicyWatcher({ cluster: c, settings, logger: pino({ level: "silent" }), metrics: new PolicyMetrics(), clock: new ManualClock(), writeStatus: false });
    let updates = 0;
    for (let i = 0; i < pods; i++) watcher.subscribe("shop", `web-${i}`, 9090, () => updates++);
    updates = 0;
    const m = c.get("MeshTLSAuthentication", "shop", "m-0")!;
    const start = performance.now();
    c.apply("MeshTLSAuthentication", { ...m, spec: { identities: [ident("changed", "shop")] } });
    watcher.flush();
    fanoutRows.push([String(pods), (performance.now() - start).toFixed(2), String(updates)]);
    watcher.stop();
  }
  printTable("policy update fan-out (one change, every pod port of the namespace watched)", fanoutRows);
}
