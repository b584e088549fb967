import { test } from "node:test";
import assert from "node:assert/strict";
import { authorize, normalizePath } from "../../src/api/inbound-policy.js";
import type { InboundServer } from "../../src/api/index.js";

const base: InboundServer = { name: "t", protocol: "unknown", authorizations: [], routes: [], defaultPolicy: "deny", audit: false };

test("a network that does not parse matches nothing, and a bad except excludes everything", () => {
  const server: InboundServer = {
    ...base,
    authorizations: [
      { name: "bad", networks: [{ cidr: "nonsense", except: [] }], authentication: "unauthenticated", identities: [] },
      { name: "bad-except", networks: [{ cidr: "0.0.0.0/0", except: ["nonsense"] }], authentication: "unauthenticated", identities: [] },
    ],
  };
  const d = authorize(server, { tls: false, clientIp: "10.0.0.1" });
  assert.deepEqual([d.allowed, d.reason], [false, "network-not-allowed"]);
});

test("a client address that does not parse never matches a network", () => {
  const server: InboundServer = { ...base, authorizations: [{ name: "any4", networks: [{ cidr: "0.0.0.0/0", except: [] }], authentication: "unauthenticated", identities: [] }] };
  assert.equal(authorize(server, { tls: false, clientIp: "garbage" }).allowed, false);
  assert.equal(authorize(server, { tls: false, clientIp: "1.2.3.4" }).allowed, true);
  // An IPv4 CIDR never matches an IPv6 client.
  assert.equal(authorize(server, { tls: false, clientIp: "fd00::1" }).allowed, false);
});

test("a client identity without TLS counts for nothing", () => {
  const server: InboundServer = { ...base, authorizations: [{ name: "a", networks: [], authentication: "mtls", identities: ["*"] }] };
  assert.equal(authorize(server, { tls: false, clientIdentity: "x.y.serviceaccount.identity.tether.cluster.local", clientIp: "10.0.0.1" }).reason, "unauthenticated");
});

test("an invalid regular expression in a route matches nothing", () => {
  const server: InboundServer = {
    ...base,
    routes: [
      {
        name: "r",
        matches: [{ pathType: "RegularExpression", path: "(", method: "", headers: [], grpcService: "", grpcMethod: "", grpcMatchType: "" }],
        authorizations: [{ name: "all", networks: [], authentication: "unauthenticated", identities: [] }],
      },
    ],
  };
  assert.equal(authorize(server, { tls: false, clientIp: "10.0.0.1" }, { method: "GET", path: "(", headers: {} }).reason, "no-route");
});

test("header matches accept multi-valued headers and ignore name case", () => {
  const server: InboundServer = {
    ...base,
    routes: [
      {
        name: "r",
        matches: [{ pathType: "", path: "", method: "", headers: [{ name: "X-Env", value: "prod|staging", regex: true }], grpcService: "", grpcMethod: "", grpcMatchType: "" }],
        authorizations: [{ name: "all", networks: [], authentication: "unauthenticated", identities: [] }],
      },
    ],
  };
  const conn = { tls: false, clientIp: "10.0.0.1" };
  assert.equal(authorize(server, conn, { method: "GET", path: "/", headers: { "x-env": ["dev", "staging"] } }).allowed, true);
  assert.equal(authorize(server, conn, { method: "GET", path: "/", headers: { "x-env": "production" } }).allowed, false);
});

test("the compiled form is cached per server object, so a new object is recompiled", () => {
  const a: InboundServer = { ...base, authorizations: [{ name: "a", networks: [], authentication: "unauthenticated", identities: [] }] };
  const conn = { tls: false, clientIp: "10.0.0.1" };
  assert.equal(authorize(a, conn).allowed, true);
  assert.equal(authorize({ ...a, authorizations: [] }, conn).allowed, false);
});

test("normalizePath resolves dot segments, unreserved escapes and repeated slashes", () => {
  const cases: [string, string][] = [
    ["/api/items", "/api/items"],
    ["/public/../admin", "/admin"],
    ["/public/%2e%2e/admin", "/admin"],
    ["/./a//b/", "/a/b/"],
    ["/%61dmin", "/admin"],
    ["/a%2Fb", "/a%2Fb"],
    ["/..", "/"],
    ["/a/b/..", "/a/"],
  ];
  for (const [raw, want] of cases) assert.equal(normalizePath(raw), want, raw);
});

test("a dot-segment path cannot pass for another route", () => {
  const any = { name: "any", networks: [], authentication: "unauthenticated" as const, identities: [] };
  const m = { method: "", headers: [], grpcService: "", grpcMethod: "", grpcMatchType: "" as const };
  const server: InboundServer = {
    ...base,
    routes: [
      { name: "public", matches: [{ ...m, pathType: "PathPrefix", path: "/public" }], authorizations: [any] },
      { name: "admin", matches: [{ ...m, pathType: "PathPrefix", path: "/admin" }], authorizations: [] },
    ],
  };
  const conn = { tls: false, clientIp: "10.0.0.1" };
  assert.equal(authorize(server, conn, { method: "GET", path: "/public/x", headers: {} }).allowed, true);
  for (const path of ["/public/../admin", "/public/%2E%2E/admin/x", "//admin", "/%61dmin"]) {
    const d = authorize(server, conn, { method: "GET", path, headers: {} });
    assert.deepEqual([d.allowed, d.route], [false, "admin"], path);
  }
});
