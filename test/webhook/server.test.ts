import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:https";
import { get } from "node:http";
import { mkdtempSync, rmSync, copyFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { X509Certificate, randomUUID } from "node:crypto";
import type { TLSSocket } from "node:tls";
import jsonpatch from "fast-json-patch";
import { pino } from "pino";
import type { Namespace, Pod } from "kubernetes-types/core/v1.js";
import { startWebhookServer, type WebhookServer } from "../../src/webhook/server.js";
import { defaultInjectionSettings } from "../../src/webhook/settings.js";
import type { ClusterLookup } from "../../src/webhook/admission.js";
import { makeServingPair } from "./certs.js";
import { ManualClock } from "../../src/core/clock.js";

const namespaces: Record<string, Namespace> = {
  shop: { metadata: { name: "shop", labels: { "tether.io/inject": "enabled" } } },
  plain: { metadata: { name: "plain" } },
};
const pods: Pod[] = [
  { metadata: { name: "web-1", namespace: "shop", labels: { app: "web" } }, spec: { containers: [{ name: "app", ports: [{ name: "grpc", containerPort: 9000 }] }] } },
  { metadata: { name: "db-1", namespace: "shop", labels: { app: "db" } }, spec: { containers: [{ name: "db", ports: [{ containerPort: 5432 }] }] } },
];
const lookup: ClusterLookup = {
  async namespace(name) {
    if (name === "broken") throw new Error("connection refused");
    return namespaces[name];
  },
  // Returns every pod of the namespace: the webhook must re-apply the selector itself.
  async pods(namespace) {
    return pods.filter((p) => p.metadata?.namespace === namespace);
  },
};

let dir: string;
let server: WebhookServer;
let ca: string;

interface Reply {
  status: number;
  text: string;
  json: any;
  peerFingerprint: string;
}

function post(path: string, body: string | Buffer, headers: Record<string, string> = { "content-type": "application/json" }, method = "POST"): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port: server.port, path, method, ca, servername: "localhost", headers, agent: false, timeout: 5000 },
      (res) => {
        const chunks: Buffer[] = [];
        const peer = (res.socket as TLSSocket).getPeerCertificate();
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString();
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, text, json, peerFingerprint: peer.fingerprint256 });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    req.end(body);
  });
}

/** An AdmissionReview shaped as kube-apiserver sends it. */
function review(kind: { group: string; version: string; kind: string; resource: string }, object: unknown, extra: Record<string, unknown> = {}) {
  const gvr = { group: kind.group, version: kind.version, resource: kind.resource };
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: randomUUID(),
      kind: { group: kind.group, version: kind.version, kind: kind.kind },
      resource: gvr,
      requestKind: { group: kind.group, version: kind.version, kind: kind.kind },
      requestResource: gvr,
      namespace: "shop",
      operation: "CREATE",
      userInfo: { username: "system:serviceaccount:kube-system:replicaset-controller", uid: randomUUID(), groups: ["system:serviceaccounts", "system:authenticated"] },
      object,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: "meta.k8s.io/v1", kind: "CreateOptions" },
      ...extra,
    },
  };
}

const POD = { group: "", version: "v1", kind: "Pod", resource: "pods" };
const podObject = (annotations: Record<string, string> = {}): Pod => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { generateName: "web-5f7c-", labels: { app: "web" }, annotations },
  spec: { serviceAccountName: "web", containers: [{ name: "app", image: "example/web:1", ports: [{ containerPort: 8080 }] }] },
});

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "tether-webhook-"));
  const pair = makeServingPair(dir, "first");
  ca = pair.cert;
  copyFileSync(pair.certFile, join(dir, "tls.crt"));
  copyFileSync(pair.keyFile, join(dir, "tls.key"));
  server = await startWebhookServer({
    settings: defaultInjectionSettings(),
    lookup,
    certFile: join(dir, "tls.crt"),
    keyFile: join(dir, "tls.key"),
    log: pino({ level: "silent" }),
    host: "127.0.0.1",
    port: 0,
    adminHost: "127.0.0.1",
    adminPort: 0,
    maxBodyBytes: 256 * 1024,
    certPollMs: 60_000,
  });
});

