import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { checksFailed, formatChecklist, runChecks, type CheckItem, type ClusterFacts } from "../../src/cli/install/checks.js";
import { makeCa, makeServing, type TestCa } from "./pki.js";

const NOW = Date.UTC(2026, 5, 1, 12);
const h = (n: number) => new Date(NOW + n * 3_600_000);
const d = (n: number) => h(24 * n);

let anchor: TestCa;
let issuer: TestCa;
let webhookCa: TestCa;
let serving: TestCa;
let otherAnchor: TestCa;

before(async () => {
  anchor = await makeCa("root.identity.tether.cluster.local", d(-30), d(3650));
  issuer = await makeCa("identity.tether.cluster.local", h(-1), h(47), anchor);
  webhookCa = await makeCa("tether-webhook-ca", d(-1), d(3650));
  serving = await makeServing("tether-injector.tether.svc", d(-1), d(29), webhookCa);
  otherAnchor = await makeCa("someone-else", d(-1), d(365));
});

function healthy(): ClusterFacts {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  return {
    now: NOW,
    api: { ok: true, version: { major: "1", minor: "30" } },
    certManager: true,
    trustManager: true,
    crds: ["Server", "AuthorizationPolicy", "MeshTLSAuthentication", "NetworkAuthentication"].map((kind) => ({ kind, installed: true })),
    controlPlaneNamespace: { name: "tether", exists: true },
    issuerSecret: { tlsCrt: issuer.pem, tlsKey: issuer.keyPem, caCrt: anchor.pem },
    anchorsBundle: anchor.pem,
    deployments: ["tether-identity", "tether-destination", "tether-injector"].map((name) => ({ name, found: true, desired: 2, ready: 2 })),
    webhook: { mutatingCaBundle: b64(webhookCa.pem), validatingCaBundle: b64(webhookCa.pem), servingCert: serving.pem, serviceName: "tether-injector.tether.svc", reachable: { ok: true } },
    meshedPods: [{ namespace: "shop", name: "web-1", proxyReady: true, certExpiry: (NOW + 20 * 3_600_000) / 1000 }],
    injectedNamespaces: [{ name: "shop", trustRoots: true }],
  };
}

function only(items: CheckItem[], status: "warn" | "fail"): CheckItem[] {
  return items.filter((i) => i.status === status);
}

