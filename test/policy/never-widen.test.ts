/**
 * Property: breaking any field of any policy resource (so that it no longer validates) never makes
 * the controller throw and never allows a request that was refused before.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { authorize, type ConnectionFacts, type RequestFacts } from "../../src/api/inbound-policy.js";
import { validatePolicyResource } from "../../src/cluster/policy-validation.js";
import { compileInboundServer } from "../../src/policy/compile.js";
import { desiredStatuses } from "../../src/policy/status.js";
import { applyAll, baseCluster, grpcRoute, httpRoute, id, meshTls, network, policy, ref, server, SETTINGS } from "./fixtures.js";

const resources = () => [
  server("shop", "api", { podSelector: { matchLabels: { app: "api" } }, port: 9090, proxyProtocol: "gRPC" }),
  server("shop", "web", { podSelector: { matchLabels: { app: "web" } }, port: "http" }),
  grpcRoute("shop", "get", "api", [{ matches: [{ method: { service: "pkg.Svc", method: "Get" } }] }]),
  httpRoute("shop", "pub", "web", [{ matches: [{ path: { type: "PathPrefix", value: "/public" } }] }]),
  meshTls("shop", "front", { identities: [id("frontend", "shop")], identityRefs: [{ kind: "Namespace", name: "pay" }] }),
  network("shop", "inner", [{ cidr: "10.0.0.0/8", except: ["10.1.0.0/16"] }]),
  policy("shop", "api-all", ref.server("api"), [ref.meshTls("front")]),
  policy("shop", "get", ref.grpcRoute("get"), [ref.network("inner")]),
  policy("shop", "pub", ref.httpRoute("pub"), [ref.network("inner")]),
  policy("shop", "ns", ref.namespace("shop"), [ref.serviceAccount("ops")]),
];

const conns: ConnectionFacts[] = [
  { tls: true, clientIdentity: id("frontend", "shop"), clientIp: "10.1.2.3" },
  { tls: true, clientIdentity: id("billing", "pay"), clientIp: "10.2.0.5" },
  { tls: true, clientIdentity: id("ops", "shop"), clientIp: "203.0.113.1" },
  { tls: false, clientIp: "10.2.0.5" },
  { tls: false, clientIp: "203.0.113.9" },
];
const requests: (RequestFacts | undefined)[] = [
  undefined,
  { method: "POST", path: "/pkg.Svc/Get", headers: {} },
  { method: "POST", path: "/pkg.Svc/Delete", headers: {} },
  { method: "GET", path: "/public/x", headers: {} },
  { method: "GET", path: "/secret", headers: {} },
  { method: "GET", path: "/ready", headers: {} },
];
const targets: [string, number][] = [
  ["api-1", 9090],
  ["api-1", 8080],
  ["web-1", 8080],
  ["web-1", 9090],
];

function allowedSet(objects: ReturnType<typeof resources>): Set<string> {
  const cluster = baseCluster();
  applyAll(cluster, objects);
  desiredStatuses(cluster, SETTINGS.trustDomain);
  const out = new Set<string>();
  for (const [podName, port] of targets) {
    const compiled = compileInboundServer(cluster, cluster.get("Pod", "shop", podName)!, port, SETTINGS);
    conns.forEach((c, i) =>
      requests.forEach((r, j) => {
        if (authorize(compiled, c, r).allowed) out.add(`${podName}:${port} conn${i} req${j}`);
      }),
    );
  }
  return out;
}

/** Every path to a leaf (or container) under `spec`. */
function paths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [prefix];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...paths(v, [...prefix, i])));
  else if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...prefix, k]));
  return out;
}

function setAt(root: Record<string, unknown>, path: (string | number)[], value: unknown): void {
  let node: Record<string | number, unknown> = root;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  node[path[path.length - 1]!] = value;
}

const baseline = allowedSet(resources());

test("baseline grants something, so the property is not vacuous", () => {
  assert.ok(baseline.size > 10, `${baseline.size} allowed`);
  assert.ok(baseline.has("api-1:9090 conn0 req1"));
});

test("an invalid mutation of any policy resource never widens access", () => {
  let tested = 0;
  const runs = Number(process.env.POLICY_FUZZ_RUNS ?? 400);
  fc.assert(
    fc.property(
      fc.nat(),
      fc.nat(),
      fc.oneof(fc.anything(), fc.constantFrom("", "*", "10.0.0.0/33", "a*b", "Deployment", -1, 70000, null, [], {}, "(")),
      (which, where, junk) => {
        const objects = resources();
        const victim = objects[which % objects.length]!;
        const specPaths = paths(victim.spec, ["spec"]);
        setAt(victim as unknown as Record<string, unknown>, specPaths[where % specPaths.length]!, junk);
        if (validatePolicyResource(victim).errors.length === 0) return; // still valid: not this property
        tested++;
        const now = allowedSet(objects);
        const widened = [...now].filter((k) => !baseline.has(k));
        assert.deepEqual(widened, [], `${victim.kind}/${victim.metadata.name} -> ${JSON.stringify(victim.spec)}`);
      },
    ),
    { numRuns: runs },
  );
  assert.ok(tested > runs / 4, `only ${tested} of ${runs} mutations were invalid`);
});

test("an invalid route does not turn its Server into one without routes", () => {
  const objects = resources();
  const pub = objects.find((o) => o.kind === "HTTPRoute")!;
  (pub.spec as { rules: unknown }).rules = [{ matches: [{ path: { type: "RegularExpression", value: "(" } }] }];
  objects.push(policy("shop", "web-all", ref.server("web"), [ref.network("inner")]));
  const cluster = baseCluster();
  applyAll(cluster, objects);
  const compiled = compileInboundServer(cluster, cluster.get("Pod", "shop", "web-1")!, 8080, SETTINGS);
  const d = authorize(compiled, { tls: false, clientIp: "10.2.0.5" }, { method: "GET", path: "/secret", headers: {} });
  assert.deepEqual([d.allowed, d.reason], [false, "no-route"]);
});
