/**
 * AdmissionReview bodies (src/webhook/admission.ts) and the injection patch (src/webhook/inject.ts):
 * any JSON body, random pods (annotations valid or not, probes, ports, host network, the proxy's
 * own container name), and any object sent to the policy validator. Oracle: an answer for the same
 * uid, never an internal error; an injection patch applies with an independent JSON Patch library
 * (fast-json-patch) and yields an injected pod with the proxy first; in an opted-in namespace
 * nothing unmeshed is admitted unless a rule says so.
 */
import fc from "fast-check";
import jsonpatch from "fast-json-patch";
import type { Pod } from "kubernetes-types/core/v1.js";
import { internalError, parseReview, reviewInjection, reviewPolicy, type ClusterLookup } from "../../../src/webhook/admission.js";
import { isInjected } from "../../../src/webhook/inject.js";
import { defaultInjectionSettings } from "../../../src/webhook/settings.js";
import { expect, target, type Verdict } from "./target.js";

const settings = defaultInjectionSettings();
const lookup: ClusterLookup = {
  namespace: async (name) => ({ metadata: { name, labels: name === "plain" ? ({} as Record<string, string>) : { "tether.io/inject": "enabled" } } }),
  pods: async () => [],
};

const annotationValue = fc.oneof(fc.constantFrom("80", "8080,9090", "1-65535", "0", "90-80", "http", "", "100m", "lots", "deny", "debug", "disabled", "enabled"), fc.string());
const someAnnotations = fc.dictionary(
  fc.constantFrom(
    "tether.io/inject",
    "config.tether.io/skip-inbound-ports",
    "config.tether.io/skip-outbound-ports",
    "config.tether.io/opaque-ports",
    "config.tether.io/default-inbound-policy",
    "config.tether.io/proxy-memory-limit",
    "config.tether.io/proxy-log-level",
    "a/b~c",
  ),
  annotationValue,
);
// Mostly clean pods, so that most runs reach the patch; a third carry random (often invalid) annotations.
const annotations = fc.oneof({ arbitrary: fc.constant({}), weight: 2 }, { arbitrary: someAnnotations, weight: 1 });
const port = fc.record({ containerPort: fc.integer({ min: 1, max: 65535 }), name: fc.option(fc.constantFrom("http", "grpc", "admin"), { nil: undefined }) }, { requiredKeys: ["containerPort"] });
const probe = fc.oneof(
  fc.record({ httpGet: fc.record({ port: fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.constantFrom("http", "grpc", "nope")), scheme: fc.constantFrom("HTTP", "HTTPS") }) }),
  fc.record({ tcpSocket: fc.record({ port: fc.integer({ min: 1, max: 65535 }) }) }),
);
const container = fc.record(
  { name: fc.oneof({ arbitrary: fc.constantFrom("app", "sidecar"), weight: 9 }, { arbitrary: fc.constant("tether-proxy"), weight: 1 }), image: fc.constant("x"), ports: fc.array(port, { maxLength: 3 }), livenessProbe: probe, readinessProbe: probe },
  { requiredKeys: ["name"] },
);
export const pod = fc.record(
  {
    metadata: fc.record({ annotations, labels: fc.dictionary(fc.constantFrom("app", "x/y"), fc.string({ maxLength: 5 })) }, { requiredKeys: [] }),
    spec: fc.record(
      {
        containers: fc.array(container, { minLength: 1, maxLength: 3 }),
        initContainers: fc.array(container, { maxLength: 2 }),
        volumes: fc.array(fc.record({ name: fc.constantFrom("data", "cache"), emptyDir: fc.constant({}) }), { maxLength: 2 }),
        hostNetwork: fc.oneof({ arbitrary: fc.constant(false), weight: 9 }, { arbitrary: fc.constant(true), weight: 1 }),
        serviceAccountName: fc.constantFrom("web", "default", "web", "bad.name", ""),
      },
      { requiredKeys: ["containers"] },
    ),
  },
  { requiredKeys: ["spec"] },
);