describe("tether check: the checklist", () => {
  it("passes a healthy cluster", () => {
    const items = runChecks(healthy());
    assert.deepEqual(only(items, "fail"), []);
    assert.deepEqual(only(items, "warn"), []);
    assert.equal(checksFailed(items), false);
    assert.ok(items.some((i) => i.name === "issuer chains to an anchor" && i.status === "pass"));
    assert.match(formatChecklist(items), /Status: OK \(\d+ passed, 0 warnings, 0 failed\)/);
  });

  const cases: { name: string; mutate: (f: ClusterFacts) => Promise<void> | void; status: "warn" | "fail"; item: string | RegExp; message: RegExp }[] = [
    { name: "API unreachable", mutate: (f) => void (f.api = { ok: false, error: "connect ECONNREFUSED" }), status: "fail", item: "API reachable", message: /ECONNREFUSED.*kubeconfig/ },
    { name: "old Kubernetes", mutate: (f) => void (f.api = { ok: true, version: { major: "1", minor: "24" } }), status: "fail", item: "version", message: /1\.24 is too old/ },
    { name: "cert-manager missing", mutate: (f) => void (f.certManager = false), status: "fail", item: "cert-manager", message: /not installed/ },
    { name: "trust-manager missing", mutate: (f) => void (f.trustManager = false), status: "warn", item: "trust-manager", message: /--no-trust-manager/ },
    { name: "missing CRD", mutate: (f) => void (f.crds[2]!.installed = false), status: "fail", item: "CRD MeshTLSAuthentication", message: /CustomResourceDefinition for MeshTLSAuthentication.*not installed/ },
    { name: "control plane not ready", mutate: (f) => void (f.deployments[1]!.ready = 0), status: "fail", item: "tether-destination", message: /no ready replica/ },
    { name: "control plane degraded", mutate: (f) => void (f.deployments[0]!.ready = 1), status: "warn", item: "tether-identity", message: /1 of 2/ },
    { name: "issuer Secret missing", mutate: (f) => void (f.issuerSecret = undefined), status: "fail", item: "issuer Secret", message: /tether-identity-issuer not found/ },
    {
      name: "broken issuer: not a CA",
      mutate: async (f) => {
        const notCa = await makeCa("identity.tether.cluster.local", h(-1), h(47), anchor, false);
        f.issuerSecret = { tlsCrt: notCa.pem, tlsKey: notCa.keyPem, caCrt: anchor.pem };
      },
      status: "fail",
      item: "issuer is a CA",
      message: /not a CA certificate/,
    },
    { name: "broken issuer: key mismatch", mutate: (f) => void (f.issuerSecret!.tlsKey = otherAnchor.keyPem), status: "fail", item: "issuer key", message: /not the key of the issuer/ },
    {
      name: "broken issuer: from another anchor",
      mutate: async (f) => {
        const foreign = await makeCa("identity.tether.cluster.local", h(-1), h(47), otherAnchor);
        f.issuerSecret = { tlsCrt: foreign.pem, tlsKey: foreign.keyPem, caCrt: anchor.pem };
      },
      status: "fail",
      item: "issuer chains to an anchor",
      message: /not signed by any trust anchor/,
    },
    { name: "broken issuer: garbage", mutate: (f) => void (f.issuerSecret!.tlsCrt = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), status: "fail", item: "issuer certificate", message: /does not parse/ },
    {
      name: "issuer renewal overdue",
      mutate: async (f) => {
        const late = await makeCa("identity.tether.cluster.local", h(-40), h(8), anchor);
        f.issuerSecret = { tlsCrt: late.pem, tlsKey: late.keyPem, caCrt: anchor.pem };
      },
      status: "warn",
      item: "issuer validity",
      message: /8 h 0 min left.*should have renewed/,
    },
    {
      name: "expired anchor",
      mutate: async (f) => {
        const old = await makeCa("root.identity.tether.cluster.local", d(-400), d(-2));
        const iss = await makeCa("identity.tether.cluster.local", h(-1), h(47), old);
        f.issuerSecret = { tlsCrt: iss.pem, tlsKey: iss.keyPem, caCrt: old.pem };
        f.anchorsBundle = old.pem;
      },
      status: "fail",
      item: /^trust anchor CN=root/,
      message: /trust anchor expired at .*Rotate the anchor/,
    },
    {
      name: "anchor expiring within 7 days",
      mutate: async (f) => {
        const soon = await makeCa("root.identity.tether.cluster.local", d(-400), d(3));
        const iss = await makeCa("identity.tether.cluster.local", h(-1), h(47), soon);
        f.issuerSecret = { tlsCrt: iss.pem, tlsKey: iss.keyPem, caCrt: soon.pem };
        f.anchorsBundle = soon.pem;
      },
      status: "warn",
      item: /^trust anchor/,
      message: /3 days left/,
    },
    { name: "trust-roots ConfigMap missing", mutate: (f) => void (f.anchorsBundle = undefined), status: "fail", item: "trust-roots ConfigMap", message: /tether-identity-trust-roots is missing/ },
    { name: "webhook configuration missing", mutate: (f) => void (f.webhook = undefined), status: "fail", item: "webhook configurations", message: /pods are not injected/ },
    { name: "webhook caBundle not injected", mutate: (f) => void (f.webhook!.mutatingCaBundle = undefined), status: "fail", item: "mutating webhook caBundle", message: /cainjector/ },
    { name: "webhook caBundle from another CA", mutate: (f) => void (f.webhook!.validatingCaBundle = Buffer.from(otherAnchor.pem).toString("base64")), status: "fail", item: "validating webhook caBundle", message: /does not verify/ },
    { name: "webhook unreachable", mutate: (f) => void (f.webhook!.reachable = { ok: false, error: "HTTP 503 no endpoints" }), status: "fail", item: "webhook reachable", message: /no endpoints.*failurePolicy Fail/ },
    {
      name: "webhook certificate for another name",
      mutate: async (f) => void (f.webhook!.servingCert = (await makeServing("other.svc", d(-1), d(20), webhookCa)).pem),
      status: "fail",
      item: "serving certificate",
      message: /does not name tether-injector\.tether\.svc/,
    },
    { name: "meshed namespace without trust roots", mutate: (f) => void (f.injectedNamespaces[0]!.trustRoots = false), status: "fail", item: "namespace shop", message: /tether-identity-trust-roots is missing/ },
    { name: "dual-stack pod intercepted for IPv4 only", mutate: (f) => void (f.meshedPods[0]!.ipv6Bypass = true), status: "fail", item: "shop/web-1", message: /IPv6 connections bypass the proxy/ },
    { name: "proxy not ready", mutate: (f) => void (f.meshedPods[0]!.proxyReady = false), status: "fail", item: "shop/web-1", message: /not ready.*kubectl logs/ },
    { name: "proxy certificate expired", mutate: (f) => void (f.meshedPods[0]!.certExpiry = (NOW - 1000) / 1000), status: "fail", item: "shop/web-1", message: /certificate expired/ },
    { name: "proxy metrics unreadable", mutate: (f) => void Object.assign(f.meshedPods[0]!, { certExpiry: undefined, metricsError: "HTTP 502" }), status: "warn", item: "shop/web-1", message: /HTTP 502/ },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const facts = healthy();
      await c.mutate(facts);
      const items = runChecks(facts);
      const bad = only(items, c.status);
      const hit = bad.find((i) => (typeof c.item === "string" ? i.name === c.item : c.item.test(i.name)));
      assert.ok(hit, `expected a ${c.status} for ${c.item}; got ${JSON.stringify(items.filter((i) => i.status !== "pass"))}`);
      assert.match(hit.message, c.message);
      assert.equal(checksFailed(items), c.status === "fail" || items.some((i) => i.status === "fail"));
      if (c.status === "warn") assert.deepEqual(only(items, "fail"), [], "a warning case fails nothing");
    });
  }

  it("--pre checks only the prerequisites", () => {
    const facts = healthy();
    facts.controlPlaneNamespace.exists = false;
    facts.crds.forEach((c) => (c.installed = false));
    const items = runChecks(facts, { pre: true });
    assert.equal(checksFailed(items), false);
    assert.ok(!items.some((i) => i.name.startsWith("CRD")));
    assert.ok(items.some((i) => i.name === "control-plane namespace" && i.status === "pass"));
  });

  it("prints clear marks and a failing status line", () => {
    const facts = healthy();
    facts.crds[0]!.installed = false;
    const text = formatChecklist(runChecks(facts));
    assert.match(text, /^× CRD Server: /m);
    assert.match(text, /^√ cert-manager: /m);
    assert.match(text, /Status: FAILED \(\d+ passed, 0 warnings, 1 failed\)/);
  });
});
