/**
 * `tether check` as a pure function: facts gathered from the cluster in, a checklist out. Every
 * item says what was found and, when it is not a pass, what to do.
 */
import { X509Certificate, createPrivateKey } from "node:crypto";
import { errorMessage } from "../../core/errors.js";

export type CheckStatus = "pass" | "warn" | "fail";

export interface CheckItem {
  section: string;
  name: string;
  status: CheckStatus;
  message: string;
}

export interface DeploymentFacts {
  name: string;
  found: boolean;
  desired: number;
  ready: number;
}

export interface MeshedPodFacts {
  namespace: string;
  name: string;
  proxyReady: boolean;
  /** notAfter of the proxy's certificate (seconds since epoch), when its metrics could be read. */
  certExpiry?: number;
  metricsError?: string;
  /** The pod has an IPv6 address but its tether-init did not install IPv6 rules. */
  ipv6Bypass?: boolean;
}

export interface ClusterFacts {
  now: number;
  /** Server version, or the error that kept the API out of reach. */
  api: { ok: true; version: { major: string; minor: string } } | { ok: false; error: string };
  certManager: boolean;
  trustManager: boolean;
  /** Plural names of the policy resources served by the API (from discovery). */
  crds: { kind: string; installed: boolean }[];
  controlPlaneNamespace: { name: string; exists: boolean };
  /** Secret tether-identity-issuer data, decoded (undefined when the Secret is absent). */
  issuerSecret?: { tlsCrt?: string; tlsKey?: string; caCrt?: string };
  /** The anchor bundle the proxies mount (ConfigMap tether-identity-trust-roots in the control-plane namespace). */
  anchorsBundle?: string;
  deployments: DeploymentFacts[];
  webhook?: {
    mutatingCaBundle?: string;
    validatingCaBundle?: string;
    servingCert?: string;
    serviceName: string;
    /** Result of GET /live through the API server's service proxy. */
    reachable: { ok: true } | { ok: false; error: string };
  };
  meshedPods: MeshedPodFacts[];
  /** Namespaces labelled for injection, and whether the trust-roots ConfigMap the proxies mount is there. */
  injectedNamespaces: { name: string; trustRoots: boolean }[];
}

const DAY = 86_400_000;
/** The anchor is long-lived: a week's notice is the least an operator needs to rotate it. */
export const ANCHOR_WARN_MS = 7 * DAY;
/** cert-manager renews the 48 h issuer 25 h before expiry; under 24 h left means renewal is overdue. */
export const ISSUER_WARN_MS = DAY;

