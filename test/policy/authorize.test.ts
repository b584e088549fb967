/**
 * End-to-end table: policy resources -> compileInboundServer -> authorize, for one pod port and one
 * connection (and request). Each case builds its own cluster, so cases are independent.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { authorize, type ConnectionFacts, type RequestFacts } from "../../src/api/inbound-policy.js";
import { compileInboundServer, type PolicySettings } from "../../src/policy/compile.js";
import { applyAll, baseCluster, grpcRoute, httpRoute, id, meshTls, network, policy, ref, server, SETTINGS } from "./fixtures.js";

const frontend: ConnectionFacts = { tls: true, clientIdentity: id("frontend", "shop"), clientIp: "10.1.2.3" };
const billing: ConnectionFacts = { tls: true, clientIdentity: id("billing", "pay"), clientIp: "10.2.0.5" };
const admin: ConnectionFacts = { tls: true, clientIdentity: id("admin", "shop"), clientIp: "10.1.9.9" };
const ops: ConnectionFacts = { tls: true, clientIdentity: id("ops", "shop"), clientIp: "10.1.9.10" };
const plain: ConnectionFacts = { tls: false, clientIp: "10.2.0.5" };
const plainInner: ConnectionFacts = { tls: false, clientIp: "10.1.2.3" };
const external: ConnectionFacts = { tls: false, clientIp: "203.0.113.9" };
const externalMeshed: ConnectionFacts = { ...frontend, clientIp: "203.0.113.9" };
const get = (path: string, headers: RequestFacts["headers"] = {}): RequestFacts => ({ method: "GET", path, headers });
const post = (path: string): RequestFacts => ({ method: "POST", path, headers: {} });
const grpc = (path: string): RequestFacts => ({ method: "POST", path, headers: { "content-type": "application/grpc" } });

const frontendOnly = meshTls("shop", "frontend-only", { identities: [id("frontend", "shop")] });
const adminOnly = meshTls("shop", "admin-only", { identities: [id("admin", "shop")] });
const opsOnly = meshTls("shop", "ops-only", { identities: [id("ops", "shop")] });

const webHttp = server("shop", "web-http", { podSelector: { matchLabels: { app: "web" } }, port: 8080 });
const apiGrpc = server("shop", "api-grpc", { podSelector: { matchLabels: { app: "api" } }, port: "grpc", proxyProtocol: "gRPC" });
const grpcRules = [
  apiGrpc,
  grpcRoute("shop", "get", "api-grpc", [{ matches: [{ method: { service: "pkg.Svc", method: "Get" } }] }]),
  grpcRoute("shop", "delete", "api-grpc", [{ matches: [{ method: { service: "pkg.Svc", method: "Delete" } }] }]),
  frontendOnly,
  adminOnly,
  policy("shop", "get-frontend", ref.grpcRoute("get"), [ref.meshTls("frontend-only")]),
  policy("shop", "delete-admin", ref.grpcRoute("delete"), [ref.meshTls("admin-only")]),
];
const httpRules = [
  webHttp,
  httpRoute("shop", "api", "web-http", [{ matches: [{ path: { type: "PathPrefix", value: "/api" }, method: "GET" }] }]),
  httpRoute("shop", "admin", "web-http", [{ matches: [{ path: { type: "Exact", value: "/api/admin" } }] }]),
  httpRoute("shop", "tenant", "web-http", [{ matches: [{ path: { type: "RegularExpression", value: "/t/[0-9]+" }, headers: [{ name: "X-Tenant", value: "a" }] }] }]),
  frontendOnly,
  adminOnly,
  policy("shop", "api-frontend", ref.httpRoute("api"), [ref.meshTls("frontend-only")]),
  policy("shop", "admin-admin", ref.httpRoute("admin"), [ref.meshTls("admin-only")]),
  policy("shop", "tenant-frontend", ref.httpRoute("tenant"), [ref.meshTls("frontend-only")]),
];
const webWith = (...objects: Parameters<typeof applyAll>[1]) => [webHttp, ...objects];

interface Case {
  name: string;
  objects?: Parameters<typeof applyAll>[1];
  settings?: Partial<PolicySettings>;
  ns?: string;
  pod?: string;
  port?: number;
  conn: ConnectionFacts;
  req?: RequestFacts;
  allowed: boolean;
  reason?: string;
  authorization?: string;
  route?: string;
  audited?: boolean;
}

const cases: Case[] = [
  // ---- default policies (no Server) ----
  { name: "cluster default all-authenticated allows a meshed client", conn: frontend, allowed: true, authorization: "default:all-authenticated" },
  { name: "all-authenticated refuses plaintext", conn: plain, req: get("/"), allowed: false, reason: "unauthenticated", route: "default" },
  { name: "probe path (named port) is allowed without mTLS", conn: plain, req: get("/ready"), allowed: true, authorization: "probe", route: "probe" },
  { name: "probe path (numbered port) with a query string is allowed", conn: plain, req: get("/live?verbose=1"), allowed: true, route: "probe" },
  { name: "probe path with another method is not a probe", conn: plain, req: post("/ready"), allowed: false, reason: "unauthenticated" },
  { name: "probe path on a port the probe does not use is not a probe", conn: plain, port: 9090, req: get("/ready"), allowed: false, reason: "unauthenticated" },
  { name: "opaque connection check on a default port needs mTLS", conn: plain, allowed: false, reason: "unauthenticated" },
  { name: "namespace annotation all-unauthenticated allows plaintext from anywhere", ns: "open", pod: "x-1", conn: external, req: get("/x"), allowed: true, authorization: "default:all-unauthenticated" },
  { name: "pod annotation deny overrides the namespace annotation", ns: "open", pod: "locked-1", conn: frontend, allowed: false, reason: "default-deny" },
  { name: "deny still lets the kubelet probe", ns: "open", pod: "locked-1", conn: plain, req: get("/ready"), allowed: true, route: "probe" },
  { name: "cluster-authenticated allows meshed clients in cluster networks", settings: { clusterDefault: "cluster-authenticated" }, conn: frontend, allowed: true, authorization: "default:cluster-authenticated" },
  { name: "cluster-authenticated refuses meshed clients outside cluster networks", settings: { clusterDefault: "cluster-authenticated" }, conn: externalMeshed, allowed: false, reason: "network-not-allowed" },
  { name: "cluster-unauthenticated allows plaintext inside the cluster", settings: { clusterDefault: "cluster-unauthenticated" }, conn: plain, allowed: true },
  { name: "cluster-unauthenticated allows IPv6 cluster addresses", settings: { clusterDefault: "cluster-unauthenticated" }, conn: { tls: false, clientIp: "fd00::1:5" }, allowed: true },
  { name: "cluster-unauthenticated refuses outside addresses", settings: { clusterDefault: "cluster-unauthenticated" }, conn: external, allowed: false, reason: "network-not-allowed" },
  { name: "cluster default deny refuses even meshed clients", settings: { clusterDefault: "deny" }, conn: frontend, allowed: false, reason: "default-deny" },
  { name: "audit allows what deny would refuse, flagged", settings: { clusterDefault: "audit" }, conn: external, req: get("/x"), allowed: true, audited: true, reason: "default-deny" },

  // ---- Servers by port number and name ----
  { name: "a Server with no authorization denies (port by number)", objects: [webHttp], conn: frontend, allowed: false, reason: "default-deny" },
  { name: "a Server's port keeps probes open", objects: [webHttp], conn: plain, req: get("/ready"), allowed: true, route: "probe" },
  { name: "a Server by port name covers that container port", objects: [apiGrpc], pod: "api-1", port: 9090, conn: frontend, allowed: false, reason: "default-deny" },
  { name: "a Server by port name leaves other ports on the default", objects: [apiGrpc], pod: "api-1", port: 8080, conn: frontend, allowed: true, authorization: "default:all-authenticated" },
  { name: "a Server's podSelector leaves other pods alone", objects: [apiGrpc], pod: "web-1", port: 9090, conn: frontend, allowed: true },
  {
    name: "matchExpressions select the pod",
    objects: [server("shop", "front", { podSelector: { matchExpressions: [{ key: "tier", operator: "In", values: ["front", "edge"] }] }, port: 8080 })],
    conn: frontend,
    allowed: false,
    reason: "default-deny",
  },
  {
    name: "a Server in audit mode allows what it would deny, flagged",
    objects: [server("shop", "web-audit", { podSelector: { matchLabels: { app: "web" } }, port: 8080, accessPolicy: "audit" }), frontendOnly, policy("shop", "p", ref.server("web-audit"), [ref.meshTls("frontend-only")])],
    conn: billing,
    allowed: true,
    audited: true,
    reason: "identity-not-allowed",
  },
  {
    name: "a Server in audit mode still names the authorization that allows",
    objects: [server("shop", "web-audit", { podSelector: { matchLabels: { app: "web" } }, port: 8080, accessPolicy: "audit" }), frontendOnly, policy("shop", "p", ref.server("web-audit"), [ref.meshTls("frontend-only")])],
    conn: frontend,
    allowed: true,
    authorization: "authorizationpolicy:shop/p",
  },
  {
    name: "the oldest of two Servers on a port decides",
    objects: [webHttp, server("shop", "web-http-2", { port: 8080 }), meshTls("shop", "all", { identities: ["*"] }), policy("shop", "second", ref.server("web-http-2"), [ref.meshTls("all")])],
    conn: frontend,
    allowed: false,
    reason: "default-deny",
  },

  // ---- MeshTLSAuthentication ----
  { name: "exact identity allowed", objects: webWith(frontendOnly, policy("shop", "p", ref.server("web-http"), [ref.meshTls("frontend-only")])), conn: frontend, allowed: true, authorization: "authorizationpolicy:shop/p" },
  { name: "other identity refused", objects: webWith(frontendOnly, policy("shop", "p", ref.server("web-http"), [ref.meshTls("frontend-only")])), conn: billing, allowed: false, reason: "identity-not-allowed" },
  { name: "plaintext refused where mTLS is required", objects: webWith(frontendOnly, policy("shop", "p", ref.server("web-http"), [ref.meshTls("frontend-only")])), conn: plainInner, allowed: false, reason: "unauthenticated" },
  {
    name: "wildcard label matches every service account of a namespace",
    objects: webWith(meshTls("shop", "shop-any", { identities: ["*.shop.serviceaccount.identity.tether.cluster.local"] }), policy("shop", "p", ref.server("web-http"), [ref.meshTls("shop-any")])),
    conn: admin,
    allowed: true,
  },
  {
    name: "wildcard label does not match another namespace",
    objects: webWith(meshTls("shop", "shop-any", { identities: ["*.shop.serviceaccount.identity.tether.cluster.local"] }), policy("shop", "p", ref.server("web-http"), [ref.meshTls("shop-any")])),
    conn: billing,
    allowed: false,
    reason: "identity-not-allowed",
  },
  {
    name: "wildcard matches exactly one label",
    objects: webWith(meshTls("shop", "w", { identities: ["*.serviceaccount.identity.tether.cluster.local"] }), policy("shop", "p", ref.server("web-http"), [ref.meshTls("w")])),
    conn: frontend,
    allowed: false,
    reason: "identity-not-allowed",
  },
  { name: "\"*\" allows any meshed client", objects: webWith(meshTls("shop", "all", { identities: ["*"] }), policy("shop", "p", ref.server("web-http"), [ref.meshTls("all")])), conn: billing, allowed: true },
  {
    name: "identityRefs to a Namespace allow its service accounts",
    objects: webWith(meshTls("shop", "from-pay", { identityRefs: [{ kind: "Namespace", name: "pay" }] }), policy("shop", "p", ref.server("web-http"), [ref.meshTls("from-pay")])),
    conn: billing,
    allowed: true,
  },
  {
    name: "identityRefs to a Namespace refuse other namespaces",
    objects: webWith(meshTls("shop", "from-pay", { identityRefs: [{ kind: "Namespace", name: "pay" }] }), policy("shop", "p", ref.server("web-http"), [ref.meshTls("from-pay")])),
    conn: frontend,
    allowed: false,
    reason: "identity-not-allowed",
  },
  {
    name: "identityRefs to a ServiceAccount default to the MeshTLSAuthentication's namespace",
    objects: webWith(meshTls("shop", "sa", { identityRefs: [{ kind: "ServiceAccount", name: "frontend" }] }), policy("shop", "p", ref.server("web-http"), [ref.meshTls("sa")])),
    conn: frontend,
    allowed: true,
  },
  { name: "a ServiceAccount as required ref", objects: webWith(policy("shop", "p", ref.server("web-http"), [ref.serviceAccount("billing", "pay")])), conn: billing, allowed: true },

  // ---- NetworkAuthentication ----
  ...(() => {
    const net = network("shop", "inner", [{ cidr: "10.0.0.0/8", except: ["10.1.0.0/16"] }, { cidr: "fd00::/8", except: ["fd00:bad::/32"] }]);
    const objects = webWith(net, policy("shop", "p", ref.server("web-http"), [ref.network("inner")]));
    const both = webWith(net, frontendOnly, policy("shop", "p", ref.server("web-http"), [ref.network("inner"), ref.meshTls("frontend-only")]));
    return [
      { name: "network allows plaintext inside the CIDR", objects, conn: plain, allowed: true, authorization: "authorizationpolicy:shop/p" },
      { name: "network except carves out a range", objects, conn: plainInner, allowed: false, reason: "network-not-allowed" },
      { name: "IPv4-mapped IPv6 client address matches the IPv4 CIDR", objects, conn: { tls: false, clientIp: "::ffff:10.2.0.5" }, allowed: true },
      { name: "IPv6 CIDR allows", objects, conn: { tls: false, clientIp: "fd00:1::7" }, allowed: true },
      { name: "IPv6 except refuses", objects, conn: { tls: false, clientIp: "fd00:bad::7" }, allowed: false, reason: "network-not-allowed" },
      { name: "network and identity both required: both hold", objects: both, conn: { ...frontend, clientIp: "10.9.0.1" }, allowed: true },
      { name: "network and identity both required: identity alone is not enough", objects: both, conn: externalMeshed, allowed: false, reason: "network-not-allowed" },
      { name: "network and identity both required: network alone is not enough", objects: both, conn: { tls: false, clientIp: "10.9.0.1" }, allowed: false, reason: "unauthenticated" },
    ] satisfies Case[];
  })(),

  // ---- gRPC routes ----
  { name: "GRPCRoute: Get allowed to frontend", objects: grpcRules, pod: "api-1", port: 9090, conn: frontend, req: grpc("/pkg.Svc/Get"), allowed: true, route: "grpcroute:shop/get", authorization: "authorizationpolicy:shop/get-frontend" },
  { name: "GRPCRoute: Delete refused to frontend", objects: grpcRules, pod: "api-1", port: 9090, conn: frontend, req: grpc("/pkg.Svc/Delete"), allowed: false, reason: "identity-not-allowed", route: "grpcroute:shop/delete" },
  { name: "GRPCRoute: Delete allowed to admin", objects: grpcRules, pod: "api-1", port: 9090, conn: admin, req: grpc("/pkg.Svc/Delete"), allowed: true, route: "grpcroute:shop/delete" },
  { name: "GRPCRoute: Get refused to admin", objects: grpcRules, pod: "api-1", port: 9090, conn: admin, req: grpc("/pkg.Svc/Get"), allowed: false, reason: "identity-not-allowed" },
  { name: "GRPCRoute: a method no route matches", objects: grpcRules, pod: "api-1", port: 9090, conn: admin, req: grpc("/pkg.Svc/List"), allowed: false, reason: "no-route" },
  { name: "GRPCRoute: another service", objects: grpcRules, pod: "api-1", port: 9090, conn: frontend, req: grpc("/pkg.Other/Get"), allowed: false, reason: "no-route" },
  {
    name: "GRPCRoute: regular expression method match",
    objects: [...grpcRules, grpcRoute("shop", "reads", "api-grpc", [{ matches: [{ method: { type: "RegularExpression", service: "pkg\\..*", method: "(List|Watch).*" } }] }]), policy("shop", "reads-frontend", ref.grpcRoute("reads"), [ref.meshTls("frontend-only")])],
    pod: "api-1",
    port: 9090,
    conn: frontend,
    req: grpc("/pkg.Svc/ListAll"),
    allowed: true,
    route: "grpcroute:shop/reads",
  },
  {
    name: "precedence: a Server-wide policy applies to every route",
    objects: [...grpcRules, opsOnly, policy("shop", "ops-server", ref.server("api-grpc"), [ref.meshTls("ops-only")])],
    pod: "api-1",
    port: 9090,
    conn: ops,
    req: grpc("/pkg.Svc/Delete"),
    allowed: true,
    authorization: "authorizationpolicy:shop/ops-server",
  },
  {
    name: "precedence: a Namespace policy applies to every Server and route in it",
    objects: [...grpcRules, opsOnly, policy("shop", "ops-ns", ref.namespace("shop"), [ref.meshTls("ops-only")])],
    pod: "api-1",
    port: 9090,
    conn: ops,
    req: grpc("/pkg.Svc/Get"),
    allowed: true,
    authorization: "authorizationpolicy:shop/ops-ns",
  },
  {
    name: "precedence: a Namespace policy does not cover ports without a Server",
    objects: [network("shop", "any", [{ cidr: "0.0.0.0/0" }]), policy("shop", "ns-any", ref.namespace("shop"), [ref.network("any")])],
    conn: external,
    allowed: false,
    reason: "unauthenticated",
  },
  {
    name: "precedence: a route policy does not leak to sibling routes",
    objects: [...grpcRules, opsOnly, policy("shop", "ops-get", ref.grpcRoute("get"), [ref.meshTls("ops-only")])],
    pod: "api-1",
    port: 9090,
    conn: ops,
    req: grpc("/pkg.Svc/Delete"),
    allowed: false,
    reason: "identity-not-allowed",
  },
  { name: "GRPCRoute: a connection-level check uses only Server-wide rules", objects: grpcRules, pod: "api-1", port: 9090, conn: frontend, allowed: false, reason: "default-deny" },

  // ---- HTTP routes ----
  { name: "HTTPRoute: prefix and method match", objects: httpRules, conn: frontend, req: get("/api/items?page=2"), allowed: true, route: "httproute:shop/api" },
  { name: "HTTPRoute: prefix matches whole path segments only", objects: httpRules, conn: frontend, req: get("/apix"), allowed: false, reason: "no-route" },
  { name: "HTTPRoute: method must match", objects: httpRules, conn: frontend, req: post("/api/items"), allowed: false, reason: "no-route" },
  { name: "HTTPRoute: exact path beats a prefix (refused)", objects: httpRules, conn: frontend, req: get("/api/admin"), allowed: false, reason: "identity-not-allowed", route: "httproute:shop/admin" },
  { name: "HTTPRoute: exact path beats a prefix (allowed)", objects: httpRules, conn: admin, req: get("/api/admin"), allowed: true, route: "httproute:shop/admin" },
  { name: "HTTPRoute: regex path and header match", objects: httpRules, conn: frontend, req: get("/t/42", { "x-tenant": "a" }), allowed: true, route: "httproute:shop/tenant" },
  { name: "HTTPRoute: header must match", objects: httpRules, conn: frontend, req: get("/t/42", { "x-tenant": "b" }), allowed: false, reason: "no-route" },
  { name: "HTTPRoute: regex must match the whole path", objects: httpRules, conn: frontend, req: get("/t/42/x", { "x-tenant": "a" }), allowed: false, reason: "no-route" },
  { name: "HTTPRoute: probes stay open beside user routes", objects: httpRules, conn: plain, req: get("/live"), allowed: true, route: "probe" },
  {
    name: "opaque Server ignores routes and uses Server-wide rules",
    objects: [server("shop", "raw", { port: 8080, proxyProtocol: "opaque" }), httpRoute("shop", "r", "raw", []), frontendOnly, policy("shop", "raw-frontend", ref.server("raw"), [ref.meshTls("frontend-only")])],
    conn: frontend,
    req: get("/anything"),
    allowed: true,
    authorization: "authorizationpolicy:shop/raw-frontend",
  },

  // ---- invalid resources never widen access ----
  {
    name: "invalid: targetRef of an unknown kind grants nothing",
    objects: webWith(meshTls("shop", "all", { identities: ["*"] }), policy("shop", "p", { kind: "Deployment", name: "web" }, [ref.meshTls("all")])),
    conn: frontend,
    allowed: false,
    reason: "default-deny",
  },
  {
    name: "invalid: a bad CIDR grants nothing",
    objects: webWith(network("shop", "bad", [{ cidr: "10.0.0.0/33" }]), policy("shop", "p", ref.server("web-http"), [ref.network("bad")])),
    conn: plain,
    allowed: false,
    reason: "default-deny",
  },
  {
    name: "invalid: a malformed wildcard grants nothing",
    objects: webWith(meshTls("shop", "bad", { identities: ["front*.shop.serviceaccount.identity.tether.cluster.local"] }), policy("shop", "p", ref.server("web-http"), [ref.meshTls("bad")])),
    conn: frontend,
    allowed: false,
    reason: "default-deny",
  },
  {
    name: "invalid: empty identities grant nothing",
    objects: webWith(meshTls("shop", "empty", { identities: [] }), policy("shop", "p", ref.server("web-http"), [ref.meshTls("empty")])),
    conn: frontend,
    allowed: false,
  },
  { name: "invalid: a missing MeshTLSAuthentication grants nothing", objects: webWith(policy("shop", "p", ref.server("web-http"), [ref.meshTls("nope")])), conn: frontend, allowed: false },
  {
    name: "invalid: a Server with a bad selector leaves other namespaces alone",
    objects: [server("shop", "bad-sel", { podSelector: { matchExpressions: [{ key: "app", operator: "Like", values: ["w"] }] }, port: 8080 })],
    ns: "open",
    pod: "x-1",
    conn: frontend,
    allowed: true,
  },
  {
    name: "invalid: a Server with a bad selector denies its port in its namespace",
    objects: [server("shop", "bad-sel", { podSelector: { matchExpressions: [{ key: "app", operator: "Like", values: ["w"] }] }, port: 8080 })],
    conn: frontend,
    allowed: false,
    reason: "default-deny",
  },
  {
    name: "invalid: an empty requiredAuthenticationRefs grants nothing",
    objects: webWith(policy("shop", "p", ref.server("web-http"), [])),
    conn: external,
    allowed: false,
    reason: "default-deny",
  },
];

for (const c of cases) {
  test(`authorize: ${c.name}`, () => {
    const cluster = baseCluster();
    applyAll(cluster, c.objects ?? []);
    const pod = cluster.get("Pod", c.ns ?? "shop", c.pod ?? "web-1");
    assert.ok(pod, "fixture pod exists");
    const compiled = compileInboundServer(cluster, pod, c.port ?? 8080, { ...SETTINGS, ...c.settings });
    const d = authorize(compiled, c.conn, c.req);
    const context = `decision ${JSON.stringify(d)} for ${JSON.stringify(compiled)}`;
    assert.equal(d.allowed, c.allowed, context);
    if (c.reason !== undefined) assert.equal(d.reason, c.reason, context);
    if (c.allowed && !c.audited) assert.equal(d.reason, "authorized", context);
    if (c.authorization !== undefined) assert.equal(d.authorization, c.authorization, context);
    if (c.route !== undefined) assert.equal(d.route, c.route, context);
    assert.equal(d.audited, c.audited ?? false, context);
  });
}

test("authorize: the table has at least 40 cases", () => {
  assert.ok(cases.length >= 40, `${cases.length} cases`);
});

test("authorize: an unknown pod annotation value denies (fail closed)", () => {
  const cluster = baseCluster();
  const pod = structuredClone(cluster.get("Pod", "open", "x-1")!);
  pod.metadata!.annotations = { "config.tether.io/default-inbound-policy": "allow-everything" };
  cluster.apply("Pod", pod);
  const compiled = compileInboundServer(cluster, pod, 8080, SETTINGS);
  assert.equal(compiled.name, "default:deny");
  assert.equal(authorize(compiled, frontend).allowed, false);
});
