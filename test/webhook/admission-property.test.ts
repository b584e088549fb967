import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import jsonpatch from "fast-json-patch";
import type { Pod } from "kubernetes-types/core/v1.js";
import { internalError, parseReview, reviewInjection, reviewPolicy, type ClusterLookup } from "../../src/webhook/admission.js";
import { isInjected } from "../../src/webhook/inject.js";
import { defaultInjectionSettings } from "../../src/webhook/settings.js";

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
const pod = fc.record(
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

describe("admission properties", () => {
  it("any JSON body: parseReview answers, never throws", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (body) => {
        const parsed = parseReview(body);
        assert.equal(typeof parsed.ok, "boolean");
      }),
      { numRuns: 1000 },
    );
  });

  let injectedCount = 0;
  it("any pod: an answer for the same uid; when injected, the patch applies with a JSON Patch library and the result is injected", async () => {
    await fc.assert(
      fc.asyncProperty(pod, fc.constantFrom("shop", "plain", "tether"), async (p, ns) => {
        const parsed = parseReview(review(p, ns));
        assert.ok(parsed.ok);
        const reviewed = await reviewInjection(parsed.request, settings, lookup).catch((err) => internalError("u-1", err));
        assert.equal(reviewed.response.uid, "u-1");
        assert.notEqual(reviewed.reason, "internal", reviewed.response.status?.message);
        if (reviewed.response.patch) {
          const ops = JSON.parse(Buffer.from(reviewed.response.patch, "base64").toString());
          assert.equal(jsonpatch.validate(ops, structuredClone(p)), undefined);
          const out = jsonpatch.applyPatch(structuredClone(p), ops, true, false).newDocument as Pod;
          assert.ok(isInjected(out));
          assert.equal(out.spec?.containers[0]?.name, "tether-proxy");
          assert.equal(out.spec?.containers.length, (p.spec?.containers?.length ?? 0) + 1);
          injectedCount++;
        } else if (reviewed.response.allowed && reviewed.outcome === "injected") {
          assert.fail("injected without a patch");
        }
        // Nothing unmeshed is admitted in an opted-in namespace unless a rule says so.
        if (ns === "shop" && reviewed.response.allowed && !reviewed.response.patch) {
          assert.ok(["already-injected", "host-network", "pod-opted-out", "not-create"].includes(reviewed.reason), reviewed.reason);
        }
      }),
      { numRuns: 1000 },
    );
    assert.ok(injectedCount > 100, `only ${injectedCount} of 1000 random pods were injected: the generator is too narrow`);
  });

  it("any object sent to the validator: an answer, never a crash", async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), fc.constantFrom("Server", "AuthorizationPolicy", "MeshTLSAuthentication", "NetworkAuthentication", "HTTPRoute"), async (spec, kind) => {
        const group = kind === "HTTPRoute" ? "gateway.networking.k8s.io" : "policy.tether.io";
        const object = { apiVersion: `${group}/v1`, kind, metadata: { name: "x", namespace: "shop" }, spec };
        const parsed = parseReview(review(object, "shop", { group, version: "v1", kind }));
        assert.ok(parsed.ok);
        const reviewed = await reviewPolicy(parsed.request, lookup).catch((err) => internalError("u-1", err));
        assert.equal(reviewed.response.uid, "u-1");
        assert.notEqual(reviewed.reason, "internal", reviewed.response.status?.message);
      }),
      { numRuns: 1000 },
    );
  });
});
