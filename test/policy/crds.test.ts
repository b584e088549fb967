/**
 * The CRDs in deploy/crds/ against their own OpenAPI schemas (with ajv): the examples validate,
 * broken objects do not, and every CRD has a status subresource and printer columns.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { Ajv, type ValidateFunction } from "ajv";
import { validatePolicyResource } from "../../src/cluster/policy-validation.js";
import { MemoryCluster } from "../../src/cluster/memory.js";
import { compileInboundServer } from "../../src/policy/compile.js";
import { authorize } from "../../src/api/inbound-policy.js";
import { id, pod, SETTINGS } from "./fixtures.js";

const crdDir = fileURLToPath(new URL("../../deploy/crds/", import.meta.url));

interface Crd {
  spec: {
    group: string;
    names: { kind: string };
    versions: { name: string; subresources?: { status?: object }; additionalPrinterColumns?: unknown[]; schema: { openAPIV3Schema: object } }[];
  };
}

function loadCrds(): Map<string, { crd: Crd; validate: ValidateFunction }> {
  const ajv = new Ajv({ allErrors: true, strict: false });
  // Kubernetes schema extensions carry no validation ajv needs to know about.
  for (const k of ["x-kubernetes-int-or-string", "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-preserve-unknown-fields"]) ajv.addKeyword(k);
  ajv.addFormat("date-time", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
  ajv.addFormat("int64", { type: "number", validate: (n: number) => Number.isInteger(n) });
  const out = new Map<string, { crd: Crd; validate: ValidateFunction }>();
  for (const file of readdirSync(crdDir).filter((f) => f.endsWith(".yaml"))) {
    const crd = parseAllDocuments(readFileSync(join(crdDir, file), "utf8"))[0]!.toJS() as Crd;
    out.set(crd.spec.names.kind, { crd, validate: ajv.compile(crd.spec.versions[0]!.schema.openAPIV3Schema) });
  }
  return out;
}

const crds = loadCrds();
const examples = parseAllDocuments(readFileSync(join(crdDir, "examples", "policy-examples.yaml"), "utf8")).map((d) => d.toJS() as { kind: string; metadata: { name: string } });

test("there is one CRD per policy kind, each with status subresource and printer columns", () => {
  assert.deepEqual([...crds.keys()].sort(), ["AuthorizationPolicy", "MeshTLSAuthentication", "NetworkAuthentication", "Server"]);
  for (const { crd } of crds.values()) {
    assert.equal(crd.spec.group, "policy.tether.io");
    const v = crd.spec.versions[0]!;
    assert.equal(v.name, "v1alpha1");
    assert.ok(v.subresources?.status, `${crd.spec.names.kind} has a status subresource`);
    assert.ok((v.additionalPrinterColumns ?? []).length >= 2);
  }
});

test("the examples validate against the CRD schemas and tether's own validation", () => {
  let checked = 0;
  for (const obj of examples) {
    assert.deepEqual(validatePolicyResource(obj).errors, [], `${obj.kind}/${obj.metadata.name}`);
    const entry = crds.get(obj.kind);
    if (!entry) continue; // Gateway API routes: their CRDs are not tether's
    assert.ok(entry.validate(obj), `${obj.kind}/${obj.metadata.name}: ${JSON.stringify(entry.validate.errors)}`);
    checked++;
  }
  assert.ok(checked >= 8, `${checked} examples checked against CRDs`);
});

test("the CRD schemas refuse malformed objects", () => {
  const server = examples.find((o) => o.kind === "Server")!;
  const policy = examples.find((o) => o.kind === "AuthorizationPolicy")!;
  const bad: [string, unknown][] = [
    ["Server", { ...server, spec: { podSelector: {}, port: 0 } }],
    ["Server", { ...server, spec: { podSelector: {}, port: "Not_A_Name" } }],
    ["Server", { ...server, spec: { podSelector: {}, port: 80, proxyProtocol: "HTTP/3" } }],
    ["Server", { ...server, spec: { podSelector: { matchExpressions: [{ key: "a", operator: "Like" }] }, port: 80 } }],
    ["Server", { ...server, spec: { port: 80 } }],
    ["AuthorizationPolicy", { ...policy, spec: { targetRef: { kind: "Deployment", name: "x" }, requiredAuthenticationRefs: [{ kind: "ServiceAccount", name: "a" }] } }],
    ["AuthorizationPolicy", { ...policy, spec: { targetRef: { kind: "Server", name: "x" }, requiredAuthenticationRefs: [] } }],
    ["MeshTLSAuthentication", { kind: "MeshTLSAuthentication", metadata: { name: "m" }, spec: { identities: ["web*.shop"] } }],
    ["MeshTLSAuthentication", { kind: "MeshTLSAuthentication", metadata: { name: "m" }, spec: {} }],
    ["NetworkAuthentication", { kind: "NetworkAuthentication", metadata: { name: "n" }, spec: { networks: [] } }],
    ["Server", { ...server, status: { conditions: [{ type: "Accepted", status: "Maybe", reason: "x", message: "", lastTransitionTime: "2026-01-01T00:00:00Z" }] } }],
  ];
  for (const [kind, obj] of bad) assert.equal(crds.get(kind)!.validate(obj), false, JSON.stringify(obj));
});

test("the examples do what their comment says", () => {
  const cluster = new MemoryCluster();
  cluster.apply("Namespace", { metadata: { name: "shop" } });
  const web = pod("shop", "web-1", { app: "web" });
  web.spec!.containers[0]!.ports!.push({ name: "metrics", containerPort: 9990 });
  cluster.apply("Pod", web);
  for (const obj of examples) cluster.apply(obj.kind as never, obj as never);
  const grpcPort = compileInboundServer(cluster, web, 9090, SETTINGS);
  const call = (sa: string, ns: string, method: string) =>
    authorize(grpcPort, { tls: true, clientIdentity: id(sa, ns), clientIp: "10.1.1.1" }, { method: "POST", path: `/shop.v1.Catalog/${method}`, headers: {} }).allowed;
  assert.deepEqual([call("frontend", "shop", "Get"), call("frontend", "shop", "Delete"), call("admin-tool", "shop", "Delete"), call("anyone", "ops", "Delete")], [true, false, true, true]);
  const metrics = compileInboundServer(cluster, web, 9990, SETTINGS);
  assert.equal(authorize(metrics, { tls: false, clientIp: "10.2.3.4" }).allowed, true);
  assert.equal(authorize(metrics, { tls: false, clientIp: "10.99.0.1" }).allowed, false);
});
