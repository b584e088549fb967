import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Container, PodSpec } from "kubernetes-types/core/v1.js";
import { defaultInjectionSettings } from "../../src/webhook/settings.js";
import { defaultInstallSettings, installObjects, type InstallSettings, type K8sObject } from "../../src/cli/install/render.js";
import { loadCrds, parseYamlObjects, toYamlDocuments } from "../../src/cli/install/manifests.js";
import { injectObject } from "../../src/cli/install/inject-yaml.js";
import { settingsFromFlags, uninstallObjects } from "../../src/cli/install.js";
import { validateManifest } from "./validate.js";

const crds = loadCrds();
const variants: [string, InstallSettings][] = [
  ["defaults", defaultInstallSettings(defaultInjectionSettings())],
  ["--ha", settingsFromFlags({ trustDomain: "prod.example.com", defaultInboundPolicy: "deny", identityLifetime: "12h", ha: true, trustManager: true })],
  ["--no-trust-manager --external-trust-anchor", settingsFromFlags({ trustDomain: "cluster.local", defaultInboundPolicy: "all-authenticated", identityLifetime: "24h", trustManager: false, externalTrustAnchor: true })],
];

function find(objects: K8sObject[], kind: string, name: string): any {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `${kind} ${name} is rendered`);
  return o;
}

function podSpecs(objects: K8sObject[]): [string, PodSpec][] {
  return objects.filter((o) => o.kind === "Deployment").map((o) => [o.metadata.name, (o as any).spec.template.spec as PodSpec]);
}

