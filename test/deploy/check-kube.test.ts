import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { loadKubeConfig } from "../../src/cluster/kubernetes.js";
import { gatherFacts } from "../../src/cli/install/cluster-facts.js";
import { runChecks, type CheckItem } from "../../src/cli/install/checks.js";
import { startKubeApiFixture, type KubeApiFixture } from "../support/kube-api-fixture.js";
import { makeCa, makeServing, type TestCa } from "./pki.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const now = Date.now();
const h = (n: number) => new Date(now + n * 3_600_000);
const b64 = (s: string) => Buffer.from(s).toString("base64");

let fx: KubeApiFixture;
let kubeconfig: string;
let anchor: TestCa;
let issuer: TestCa;

function issuerSecret(cert: TestCa, ca: TestCa) {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "tether-identity-issuer", namespace: "tether" },
    type: "kubernetes.io/tls",
    data: { "tls.crt": b64(cert.pem), "tls.key": b64(cert.keyPem), "ca.crt": b64(ca.pem) },
  };
}

function roots(ca: TestCa) {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "tether-identity-trust-roots", namespace: "tether" }, data: { "ca-bundle.crt": ca.pem } };
}

before(async () => {
  fx = await startKubeApiFixture({
    resources: [
      { group: "cert-manager.io", version: "v1", kind: "Certificate", plural: "certificates", namespaced: true, custom: true },
      { group: "cert-manager.io", version: "v1", kind: "Issuer", plural: "issuers", namespaced: true, custom: true },
      { group: "trust.cert-manager.io", version: "v1alpha1", kind: "Bundle", plural: "bundles", namespaced: false, custom: true },
      { group: "admissionregistration.k8s.io", version: "v1", kind: "MutatingWebhookConfiguration", plural: "mutatingwebhookconfigurations", namespaced: false },
      { group: "admissionregistration.k8s.io", version: "v1", kind: "ValidatingWebhookConfiguration", plural: "validatingwebhookconfigurations", namespaced: false },
    ],
  });
  kubeconfig = await fx.kubeconfigPath();
  anchor = await makeCa("root.identity.tether.cluster.local", h(-24), h(24 * 3650));
  issuer = await makeCa("identity.tether.cluster.local", h(-1), h(47), anchor);
  const webhookCa = await makeCa("tether-webhook-ca", h(-24), h(24 * 3650));
  const serving = await makeServing("tether-injector.tether.svc", h(-1), h(24 * 30), webhookCa);

  fx.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: "tether" } });
  fx.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: "shop", labels: { "tether.io/inject": "enabled" } } });
  fx.apply(issuerSecret(issuer, anchor));
  fx.apply(roots(anchor));
  fx.apply({ ...roots(anchor), metadata: { name: "tether-identity-trust-roots", namespace: "shop" } });
  fx.apply({ apiVersion: "v1", kind: "Secret", metadata: { name: "tether-injector-tls", namespace: "tether" }, data: { "tls.crt": b64(serving.pem), "tls.key": b64(serving.keyPem) } });
  for (const name of ["tether-identity", "tether-destination", "tether-injector"]) {
    fx.apply({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name, namespace: "tether" }, spec: { replicas: 2 }, status: { replicas: 2, readyReplicas: 2 } });
  }
  const hook = (kind: string, name: string) => ({
    apiVersion: "admissionregistration.k8s.io/v1",
    kind,
    metadata: { name },
    webhooks: [{ name: "x.tether.io", clientConfig: { caBundle: b64(webhookCa.pem), service: { name: "tether-injector", namespace: "tether" } } }],
  });
  fx.apply(hook("MutatingWebhookConfiguration", "tether-proxy-injector"));
  fx.apply(hook("ValidatingWebhookConfiguration", "tether-policy-validator"));
  fx.apply({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "web-1", namespace: "shop", labels: { app: "web", "tether.io/control-plane-ns": "tether" } },
    spec: { containers: [{ name: "tether-proxy", image: "t" }, { name: "app", image: "a" }] },
    status: { containerStatuses: [{ name: "tether-proxy", ready: true }, { name: "app", ready: true }] },
  });
  // A dual-stack meshed pod whose init container installed IPv4 rules only.
  fx.apply({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "dual-1", namespace: "shop", labels: { app: "dual", "tether.io/control-plane-ns": "tether" } },
    spec: { initContainers: [{ name: "tether-init", image: "t", args: ["proxy-init", "--proxy-uid", "2102"] }], containers: [{ name: "tether-proxy", image: "t" }] },
    status: { podIPs: [{ ip: "10.0.0.7" }, { ip: "fd00::7" }], containerStatuses: [{ name: "tether-proxy", ready: false }] },
  });
  // An unmeshed pod: not part of the data-plane checks.
  fx.apply({ apiVersion: "v1", kind: "Pod", metadata: { name: "legacy-1", namespace: "shop", labels: { app: "legacy" } }, spec: { containers: [{ name: "app", image: "a" }] } });

  // The API server's service and pod proxies, which `tether check` goes through.
  fx.route("GET", "/api/v1/namespaces/tether/services/https:tether-injector:443/proxy/live", (_req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("ok\n");
  });
  fx.route("GET", "/api/v1/namespaces/shop/pods/web-1:4191/proxy/metrics", (_req, res) => {
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
    res.end(`# TYPE tether_proxy_identity_cert_expiration_timestamp_seconds gauge\ntether_proxy_identity_cert_expiration_timestamp_seconds ${Math.floor(now / 1000) + 20 * 3600}\n`);
  });
});