after(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("mutating webhook over HTTPS", () => {
  it("injects a pod of a labelled namespace with a JSON Patch", async () => {
    const body = review(POD, podObject());
    const reply = await post("/inject", JSON.stringify(body));
    assert.equal(reply.status, 200);
    assert.equal(reply.json.apiVersion, "admission.k8s.io/v1");
    assert.equal(reply.json.kind, "AdmissionReview");
    const response = reply.json.response;
    assert.equal(response.uid, body.request.uid);
    assert.equal(response.allowed, true);
    assert.equal(response.patchType, "JSONPatch");
    const patch = JSON.parse(Buffer.from(response.patch, "base64").toString());
    const pod = jsonpatch.applyPatch(podObject(), patch, true, false).newDocument as Pod;
    assert.deepEqual(pod.spec?.containers.map((c) => c.name), ["tether-proxy", "app"]);
    assert.deepEqual(pod.spec?.initContainers?.map((c) => c.name), ["tether-init"]);
  });

  it("leaves pods of an unlabelled namespace alone", async () => {
    const reply = await post("/inject", JSON.stringify(review(POD, podObject(), { namespace: "plain" })));
    assert.equal(reply.json.response.allowed, true);
    assert.equal(reply.json.response.patch, undefined);
  });

  it("does not mutate updates", async () => {
    const reply = await post("/inject", JSON.stringify(review(POD, podObject(), { operation: "UPDATE", oldObject: podObject() })));
    assert.equal(reply.json.response.allowed, true);
    assert.equal(reply.json.response.patch, undefined);
  });

  it("denies a pod with a malformed config annotation, naming it", async () => {
    const reply = await post("/inject", JSON.stringify(review(POD, podObject({ "config.tether.io/skip-inbound-ports": "eighty" }))));
    assert.equal(reply.status, 200);
    assert.equal(reply.json.response.allowed, false);
    assert.equal(reply.json.response.status.code, 403);
    assert.match(reply.json.response.status.message, /config\.tether\.io\/skip-inbound-ports.*"eighty"/);
  });

  it("fails closed when the namespace cannot be read", async () => {
    const reply = await post("/inject", JSON.stringify(review(POD, podObject(), { namespace: "broken" })));
    assert.equal(reply.json.response.allowed, false);
    assert.match(reply.json.response.status.message, /could not read namespace broken/);
  });

  it("denies a review of the wrong kind", async () => {
    const reply = await post("/inject", JSON.stringify(review({ group: "", version: "v1", kind: "Service", resource: "services" }, { metadata: { name: "x" }, spec: {} })));
    assert.equal(reply.json.response.allowed, false);
    assert.equal(reply.json.response.status.code, 400);
    assert.match(reply.json.response.status.message, /only handles core\/v1 Pods, not core\/Service/);
  });

  it("denies a pod without a spec", async () => {
    const reply = await post("/inject", JSON.stringify(review(POD, { metadata: {} })));
    assert.equal(reply.json.response.allowed, false);
    assert.match(reply.json.response.status.message, /not a pod with a spec/);
  });
});

describe("malformed requests get a 4xx with a message, and the server serves on", () => {
  const cases: { name: string; path?: string; body: string | Buffer; headers?: Record<string, string>; method?: string; status: number; message: RegExp }[] = [
    { name: "not JSON", body: "{\"apiVersion\": ", status: 400, message: /not JSON/ },
    { name: "JSON but not an object", body: "[1,2]", status: 400, message: /not a JSON object/ },
    { name: "AdmissionReview v1beta1", body: JSON.stringify({ ...review(POD, podObject()), apiVersion: "admission.k8s.io/v1beta1" }), status: 400, message: /admissionReviewVersions/ },
    { name: "no request", body: JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" }), status: 400, message: /no request/ },
    { name: "no uid", body: JSON.stringify(review(POD, podObject(), { uid: "" })), status: 400, message: /uid is missing/ },
    { name: "bad operation", body: JSON.stringify(review(POD, podObject(), { operation: "PATCH" })), status: 400, message: /operation "PATCH"/ },
    { name: "bad kind field", body: JSON.stringify(review(POD, podObject(), { kind: "Pod" })), status: 400, message: /request\.kind/ },
    { name: "wrong content type", body: "x", headers: { "content-type": "text/plain" }, status: 415, message: /not application\/json/ },
    { name: "oversized", body: Buffer.alloc(300 * 1024, 0x20), status: 413, message: /exceeds the webhook's limit/ },
    {
      name: "oversized without content-length (chunked)",
      body: Buffer.alloc(300 * 1024, 0x20),
      headers: { "content-type": "application/json", "transfer-encoding": "chunked" },
      status: 413,
      message: /exceeds/,
    },
    { name: "GET", body: "", method: "GET", status: 405, message: /POSTs AdmissionReviews/ },
    { name: "unknown path", path: "/mutate", body: "{}", status: 404, message: /use \/inject or \/validate/ },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const reply = await post(c.path ?? "/inject", c.body, c.headers ?? { "content-type": "application/json" }, c.method ?? "POST");
      assert.equal(reply.status, c.status);
      assert.match(reply.text, c.message);
      const ok = await post("/inject", JSON.stringify(review(POD, podObject())));
      assert.equal(ok.json.response.allowed, true);
    });
  }
});

describe("validating webhook over HTTPS", () => {
  const policy = (kind: string, resource: string, spec: unknown, name = "x") =>
    review({ group: "policy.tether.io", version: "v1alpha1", kind, resource }, { apiVersion: "policy.tether.io/v1alpha1", kind, metadata: { name, namespace: "shop" }, spec }, { name });
  const route = (kind: string, spec: unknown) =>
    review({ group: "gateway.networking.k8s.io", version: "v1", kind, resource: kind.toLowerCase() + "s" }, { apiVersion: "gateway.networking.k8s.io/v1", kind, metadata: { name: "r", namespace: "shop" }, spec });

  it("rejects a bad CIDR naming the field", async () => {
    const reply = await post("/validate", JSON.stringify(policy("NetworkAuthentication", "networkauthentications", { networks: [{ cidr: "10.0.0.0/8" }, { cidr: "10.0.0.300/8" }] })));
    assert.equal(reply.json.response.allowed, false);
    assert.match(reply.json.response.status.message, /spec\.networks\[1\]\.cidr/);
  });

  it("rejects an unknown targetRef kind", async () => {
    const reply = await post(
      "/validate",
      JSON.stringify(policy("AuthorizationPolicy", "authorizationpolicies", { targetRef: { group: "apps", kind: "Deployment", name: "web" }, requiredAuthenticationRefs: [{ group: "policy.tether.io", kind: "MeshTLSAuthentication", name: "m" }] })),
    );
    assert.equal(reply.json.response.allowed, false);
    assert.match(reply.json.response.status.message, /spec\.targetRef/);
  });

  it("rejects an empty identity and a malformed wildcard", async () => {
    const reply = await post("/validate", JSON.stringify(policy("MeshTLSAuthentication", "meshtlsauthentications", { identities: ["", "web*.shop.serviceaccount.identity.tether.cluster.local"] })));
    assert.equal(reply.json.response.allowed, false);
    assert.match(reply.json.response.status.message, /spec\.identities\[0\]/);
    assert.match(reply.json.response.status.message, /spec\.identities\[1\]/);
  });

  it("accepts a Server whose port exists on the selected pods", async () => {
    const reply = await post("/validate", JSON.stringify(policy("Server", "servers", { podSelector: { matchLabels: { app: "web" } }, port: "grpc" })));
    assert.equal(reply.json.response.allowed, true);
    assert.equal(reply.json.response.warnings, undefined);
  });

  it("warns about a Server port that no selected pod has", async () => {
    const reply = await post("/validate", JSON.stringify(policy("Server", "servers", { podSelector: { matchLabels: { app: "web" } }, port: 5432 })));
    assert.equal(reply.json.response.allowed, true);
    assert.equal(reply.json.response.warnings.length, 1);
    assert.match(reply.json.response.warnings[0], /spec\.port 5432 is not a container port of 1 of the 1 selected pods \(web-1\)/);
  });

  it("warns about a Server that selects no pods", async () => {
    const reply = await post("/validate", JSON.stringify(policy("Server", "servers", { podSelector: { matchLabels: { app: "nothing" } }, port: 80 })));
    assert.equal(reply.json.response.allowed, true);
    assert.match(reply.json.response.warnings[0], /selects no pods/);
  });

  it("validates a GRPCRoute attached to a Server", async () => {
    const reply = await post(
      "/validate",
      JSON.stringify(route("GRPCRoute", { parentRefs: [{ group: "policy.tether.io", kind: "Server", name: "web" }], rules: [{ matches: [{ method: { type: "Exact", service: "pkg.Svc", method: "Get-It" } }] }] })),
    );
    assert.equal(reply.json.response.allowed, false);
    assert.match(reply.json.response.status.message, /method\.method/);
  });

  it("leaves routes of gateways alone", async () => {
    const reply = await post("/validate", JSON.stringify(route("HTTPRoute", { parentRefs: [{ name: "public-gateway" }], rules: [{ matches: [{ path: { type: "RegularExpression", value: "(" } }] }] })));
    assert.equal(reply.json.response.allowed, true);
  });

  it("allows deletes", async () => {
    const reply = await post("/validate", JSON.stringify({ ...policy("Server", "servers", {}), request: { ...policy("Server", "servers", {}).request, operation: "DELETE", object: null } }));
    assert.equal(reply.json.response.allowed, true);
  });

  it("denies kinds it does not handle", async () => {
    const reply = await post("/validate", JSON.stringify(review(POD, podObject())));
    assert.equal(reply.json.response.allowed, false);
    assert.match(reply.json.response.status.message, /does not handle core\/Pod/);
  });
});

describe("serving certificate", () => {
  it("hot-reloads a renewed certificate and refuses a broken one", async () => {
    const before = await post("/inject", JSON.stringify(review(POD, podObject())));
    const next = makeServingPair(dir, "second");
    ca = next.cert + ca; // trust both while the swap happens
    copyFileSync(next.certFile, join(dir, "tls.crt"));
    copyFileSync(next.keyFile, join(dir, "tls.key"));
    server.reloadCertificate();
    const afterSwap = await post("/inject", JSON.stringify(review(POD, podObject())));
    assert.notEqual(afterSwap.peerFingerprint, before.peerFingerprint);
    assert.equal(afterSwap.peerFingerprint, new X509Certificate(next.cert).fingerprint256);

    // A certificate whose key does not match: refused, the renewed one stays in service.
    const third = makeServingPair(dir, "third");
    copyFileSync(third.certFile, join(dir, "tls.crt"));
    assert.equal(server.reloadCertificate(), false);
    writeFileSync(join(dir, "tls.crt"), "not a certificate");
    assert.equal(server.reloadCertificate(), false);
    const still = await post("/inject", JSON.stringify(review(POD, podObject())));
    assert.equal(still.peerFingerprint, afterSwap.peerFingerprint);

    const metrics = await new Promise<string>((resolve, reject) => {
      get({ host: "127.0.0.1", port: server.adminPort, path: "/metrics" }, (res) => {
        let text = "";
        res.on("data", (c) => (text += c));
        res.on("end", () => resolve(text));
      }).on("error", reject);
    });
    assert.match(metrics, /tether_webhook_certificate_reloads_total\{result="ok"\} 1/);
    assert.match(metrics, /tether_webhook_certificate_reloads_total\{result="refused"\} 2/);
    assert.match(metrics, /tether_webhook_admissions_total\{webhook="inject",outcome="injected",reason="injected"\} \d+/);
    assert.match(metrics, /tether_webhook_bad_requests_total\{reason="too-large"\} 2/);
  });
});

describe("admin server of the injector", () => {
  it("is ready while the serving certificate is valid, and says why not once it expired", async () => {
    const own = mkdtempSync(join(tmpdir(), "tether-webhook-ready-"));
    const pair = makeServingPair(own, "ready", 1);
    const clock = new ManualClock(Date.now());
    const webhook = await startWebhookServer({
      settings: defaultInjectionSettings(),
      lookup,
      certFile: pair.certFile,
      keyFile: pair.keyFile,
      log: pino({ level: "silent" }),
      host: "127.0.0.1",
      port: 0,
      adminHost: "127.0.0.1",
      adminPort: 0,
      certPollMs: 60_000,
      clock,
    });
    try {
      const ready = () => fetch(`http://127.0.0.1:${webhook.adminPort}/ready`).then(async (r) => ({ status: r.status, text: await r.text() }));
      assert.deepEqual(await ready(), { status: 200, text: "ready\n" });
      clock.advance(3 * 24 * 3600 * 1000);
      const expired = await ready();
      assert.equal(expired.status, 503);
      assert.match(expired.text, /not ready: the serving certificate expired at /);
    } finally {
      await webhook.close();
      rmSync(own, { recursive: true, force: true });
    }
  });
});