function review(object: unknown, namespace: string, kind = { group: "", version: "v1", kind: "Pod" }) {
  return { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: { uid: "u-1", kind, namespace, operation: "CREATE", object } };
}

const POLICY_KINDS = ["Server", "AuthorizationPolicy", "MeshTLSAuthentication", "NetworkAuthentication", "HTTPRoute"] as const;

type Input =
  | { kind: "body"; body: unknown }
  | { kind: "pod"; pod: unknown; namespace: string }
  | { kind: "policy"; spec: unknown; resource: (typeof POLICY_KINDS)[number] };

const arbitrary: fc.Arbitrary<Input> = fc.oneof(
  { weight: 1, arbitrary: fc.jsonValue().map((body) => ({ kind: "body" as const, body })) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("pod" as const), pod, namespace: fc.constantFrom("shop", "plain", "tether") }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("policy" as const), spec: fc.jsonValue(), resource: fc.constantFrom(...POLICY_KINDS) }) },
);

async function check(input: Input): Promise<Verdict> {
  if (input.kind === "body") {
    const parsed = parseReview(input.body);
    expect(typeof parsed.ok === "boolean", "parseReview gave no answer");
    return parsed.ok ? "accepted" : "refused";
  }
  if (input.kind === "policy") {
    const group = input.resource === "HTTPRoute" ? "gateway.networking.k8s.io" : "policy.tether.io";
    const object = { apiVersion: `${group}/v1`, kind: input.resource, metadata: { name: "x", namespace: "shop" }, spec: input.spec };
    const parsed = parseReview(review(object, "shop", { group, version: "v1", kind: input.resource }));
    expect(parsed.ok, "a well-formed review was refused");
    const reviewed = await reviewPolicy(parsed.request, lookup).catch((err) => internalError("u-1", err));
    expect(reviewed.response.uid === "u-1", "the answer is for another uid");
    expect(reviewed.reason !== "internal", `internal error: ${reviewed.response.status?.message}`);
    return reviewed.response.allowed ? "accepted" : "refused";
  }
  const p = input.pod as Pod;
  const parsed = parseReview(review(p, input.namespace));
  expect(parsed.ok, "a well-formed review was refused");
  const reviewed = await reviewInjection(parsed.request, settings, lookup).catch((err) => internalError("u-1", err));
  expect(reviewed.response.uid === "u-1", "the answer is for another uid");
  expect(reviewed.reason !== "internal", `internal error: ${reviewed.response.status?.message}`);
  if (reviewed.response.patch) {
    const ops = JSON.parse(Buffer.from(reviewed.response.patch, "base64").toString());
    expect(jsonpatch.validate(ops, structuredClone(p)) === undefined, "the patch does not apply");
    const out = jsonpatch.applyPatch(structuredClone(p), ops, true, false).newDocument as Pod;
    expect(isInjected(out), "the patched pod is not injected");
    expect(out.spec?.containers[0]?.name === "tether-proxy", "the proxy is not the first container");
    expect(out.spec?.containers.length === (p.spec?.containers?.length ?? 0) + 1, "containers were lost or duplicated");
    return "accepted";
  }
  expect(!(reviewed.response.allowed && reviewed.outcome === "injected"), "injected without a patch");
  // Nothing unmeshed is admitted in an opted-in namespace unless a rule says so.
  if (input.namespace === "shop" && reviewed.response.allowed) {
    expect(["already-injected", "host-network", "pod-opted-out", "not-create"].includes(reviewed.reason), `admitted unmeshed: ${reviewed.reason}`);
  }
  return "refused";
}

export const admissionTarget = target<Input>({
  name: "admission",
  what: "AdmissionReview bodies, injection patches (applied with fast-json-patch) and policy reviews: an answer, never internal",
  testRuns: 1500,
  shares: { accepted: 0.05 },
  open: () => ({ arbitrary, check }),
});