function pemBlocks(pem: string | undefined): string[] {
  return pem?.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

function parseCerts(pem: string | undefined): X509Certificate[] {
  return pemBlocks(pem).map((b) => new X509Certificate(b));
}

function left(ms: number): string {
  if (ms <= 0) return "expired";
  const hours = ms / 3_600_000;
  return hours >= 48 ? `${Math.floor(hours / 24)} days left` : `${Math.floor(hours)} h ${Math.floor((ms % 3_600_000) / 60_000)} min left`;
}

function expiryStatus(notAfter: number, now: number, warnMs: number): CheckStatus {
  return notAfter <= now ? "fail" : notAfter - now < warnMs ? "warn" : "pass";
}

function subject(c: X509Certificate): string {
  return c.subject.replace(/\n/g, ", ");
}

function item(section: string, name: string, status: CheckStatus, message: string): CheckItem {
  return { section, name, status, message };
}

/** Issuer checks: present, parses, is a CA, key matches, valid now, chains to an anchor. */
function issuerChecks(f: ClusterFacts, anchors: X509Certificate[]): CheckItem[] {
  const S = "identity";
  const out: CheckItem[] = [];
  if (!f.issuerSecret) {
    return [item(S, "issuer Secret", "fail", `Secret tether-identity-issuer not found in namespace ${f.controlPlaneNamespace.name}: check the cert-manager Certificate tether-identity-issuer (kubectl describe certificate -n ${f.controlPlaneNamespace.name} tether-identity-issuer)`)];
  }
  let chain: X509Certificate[];
  try {
    chain = parseCerts(f.issuerSecret.tlsCrt);
  } catch (err) {
    return [item(S, "issuer certificate", "fail", `tls.crt of tether-identity-issuer does not parse: ${errorMessage(err)}`)];
  }
  const issuer = chain[0];
  if (!issuer) return [item(S, "issuer certificate", "fail", "tls.crt of tether-identity-issuer holds no certificate")];
  if (!issuer.ca) out.push(item(S, "issuer is a CA", "fail", `the issuer ${subject(issuer)} is not a CA certificate (basicConstraints CA:false); set isCA: true on the Certificate`));
  else out.push(item(S, "issuer is a CA", "pass", subject(issuer)));
  try {
    const matches = f.issuerSecret.tlsKey ? issuer.checkPrivateKey(createPrivateKey(f.issuerSecret.tlsKey)) : false;
    out.push(
      matches
        ? item(S, "issuer key", "pass", "tls.key matches the issuer certificate")
        : item(S, "issuer key", "fail", "tls.key is missing or is not the key of the issuer certificate; delete the Secret so cert-manager issues a new pair"),
    );
  } catch (err) {
    out.push(item(S, "issuer key", "fail", `tls.key does not parse: ${errorMessage(err)}`));
  }
  const notAfter = Date.parse(issuer.validTo);
  const st = expiryStatus(notAfter, f.now, ISSUER_WARN_MS);
  out.push(
    item(
      S,
      "issuer validity",
      Date.parse(issuer.validFrom) > f.now ? "fail" : st,
      Date.parse(issuer.validFrom) > f.now
        ? `the issuer is not valid before ${issuer.validFrom} (clock skew?)`
        : st === "pass"
          ? `valid until ${new Date(notAfter).toISOString()} (${left(notAfter - f.now)})`
          : `the issuer expires ${new Date(notAfter).toISOString()} (${left(notAfter - f.now)}); cert-manager should have renewed it: kubectl describe certificate -n ${f.controlPlaneNamespace.name} tether-identity-issuer`,
    ),
  );
  if (anchors.length === 0) {
    out.push(item(S, "issuer chains to an anchor", "fail", "no trust anchor found to check the issuer against (ca.crt of the issuer Secret and the trust-roots ConfigMap are empty)"));
  } else {
    const parent = anchors.find((a) => issuer.checkIssued(a) && issuer.verify(a.publicKey));
    out.push(
      parent
        ? item(S, "issuer chains to an anchor", "pass", `signed by ${subject(parent)}`)
        : item(S, "issuer chains to an anchor", "fail", `the issuer ${subject(issuer)} is not signed by any trust anchor (${anchors.map(subject).join("; ")}); proxies would refuse every certificate it signs. Re-issue it from the anchor's Issuer or add its root to the anchor bundle`),
    );
  }
  return out;
}

function anchorChecks(f: ClusterFacts, anchors: X509Certificate[]): CheckItem[] {
  const S = "identity";
  if (anchors.length === 0) return [];
  return anchors.map((a) => {
    const notAfter = Date.parse(a.validTo);
    const st = expiryStatus(notAfter, f.now, ANCHOR_WARN_MS);
    const name = `trust anchor ${subject(a)}`;
    if (!a.ca) return item(S, name, "fail", "the trust anchor is not a CA certificate");
    if (st === "fail") return item(S, name, "fail", `the trust anchor expired at ${new Date(notAfter).toISOString()}: every workload certificate fails to verify. Rotate the anchor (docs/install.md, "Rotating the trust anchor")`);
    if (st === "warn") return item(S, name, "warn", `the trust anchor expires ${new Date(notAfter).toISOString()} (${left(notAfter - f.now)}); rotate it now (docs/install.md, "Rotating the trust anchor")`);
    return item(S, name, "pass", `valid until ${new Date(notAfter).toISOString()} (${left(notAfter - f.now)})`);
  });
}

function webhookChecks(f: ClusterFacts): CheckItem[] {
  const S = "webhook";
  const w = f.webhook;
  if (!w) return [item(S, "webhook configurations", "fail", "the MutatingWebhookConfiguration tether-proxy-injector is missing: pods are not injected. Re-apply `tether install`")];
  const out: CheckItem[] = [];
  let serving: X509Certificate | undefined;
  try {
    serving = parseCerts(w.servingCert)[0];
  } catch {
    serving = undefined;
  }
  if (!serving) {
    out.push(item(S, "serving certificate", "fail", "Secret tether-injector-tls has no usable tls.crt; check the cert-manager Certificate tether-injector"));
  } else {
    const notAfter = Date.parse(serving.validTo);
    const st = expiryStatus(notAfter, f.now, ANCHOR_WARN_MS);
    const names = serving.subjectAltName ?? "";
    if (st === "fail") out.push(item(S, "serving certificate", "fail", `the webhook certificate expired at ${serving.validTo}: the API server refuses to call the webhook`));
    else if (!names.includes(`DNS:${w.serviceName}`)) out.push(item(S, "serving certificate", "fail", `the webhook certificate does not name ${w.serviceName} (SANs: ${names})`));
    else out.push(item(S, "serving certificate", st, `${w.serviceName}, ${left(notAfter - f.now)}`));
    for (const [which, bundle] of [["mutating", w.mutatingCaBundle], ["validating", w.validatingCaBundle]] as const) {
      let roots: X509Certificate[] = [];
      try {
        roots = parseCerts(bundle ? Buffer.from(bundle, "base64").toString("utf8") : undefined);
      } catch {
        roots = [];
      }
      const trusted = roots.some((r) => serving!.checkIssued(r) && serving!.verify(r.publicKey));
      out.push(
        trusted
          ? item(S, `${which} webhook caBundle`, "pass", "the API server trusts the webhook's certificate")
          : item(S, `${which} webhook caBundle`, "fail", `the caBundle of the ${which} webhook configuration does not verify the serving certificate: is cert-manager's cainjector running? (annotation cert-manager.io/inject-ca-from)`),
      );
    }
  }
  out.push(
    w.reachable.ok
      ? item(S, "webhook reachable", "pass", `${w.serviceName} answers`)
      : item(S, "webhook reachable", "fail", `${w.serviceName} does not answer (${w.reachable.error}); with failurePolicy Fail, pods of meshed namespaces cannot be created until it does`),
  );
  return out;
}

export function runChecks(f: ClusterFacts, options: { pre?: boolean } = {}): CheckItem[] {
  const out: CheckItem[] = [];
  if (!f.api.ok) return [item("kubernetes", "API reachable", "fail", `cannot reach the Kubernetes API: ${f.api.error}; check your kubeconfig (--kubeconfig, KUBECONFIG)`)];
  const minor = Number.parseInt(f.api.version.minor, 10);
  out.push(item("kubernetes", "API reachable", "pass", `Kubernetes ${f.api.version.major}.${f.api.version.minor}`));
  out.push(
    f.api.version.major === "1" && minor >= 27
      ? item("kubernetes", "version", "pass", "1.27 or later")
      : item("kubernetes", "version", "fail", `Kubernetes ${f.api.version.major}.${f.api.version.minor} is too old: tether needs 1.27 or later`),
  );
  out.push(
    f.certManager
      ? item("prerequisites", "cert-manager", "pass", "cert-manager.io/v1 Certificates and Issuers are served")
      : item("prerequisites", "cert-manager", "fail", "cert-manager is not installed (no cert-manager.io/v1 API): install it first (docs/install.md)"),
  );
  out.push(
    f.trustManager
      ? item("prerequisites", "trust-manager", "pass", "trust.cert-manager.io Bundles are served")
      : item("prerequisites", "trust-manager", "warn", "trust-manager is not installed: publish the trust anchor ConfigMap yourself (docs/install.md, \"Without trust-manager\") and install with --no-trust-manager"),
  );
  if (options.pre) {
    if (f.controlPlaneNamespace.exists) {
      out.push(item("prerequisites", "control-plane namespace", "warn", `namespace ${f.controlPlaneNamespace.name} already exists: tether is installed or was not fully removed`));
    } else {
      out.push(item("prerequisites", "control-plane namespace", "pass", `namespace ${f.controlPlaneNamespace.name} is free`));
    }
    return out;
  }
  for (const c of f.crds) {
    out.push(
      c.installed
        ? item("resources", `CRD ${c.kind}`, "pass", "installed")
        : item("resources", `CRD ${c.kind}`, "fail", `the CustomResourceDefinition for ${c.kind} (policy.tether.io/v1alpha1) is not installed: re-apply \`tether install\``),
    );
  }
  if (!f.controlPlaneNamespace.exists) {
    out.push(item("control plane", "namespace", "fail", `namespace ${f.controlPlaneNamespace.name} does not exist: tether is not installed (tether install | kubectl apply -f -)`));
    return out;
  }
  for (const d of f.deployments) {
    if (!d.found) out.push(item("control plane", d.name, "fail", `Deployment ${d.name} not found: re-apply \`tether install\``));
    else if (d.ready === 0) out.push(item("control plane", d.name, "fail", `no ready replica of ${d.desired}: kubectl -n ${f.controlPlaneNamespace.name} describe deployment ${d.name}`));
    else if (d.ready < d.desired) out.push(item("control plane", d.name, "warn", `${d.ready} of ${d.desired} replicas ready`));
    else out.push(item("control plane", d.name, "pass", `${d.ready}/${d.desired} ready`));
  }
  let anchors: X509Certificate[] = [];
  const anchorProblems: CheckItem[] = [];
  for (const [where, pem] of [["ca.crt of tether-identity-issuer", f.issuerSecret?.caCrt], ["ConfigMap tether-identity-trust-roots", f.anchorsBundle]] as const) {
    try {
      anchors.push(...parseCerts(pem));
    } catch (err) {
      anchorProblems.push(item("identity", "trust anchors", "fail", `${where} does not parse: ${errorMessage(err)}`));
    }
  }
  anchors = anchors.filter((a, i) => anchors.findIndex((b) => b.fingerprint256 === a.fingerprint256) === i);
  if (f.anchorsBundle === undefined) {
    anchorProblems.push(item("identity", "trust-roots ConfigMap", "fail", `ConfigMap tether-identity-trust-roots is missing in ${f.controlPlaneNamespace.name}: proxies cannot verify peers. Check the trust-manager Bundle or create it (docs/install.md)`));
  }
  out.push(...anchorProblems, ...anchorChecks(f, anchors), ...issuerChecks(f, anchors));
  out.push(...webhookChecks(f));
  for (const n of f.injectedNamespaces) {
    out.push(
      n.trustRoots
        ? item("data plane", `namespace ${n.name}`, "pass", "injection enabled, trust roots published")
        : item("data plane", `namespace ${n.name}`, "fail", `injection is enabled but ConfigMap tether-identity-trust-roots is missing: its meshed pods cannot start (the volume is not found). Check the trust-manager Bundle or create it (docs/install.md, "Without trust-manager")`),
    );
  }
  if (f.meshedPods.length === 0) out.push(item("data plane", "meshed pods", "pass", "no meshed pods yet"));
  for (const p of f.meshedPods) {
    const name = `${p.namespace}/${p.name}`;
    if (p.ipv6Bypass) out.push(item("data plane", name, "fail", "the pod has an IPv6 address but its traffic is intercepted for IPv4 only: IPv6 connections bypass the proxy and its authorization. Install with --ipv6 and restart the pod"));
    else if (!p.proxyReady) out.push(item("data plane", name, "fail", "the tether-proxy container is not ready: kubectl logs -c tether-proxy " + `-n ${p.namespace} ${p.name}`));
    else if (p.certExpiry === undefined) out.push(item("data plane", name, "warn", `proxy ready, but its certificate could not be read (${p.metricsError ?? "no expiry metric"})`));
    else if (p.certExpiry * 1000 <= f.now) out.push(item("data plane", name, "fail", `the proxy's certificate expired at ${new Date(p.certExpiry * 1000).toISOString()}: is tether-identity reachable?`));
    else out.push(item("data plane", name, "pass", `proxy ready, certificate ${left(p.certExpiry * 1000 - f.now)}`));
  }
  return out;
}

const MARK: Record<CheckStatus, string> = { pass: "√", warn: "‼", fail: "×" };

export function formatChecklist(items: CheckItem[]): string {
  const lines: string[] = [];
  let section = "";
  for (const i of items) {
    if (i.section !== section) {
      section = i.section;
      lines.push("", section, "-".repeat(section.length));
    }
    lines.push(`${MARK[i.status]} ${i.name}: ${i.message}`);
  }
  const count = (s: CheckStatus) => items.filter((i) => i.status === s).length;
  lines.push("", `Status: ${count("fail") ? "FAILED" : "OK"} (${count("pass")} passed, ${count("warn")} warnings, ${count("fail")} failed)`);
  return lines.join("\n").trimStart() + "\n";
}

export function checksFailed(items: CheckItem[]): boolean {
  return items.some((i) => i.status === "fail");
}