describe("rendered manifests validate against the Kubernetes schemas", () => {
  for (const [name, settings] of variants) {
    it(name, () => {
      // Through YAML and back, as kubectl would read it.
      const objects = parseYamlObjects(toYamlDocuments(installObjects(settings, crds)), "install") as K8sObject[];
      assert.ok(objects.length > 25);
      // The CRDs have their own test below (the API server's structural-schema rules).
      for (const o of objects) if (o.kind !== "CustomResourceDefinition") validateManifest(o);
    });
  }

  it("the validator is not a rubber stamp", () => {
    const deployment = structuredClone(find(installObjects(variants[0]![1], crds), "Deployment", "tether-identity"));
    deployment.spec.replicas = "two";
    assert.throws(() => validateManifest(deployment), /Deployment tether-identity does not validate/);
    const cert = structuredClone(find(installObjects(variants[0]![1], crds), "Certificate", "tether-identity-issuer"));
    delete cert.spec.issuerRef;
    assert.throws(() => validateManifest(cert), /issuerRef/);
    assert.throws(() => validateManifest({ apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" } }), /no schema/);
  });

  it("an injected workload of every kind still validates", () => {
    const settings = defaultInjectionSettings();
    const template = { metadata: { labels: { app: "w" } }, spec: { containers: [{ name: "app", image: "w:1", ports: [{ containerPort: 8080 }] }] } };
    const workloads = [
      { apiVersion: "v1", kind: "Pod", metadata: { name: "p" }, spec: template.spec },
      { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "d" }, spec: { selector: { matchLabels: { app: "w" } }, template } },
      { apiVersion: "apps/v1", kind: "StatefulSet", metadata: { name: "s" }, spec: { serviceName: "s", selector: { matchLabels: { app: "w" } }, template } },
      { apiVersion: "apps/v1", kind: "DaemonSet", metadata: { name: "ds" }, spec: { selector: { matchLabels: { app: "w" } }, template } },
      { apiVersion: "batch/v1", kind: "Job", metadata: { name: "j" }, spec: { template: { ...template, spec: { ...template.spec, restartPolicy: "Never" } } } },
      { apiVersion: "batch/v1", kind: "CronJob", metadata: { name: "c" }, spec: { schedule: "* * * * *", jobTemplate: { spec: { template: { ...template, spec: { ...template.spec, restartPolicy: "OnFailure" } } } } } },
    ];
    for (const w of workloads) {
      const out = injectObject(w, settings);
      assert.notDeepEqual(out, w, `${w.kind} was injected`);
      validateManifest(out);
    }
  });
});

/** The API server's structural-schema rules (apiextensions validation) that a generic schema does not know. */
function structuralProblems(node: any, path: string, out: string[]): string[] {
  if (!node || typeof node !== "object") return out;
  if (node.properties && node.additionalProperties !== undefined) {
    out.push(`${path}: additionalProperties and properties are mutually exclusive (unknown fields are pruned anyway)`);
  }
  if (!node.type && !node["x-kubernetes-int-or-string"] && !node["x-kubernetes-preserve-unknown-fields"] && !node.anyOf && !node.oneOf && !node.allOf) {
    out.push(`${path}: type is required in a structural schema`);
  }
  for (const [k, v] of Object.entries(node.properties ?? {})) structuralProblems(v, `${path}.properties.${k}`, out);
  if (node.items) structuralProblems(node.items, `${path}.items`, out);
  if (typeof node.additionalProperties === "object") structuralProblems(node.additionalProperties, `${path}.additionalProperties`, out);
  return out;
}

describe("CRDs are accepted by the API server", () => {
  for (const crd of crds as any[]) {
    it(crd.metadata.name, () => {
      const problems = (crd.spec.versions as any[]).flatMap((v) => structuralProblems(v.schema?.openAPIV3Schema, `${v.name}.openAPIV3Schema`, []));
      assert.deepEqual(problems, [], `deploy/crds: ${crd.metadata.name} would be rejected by kube-apiserver`);
      validateManifest(crd);
    });
  }
});

describe("what the manifests promise", () => {
  const objects = installObjects(variants[0]![1], crds);
  const ns = "tether";

  it("includes every CRD, each with an OpenAPI schema per served version", () => {
    const names = objects.filter((o) => o.kind === "CustomResourceDefinition").map((o) => o.metadata.name).sort();
    assert.deepEqual(names, ["authorizationpolicies.policy.tether.io", "meshtlsauthentications.policy.tether.io", "networkauthentications.policy.tether.io", "servers.policy.tether.io"]);
    for (const crd of objects.filter((o) => o.kind === "CustomResourceDefinition") as any[]) {
      for (const v of crd.spec.versions) assert.ok(v.schema?.openAPIV3Schema?.properties?.spec, `${crd.metadata.name} ${v.name} has a spec schema`);
    }
  });

  it("runs every control-plane container non-root, read-only, without privileges, with probes and resources", () => {
    for (const [name, spec] of podSpecs(objects)) {
      assert.equal(spec.securityContext?.runAsNonRoot, true, name);
      assert.equal(spec.securityContext?.seccompProfile?.type, "RuntimeDefault", name);
      for (const c of spec.containers as Container[]) {
        assert.equal(c.securityContext?.readOnlyRootFilesystem, true, name);
        assert.equal(c.securityContext?.allowPrivilegeEscalation, false, name);
        assert.deepEqual(c.securityContext?.capabilities, { drop: ["ALL"] }, name);
        assert.ok(c.readinessProbe?.httpGet && c.livenessProbe?.httpGet, `${name} has probes`);
        assert.ok(c.resources?.requests && c.resources.limits, `${name} has requests and limits`);
        const admin = c.ports?.find((p) => p.name === "admin")?.containerPort;
        assert.equal(c.readinessProbe?.httpGet?.port, admin, `${name} probes its admin port`);
        // Every mount refers to a volume of the pod.
        for (const m of c.volumeMounts ?? []) assert.ok(spec.volumes?.some((v) => v.name === m.name), `${name} volume ${m.name}`);
      }
    }
  });

  it("gives each Deployment a PodDisruptionBudget, a Service that selects it, and named target ports that exist", () => {
    for (const [name, spec] of podSpecs(objects)) {
      const deployment = find(objects, "Deployment", name);
      const labels = deployment.spec.template.metadata.labels;
      const pdb = find(objects, "PodDisruptionBudget", name);
      assert.deepEqual(pdb.spec.selector.matchLabels, deployment.spec.selector.matchLabels);
      const svc = find(objects, "Service", name);
      for (const [k, v] of Object.entries(svc.spec.selector)) assert.equal(labels[k], v, `${name} Service selects its pods`);
      const portNames = spec.containers.flatMap((c) => (c.ports ?? []).map((p) => p.name));
      for (const p of svc.spec.ports) assert.ok(portNames.includes(p.targetPort), `${name} target port ${p.targetPort}`);
      assert.ok(objects.some((o) => o.kind === "ServiceAccount" && o.metadata.name === spec.serviceAccountName), `${name} service account exists`);
      assert.ok(deployment.spec.template.spec.affinity.podAntiAffinity, `${name} spreads replicas`);
    }
  });

  it("--ha runs two replicas of each component", () => {
    const ha = installObjects(variants[1]![1], crds);
    for (const name of ["tether-identity", "tether-destination", "tether-injector"]) {
      assert.equal(find(objects, "Deployment", name).spec.replicas, 1);
      assert.equal(find(ha, "Deployment", name).spec.replicas, 2);
    }
  });

  it("grants least privilege: the CA only creates TokenReviews, the controller only reads (and writes policy status)", () => {
    const identity = find(objects, "ClusterRole", "tether-identity");
    assert.deepEqual(identity.rules, [{ apiGroups: ["authentication.k8s.io"], resources: ["tokenreviews"], verbs: ["create"] }]);
    const destination = find(objects, "ClusterRole", "tether-destination");
    for (const rule of destination.rules) {
      const writes = rule.verbs.filter((v: string) => !["get", "list", "watch"].includes(v));
      if (writes.length) assert.ok(rule.resources.every((r: string) => r.endsWith("/status")), `only status is written: ${JSON.stringify(rule)}`);
      assert.ok(!rule.resources.includes("secrets"), "the controller never reads Secrets");
    }
    for (const role of objects.filter((o) => o.kind === "ClusterRole") as any[]) {
      for (const rule of role.rules) {
        assert.ok(![...rule.verbs, ...rule.resources, ...rule.apiGroups].includes("*"), `${role.metadata.name} has no wildcards`);
      }
      const binding = find(objects, "ClusterRoleBinding", role.metadata.name);
      assert.deepEqual(binding.subjects, [{ kind: "ServiceAccount", name: role.metadata.name, namespace: ns }]);
    }
  });

  it("renders the cert-manager chain: anchor -> issuer (48h, renew 25h, ECDSA P-256) and the webhook certificate", () => {
    const issuer = find(objects, "Certificate", "tether-identity-issuer");
    assert.equal(issuer.metadata.namespace, ns);
    assert.equal(issuer.spec.isCA, true);
    assert.equal(issuer.spec.secretName, "tether-identity-issuer");
    assert.equal(issuer.spec.duration, "48h");
    assert.equal(issuer.spec.renewBefore, "25h");
    assert.deepEqual([issuer.spec.privateKey.algorithm, issuer.spec.privateKey.size], ["ECDSA", 256]);
    const anchorIssuer = find(objects, "Issuer", issuer.spec.issuerRef.name);
    find(objects, "Certificate", anchorIssuer.spec.ca.secretName);
    assert.ok(!objects.some((o) => o.kind === "ClusterIssuer"), "no ClusterIssuer can mint mesh CAs for other namespaces");
    const webhookCert = find(objects, "Certificate", "tether-injector");
    assert.ok(webhookCert.spec.dnsNames.includes("tether-injector.tether.svc"));
    const injector = find(objects, "Deployment", "tether-injector");
    assert.ok(injector.spec.template.spec.volumes.some((v: any) => v.secret?.secretName === webhookCert.spec.secretName));
    const identity = find(objects, "Deployment", "tether-identity");
    assert.ok(identity.spec.template.spec.volumes.some((v: any) => v.secret?.secretName === "tether-identity-issuer"));
    const bundle = find(objects, "Bundle", "tether-identity-trust-roots");
    assert.equal(bundle.spec.target.configMap.key, "ca-bundle.crt");

    const external = installObjects(variants[2]![1], crds);
    assert.ok(!external.some((o) => o.kind === "Certificate" && o.metadata.name === "tether-trust-anchor"));
    assert.ok(!external.some((o) => o.kind === "Bundle"));
    find(external, "Issuer", "tether-trust-anchor");
  });

  it("configures the webhooks: label selector, failurePolicy Fail, cainjector, the injector's Service", () => {
    const mutating = find(objects, "MutatingWebhookConfiguration", "tether-proxy-injector");
    assert.equal(mutating.metadata.annotations["cert-manager.io/inject-ca-from"], `${ns}/tether-injector`);
    const hook = mutating.webhooks[0];
    assert.equal(hook.failurePolicy, "Fail");
    assert.deepEqual(hook.namespaceSelector.matchExpressions[0], { key: "tether.io/inject", operator: "In", values: ["enabled"] });
    assert.deepEqual(hook.clientConfig.service, { name: "tether-injector", namespace: ns, path: "/inject", port: 443 });
    assert.deepEqual(hook.rules[0].resources, ["pods"]);
    const validating = find(objects, "ValidatingWebhookConfiguration", "tether-policy-validator");
    assert.equal(validating.webhooks[0].failurePolicy, "Fail");
    assert.equal(validating.webhooks[0].clientConfig.service.path, "/validate");
    const svc = find(objects, "Service", "tether-injector");
    assert.equal(svc.spec.ports[0].port, 443);
  });

  it("hands the injector the install settings through its config file", () => {
    const config = find(installObjects(variants[1]![1], crds), "ConfigMap", "tether-config");
    const parsed = JSON.parse(config.data["config.json"]);
    assert.equal(parsed.injection.trustDomain, "prod.example.com");
    assert.equal(parsed.injection.defaultInboundPolicy, "deny");
    assert.equal(parsed.identityLifetime, "12h");
  });

  it("uninstall removes the webhooks first and the namespace and CRDs last", () => {
    const order = uninstallObjects(objects, false).map((o) => o.kind);
    assert.equal(order[0], "ValidatingWebhookConfiguration");
    assert.equal(order[1], "MutatingWebhookConfiguration");
    assert.equal(order[order.length - 1], "Namespace");
    assert.ok(order.includes("CustomResourceDefinition"));
    assert.ok(!uninstallObjects(objects, true).some((o) => o.kind === "CustomResourceDefinition"));
  });

  it("refuses bad install flags with a message", () => {
    assert.throws(() => settingsFromFlags({ trustDomain: "Bad_Domain", defaultInboundPolicy: "deny", identityLifetime: "24h", trustManager: true }), /trust domain/);
    assert.throws(() => settingsFromFlags({ trustDomain: "cluster.local", defaultInboundPolicy: "deny", identityLifetime: "one day", trustManager: true }), /--identity-lifetime/);
  });
});

describe("secrets stay out of the manifests", () => {
  it("no certificate is embedded in the manifests (keys and anchors come from cert-manager)", () => {
    const text = toYamlDocuments(installObjects(variants[0]![1], crds));
    assert.ok(!text.includes("BEGIN CERTIFICATE") && !text.includes("PRIVATE KEY"));
  });
});