after(async () => {
  await fx?.close();
});

async function check(): Promise<CheckItem[]> {
  const facts = await gatherFacts(loadKubeConfig({ kubeconfig }), { namespace: "tether", now: Date.now() });
  return runChecks(facts);
}

function failures(items: CheckItem[]): CheckItem[] {
  return items.filter((i) => i.status === "fail");
}

describe("tether check against the Kubernetes API fixture", () => {
  it("passes a healthy installation (but for the dual-stack pod without IPv6 interception)", async () => {
    const items = await check();
    assert.deepEqual(failures(items).map((i) => i.name), ["shop/dual-1"]);
    assert.match(failures(items)[0]!.message, /IPv6 connections bypass the proxy/);
    fx.remove("v1", "Pod", "shop", "dual-1");
    assert.deepEqual(failures(await check()), []);
    assert.ok(items.some((i) => i.name === "shop/web-1" && i.status === "pass" && /certificate 19 h/.test(i.message)), JSON.stringify(items));
    assert.ok(!items.some((i) => i.name === "shop/legacy-1"));
    assert.ok(items.some((i) => i.name === "webhook reachable" && i.status === "pass"));
    assert.ok(items.some((i) => i.name === "namespace shop" && i.status === "pass"));
    assert.ok(!items.some((i) => i.name === "namespace tether"), "only namespaces labelled for injection");
  });

  it("reports a broken issuer", async () => {
    const stranger = await makeCa("stranger-root", h(-1), h(24 * 365));
    const foreign = await makeCa("identity.tether.cluster.local", h(-1), h(47), stranger);
    fx.apply(issuerSecret(foreign, anchor));
    try {
      const bad = failures(await check());
      assert.equal(bad.length, 1, JSON.stringify(bad));
      assert.equal(bad[0]!.name, "issuer chains to an anchor");
      assert.match(bad[0]!.message, /not signed by any trust anchor/);
    } finally {
      fx.apply(issuerSecret(issuer, anchor));
    }
  });

  it("reports an expired anchor", async () => {
    const old = await makeCa("root.identity.tether.cluster.local", h(-24 * 400), h(-24));
    const iss = await makeCa("identity.tether.cluster.local", h(-1), h(47), old);
    fx.apply(issuerSecret(iss, old));
    fx.apply(roots(old));
    try {
      const bad = failures(await check());
      assert.equal(bad.length, 1, JSON.stringify(bad));
      assert.match(bad[0]!.name, /^trust anchor CN=root\.identity\.tether\.cluster\.local/);
      assert.match(bad[0]!.message, /trust anchor expired at/);
    } finally {
      fx.apply(issuerSecret(issuer, anchor));
      fx.apply(roots(anchor));
    }
  });

  it("reports a missing CRD, and the CLI exits non-zero with the checklist", async () => {
    fx.removeResource("Server");
    const bad = failures(await check());
    assert.equal(bad.length, 1, JSON.stringify(bad));
    assert.equal(bad[0]!.name, "CRD Server");
    assert.match(bad[0]!.message, /CustomResourceDefinition for Server \(policy\.tether\.io\/v1alpha1\) is not installed/);

    const result = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      execFile(process.execPath, ["bin/tether.mjs", "check", "--kubeconfig", kubeconfig], { cwd: ROOT, timeout: 60_000 }, (err, stdout) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout }),
      );
    });
    assert.equal(result.code, 1);
    assert.match(result.stdout, /^× CRD Server: /m);
    assert.match(result.stdout, /^√ cert-manager: /m);
    assert.match(result.stdout, /Status: FAILED/);
  });
});
