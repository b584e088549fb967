/**
 * Policy resources (src/cluster/policy-validation.ts, src/policy/compile.ts): any field of any
 * resource of a small cluster replaced with junk. Oracle (never-widen): a mutation that makes a
 * resource invalid never makes the controller throw and never allows a request (connection x
 * request x pod port) that the unmutated resources refused. Valid mutations may change access and
 * are not this property's business (they are counted as "accepted").
 */
import fc from "fast-check";
import { authorize, type ConnectionFacts, type RequestFacts } from "../../../src/api/inbound-policy.js";
import { validatePolicyResource } from "../../../src/cluster/policy-validation.js";
import { compileInboundServer } from "../../../src/policy/compile.js";
import { desiredStatuses } from "../../../src/policy/status.js";
import { applyAll, baseCluster, grpcRoute, httpRoute, id, meshTls, network, policy, ref, server, SETTINGS } from "../../policy/fixtures.js";
import { expect, target, type Verdict } from "./target.js";

export const resources = () => [
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

export function allowedSet(objects: ReturnType<typeof resources>): Set<string> {
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
export function paths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [prefix];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...paths(v, [...prefix, i])));
  else if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...prefix, k]));
  return out;
}

export function setAt(root: Record<string, unknown>, path: (string | number)[], value: unknown): void {
  let node: Record<string | number, unknown> = root;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  node[path[path.length - 1]!] = value;
}

export const baseline = allowedSet(resources());


interface Input {
  which: number;
  where: number;
  junk: unknown;
}

const arbitrary: fc.Arbitrary<Input> = fc.record({
  which: fc.nat(),
  where: fc.nat(),
  junk: fc.oneof(fc.anything(), fc.constantFrom("", "*", "10.0.0.0/33", "a*b", "Deployment", -1, 70000, null, [], {}, "(")),
});

function check({ which, where, junk }: Input): Verdict {
  const objects = resources();
  const victim = objects[which % objects.length]!;
  const specPaths = paths(victim.spec, ["spec"]);
  setAt(victim as unknown as Record<string, unknown>, specPaths[where % specPaths.length]!, junk);
  if (validatePolicyResource(victim).errors.length === 0) return "accepted"; // still valid: not this property
  const widened = [...allowedSet(objects)].filter((k) => !baseline.has(k));
  expect(widened.length === 0, `${victim.kind}/${victim.metadata.name} -> ${JSON.stringify(victim.spec)} widened ${widened.join(", ")}`);
  return "refused";
}

export const policyTarget = target<Input>({
  name: "policy",
  what: "policy resources with any field made invalid: the controller never throws and never widens access (never-widen)",
  testRuns: 1000,
  shares: { refused: 0.25 },
  open: () => ({ arbitrary, check }),
});
