import { test } from "node:test";
import assert from "node:assert/strict";
import { validatePolicyResource } from "../../src/cluster/policy-validation.js";
import { grpcRoute, httpRoute, meshTls, network, policy, ref, server } from "./fixtures.js";

const fieldsOf = (obj: unknown) => validatePolicyResource(obj).errors.map((e) => e.field);

test("valid resources have no errors", () => {
  for (const obj of [
    server("shop", "web", { podSelector: { matchLabels: { app: "web" }, matchExpressions: [{ key: "tier", operator: "Exists" }] }, port: "http", proxyProtocol: "gRPC" }),
    policy("shop", "p", ref.server("web"), [ref.meshTls("m"), ref.network("n")]),
    policy("shop", "p", ref.namespace("shop"), [ref.serviceAccount("sa", "other")]),
    meshTls("shop", "m", { identities: ["*", "*.shop.serviceaccount.identity.tether.cluster.local"], identityRefs: [{ kind: "Namespace", name: "pay" }] }),
    network("shop", "n", [{ cidr: "10.0.0.0/8", except: ["10.1.0.0/16", "10.2.3.4"] }, { cidr: "fd00::/8", except: ["fd00:1::/32"] }]),
    grpcRoute("shop", "g", "web", [{ matches: [{ method: { service: "pkg.Svc", method: "Get" } }] }]),
    httpRoute("shop", "h", "web", [{ matches: [{ path: { type: "PathPrefix", value: "/api" }, method: "GET", headers: [{ name: "x-a", value: "1" }] }] }]),
  ]) {
    assert.deepEqual(validatePolicyResource(obj).errors, [], JSON.stringify(obj));
  }
});

const invalid: [string, unknown, string][] = [
  ["not an object", "Server", ""],
  ["unknown kind", { kind: "Policy", metadata: { name: "x" }, spec: {} }, "kind"],
  ["missing spec", { kind: "Server", metadata: { name: "x" } }, "spec"],
  ["wrong API group", { ...server("shop", "x", {}), apiVersion: "policy.linkerd.io/v1beta1" }, "apiVersion"],
  ["bad name", { ...server("shop", "x", {}), metadata: { name: "Bad_Name" } }, "metadata.name"],
  ["port out of range", server("shop", "s", { port: 70000 }), "spec.port"],
  ["port name too long", server("shop", "s", { port: "a-very-long-port-name" }), "spec.port"],
  ["port name all digits", server("shop", "s", { port: "8080" }), "spec.port"],
  ["unknown accessPolicy", server("shop", "s", { accessPolicy: "allow" as never }), "spec.accessPolicy"],
  ["unknown proxyProtocol", server("shop", "s", { proxyProtocol: "HTTP/3" as never }), "spec.proxyProtocol"],
  ["selector operator", server("shop", "s", { podSelector: { matchExpressions: [{ key: "a", operator: "Like" }] } }), "spec.podSelector.matchExpressions[0].operator"],
  ["selector In without values", server("shop", "s", { podSelector: { matchExpressions: [{ key: "a", operator: "In" }] } }), "spec.podSelector.matchExpressions[0].values"],
  ["selector label value", server("shop", "s", { podSelector: { matchLabels: { app: "no spaces" } } }), 'spec.podSelector.matchLabels["app"]'],
  ["selector label key", server("shop", "s", { podSelector: { matchLabels: { "-bad": "x" } } }), 'spec.podSelector.matchLabels["-bad"]'],
  ["unknown targetRef kind", policy("shop", "p", { kind: "Deployment", name: "d" }, [ref.meshTls("m")]), "spec.targetRef.kind"],
  ["targetRef group mismatch", policy("shop", "p", { group: "apps", kind: "Server", name: "d" }, [ref.meshTls("m")]), "spec.targetRef.group"],
  ["another namespace as target", policy("shop", "p", ref.namespace("pay"), [ref.meshTls("m")]), "spec.targetRef.name"],
  ["cross-namespace target", policy("shop", "p", { ...ref.server("s"), namespace: "pay" }, [ref.meshTls("m")]), "spec.targetRef.namespace"],
  ["no authentication refs", policy("shop", "p", ref.server("s"), []), "spec.requiredAuthenticationRefs"],
  ["unknown authentication kind", policy("shop", "p", ref.server("s"), [{ kind: "Secret", name: "x" }]), "spec.requiredAuthenticationRefs[0].kind"],
  ["two network refs", policy("shop", "p", ref.server("s"), [ref.network("a"), ref.network("b")]), "spec.requiredAuthenticationRefs"],
  ["two identity refs", policy("shop", "p", ref.server("s"), [ref.meshTls("a"), ref.serviceAccount("b")]), "spec.requiredAuthenticationRefs"],
  ["empty identities", meshTls("shop", "m", { identities: [] }), "spec.identities"],
  ["malformed wildcard", meshTls("shop", "m", { identities: ["web*.shop.serviceaccount.identity.tether.cluster.local"] }), "spec.identities[0]"],
  ["uppercase identity", meshTls("shop", "m", { identities: ["Web.shop"] }), "spec.identities[0]"],
  ["identityRef kind", meshTls("shop", "m", { identityRefs: [{ kind: "Pod", name: "p" }] }), "spec.identityRefs[0].kind"],
  ["no networks", network("shop", "n", []), "spec.networks"],
  ["bad CIDR prefix", network("shop", "n", [{ cidr: "10.0.0.0/8" }, { cidr: "10.0.0.0/33" }]), "spec.networks[1].cidr"],
  ["not an address", network("shop", "n", [{ cidr: "10.0.0/8" }]), "spec.networks[0].cidr"],
  ["except outside the network", network("shop", "n", [{ cidr: "10.0.0.0/8", except: ["11.0.0.0/16"] }]), "spec.networks[0].except[0]"],
  ["except wider than the network", network("shop", "n", [{ cidr: "10.1.0.0/16", except: ["10.0.0.0/8"] }]), "spec.networks[0].except[0]"],
  ["except of another family", network("shop", "n", [{ cidr: "10.0.0.0/8", except: ["fd00::/8"] }]), "spec.networks[0].except[0]"],
  ["bad IPv6", network("shop", "n", [{ cidr: "fd00:::1/64" }]), "spec.networks[0].cidr"],
  ["http path not absolute", httpRoute("shop", "h", "s", [{ matches: [{ path: { type: "Exact", value: "api" } }] }]), "spec.rules[0].matches[0].path.value"],
  ["http bad regex", httpRoute("shop", "h", "s", [{ matches: [{ path: { type: "RegularExpression", value: "(" } }] }]), "spec.rules[0].matches[0].path.value"],
  ["http method", httpRoute("shop", "h", "s", [{ matches: [{ method: "FETCH" }] }]), "spec.rules[0].matches[0].method"],
  ["header name", httpRoute("shop", "h", "s", [{ matches: [{ headers: [{ name: "a b", value: "x" }] }] }]), "spec.rules[0].matches[0].headers[0].name"],
  ["grpc empty method match", grpcRoute("shop", "g", "s", [{ matches: [{ method: {} }] }]), "spec.rules[0].matches[0].method"],
  ["grpc bad service name", grpcRoute("shop", "g", "s", [{ matches: [{ method: { service: "pkg/Svc" } }] }]), "spec.rules[0].matches[0].method.service"],
  ["grpc bad regex", grpcRoute("shop", "g", "s", [{ matches: [{ method: { type: "RegularExpression", method: "[" } }] }]), "spec.rules[0].matches[0].method.method"],
];

for (const [name, obj, field] of invalid) {
  test(`invalid: ${name} is reported at ${field || "(root)"}`, () => {
    const result = validatePolicyResource(obj);
    assert.ok(
      result.errors.some((e) => e.field === field && e.message.length > 0),
      `expected an error at ${JSON.stringify(field)}, got ${JSON.stringify(result.errors)}`,
    );
  });
}

test("warnings: catch-all network and identity, and routes tether ignores", () => {
  assert.equal(fieldsOf(network("shop", "n", [{ cidr: "0.0.0.0/0" }])).length, 0);
  assert.match(validatePolicyResource(network("shop", "n", [{ cidr: "0.0.0.0/0" }])).warnings.join(), /every IPv4 address/);
  assert.match(validatePolicyResource(meshTls("shop", "m", { identities: ["*"] })).warnings.join(), /every authenticated client/);
  const route = httpRoute("shop", "h", "s", []);
  route.spec.parentRefs = [{ kind: "Gateway", name: "gw" }];
  assert.match(validatePolicyResource(route).warnings.join(), /no Server parentRef/);
});

test("validation never throws on arbitrary input", () => {
  for (const junk of [null, 1, [], { spec: [] }, { kind: "Server", metadata: {}, spec: { podSelector: 5, port: {} } }, { kind: "NetworkAuthentication", metadata: { name: "x" }, spec: { networks: [null, { cidr: 5, except: "x" }] } }]) {
    const r = validatePolicyResource(junk);
    assert.ok(r.errors.length > 0, JSON.stringify(junk));
  }
});
