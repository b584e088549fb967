/** Gathers what `tether check` judges, through the Kubernetes API (raw JSON requests). */
import type { KubeConfig } from "@kubernetes/client-node";
import { kubeRequest, statusMessage } from "../../cluster/kube-http.js";
import { errorMessage } from "../../core/errors.js";
import { INIT_CONTAINER_NAME, INJECT_LABEL, PROXY_ADMIN_PORT, PROXY_CONTAINER_NAME } from "../../api/mesh.js";
import { POLICY_RESOURCE_KINDS, RESOURCE_API } from "../../cluster/types.js";
import { CONTROL_PLANE_NS_LABEL, TRUST_ANCHORS_CONFIGMAP, TRUST_ANCHORS_KEY } from "../../webhook/settings.js";
import type { ClusterFacts, MeshedPodFacts } from "./checks.js";
import { IDENTITY_ISSUER_SECRET, INJECTOR_TLS_SECRET, MUTATING_WEBHOOK, VALIDATING_WEBHOOK } from "./render.js";

export const POLICY_CRDS = POLICY_RESOURCE_KINDS.map((kind) => ({ kind, plural: RESOURCE_API[kind].plural }));

const DEPLOYMENTS = ["tether-identity", "tether-destination", "tether-injector"];
const CERT_METRIC = "tether_proxy_identity_cert_expiration_timestamp_seconds";
/** Pods whose proxy metrics are read at once (each is one request through the API server). */
const POD_CONCURRENCY = 8;

type Json = Record<string, any>;

export async function gatherFacts(kc: KubeConfig, options: { namespace: string; now: number; pre?: boolean; timeoutMs?: number }): Promise<ClusterFacts> {
  const ns = options.namespace;
  const get = async (path: string): Promise<Json | undefined> => {
    const res = await kubeRequest(kc, "GET", path, { timeoutMs: options.timeoutMs ?? 10_000 });
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw new Error(`GET ${path}: HTTP ${res.status} ${statusMessage(res.body)}`);
    return res.body as Json;
  };
  const facts: ClusterFacts = {
    now: options.now,
    api: { ok: false, error: "not checked" },
    certManager: false,
    trustManager: false,
    crds: [],
    controlPlaneNamespace: { name: ns, exists: false },
    deployments: [],
    meshedPods: [],
    injectedNamespaces: [],
  };
  try {
    const v = await get("/version");
    facts.api = { ok: true, version: { major: String(v?.major ?? ""), minor: String(v?.minor ?? "").replace(/\D+$/, "") } };
  } catch (err) {
    facts.api = { ok: false, error: errorMessage(err) };
    return facts;
  }
  const served = async (groupVersion: string) => new Set<string>(((await get(`/apis/${groupVersion}`))?.resources ?? []).map((r: Json) => r.name));
  const cm = await served("cert-manager.io/v1");
  facts.certManager = cm.has("certificates") && cm.has("issuers");
  facts.trustManager = (await served("trust.cert-manager.io/v1alpha1")).has("bundles");
  const policy = await served("policy.tether.io/v1alpha1");
  facts.crds = POLICY_CRDS.map((c) => ({ kind: c.kind, installed: policy.has(c.plural) }));
  facts.controlPlaneNamespace.exists = (await get(`/api/v1/namespaces/${ns}`)) !== undefined;
  if (options.pre || !facts.controlPlaneNamespace.exists) return facts;

  const decode = (b64: unknown) => (typeof b64 === "string" ? Buffer.from(b64, "base64").toString("utf8") : undefined);
  const issuer = await get(`/api/v1/namespaces/${ns}/secrets/${IDENTITY_ISSUER_SECRET}`);
  if (issuer) facts.issuerSecret = { tlsCrt: decode(issuer.data?.["tls.crt"]), tlsKey: decode(issuer.data?.["tls.key"]), caCrt: decode(issuer.data?.["ca.crt"]) };
  const roots = await get(`/api/v1/namespaces/${ns}/configmaps/${TRUST_ANCHORS_CONFIGMAP}`);
  if (roots) facts.anchorsBundle = String(roots.data?.[TRUST_ANCHORS_KEY] ?? "");

  for (const name of DEPLOYMENTS) {
    const d = await get(`/apis/apps/v1/namespaces/${ns}/deployments/${name}`);
    facts.deployments.push({ name, found: d !== undefined, desired: Number(d?.spec?.replicas ?? 1), ready: Number(d?.status?.readyReplicas ?? 0) });
  }

  const mutating = await get(`/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${MUTATING_WEBHOOK}`);
  if (mutating) {
    const validating = await get(`/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/${VALIDATING_WEBHOOK}`);
    const tls = await get(`/api/v1/namespaces/${ns}/secrets/${INJECTOR_TLS_SECRET}`);
    let reachable: { ok: true } | { ok: false; error: string };
    try {
      const res = await kubeRequest(kc, "GET", `/api/v1/namespaces/${ns}/services/https:tether-injector:443/proxy/live`, { timeoutMs: 5_000 });
      reachable = res.status === 200 ? { ok: true } : { ok: false, error: `HTTP ${res.status} ${statusMessage(res.body)}` };
    } catch (err) {
      reachable = { ok: false, error: errorMessage(err) };
    }
    facts.webhook = {
      mutatingCaBundle: mutating.webhooks?.[0]?.clientConfig?.caBundle,
      validatingCaBundle: validating?.webhooks?.[0]?.clientConfig?.caBundle,
      servingCert: decode(tls?.data?.["tls.crt"]),
      serviceName: `tether-injector.${ns}.svc`,
      reachable,
    };
  }

  const namespaces: Json[] = ((await get("/api/v1/namespaces"))?.items ?? []).filter((n: Json) => n.metadata?.labels?.[INJECT_LABEL] === "enabled");
  for (const n of namespaces) {
    const name = String(n.metadata.name);
    facts.injectedNamespaces.push({ name, trustRoots: (await get(`/api/v1/namespaces/${name}/configmaps/${TRUST_ANCHORS_CONFIGMAP}`)) !== undefined });
  }

  const selector = encodeURIComponent(`${CONTROL_PLANE_NS_LABEL}=${ns}`);
  const pods: Json[] = ((await get(`/api/v1/pods?labelSelector=${selector}`))?.items ?? []).filter(
    (p: Json) => p.metadata?.labels?.[CONTROL_PLANE_NS_LABEL] === ns,
  );
  const queue = [...pods];
  const worker = async () => {
    for (let p = queue.shift(); p; p = queue.shift()) facts.meshedPods.push(await podFacts(kc, p));
  };
  await Promise.all(Array.from({ length: POD_CONCURRENCY }, worker));
  facts.meshedPods.sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  return facts;
}

async function podFacts(kc: KubeConfig, pod: Json): Promise<MeshedPodFacts> {
  const namespace = String(pod.metadata?.namespace ?? "");
  const name = String(pod.metadata?.name ?? "");
  const status = (pod.status?.containerStatuses ?? []).find((c: Json) => c.name === PROXY_CONTAINER_NAME);
  const facts: MeshedPodFacts = { namespace, name, proxyReady: status?.ready === true };
  const init = (pod.spec?.initContainers ?? []).find((c: Json) => c.name === INIT_CONTAINER_NAME);
  const hasIpv6 = (pod.status?.podIPs ?? []).some((a: Json) => String(a.ip ?? "").includes(":"));
  if (hasIpv6 && init && !(init.args ?? []).includes("--ipv6")) facts.ipv6Bypass = true;
  if (!facts.proxyReady) return facts;
  try {
    const res = await kubeRequest(kc, "GET", `/api/v1/namespaces/${namespace}/pods/${name}:${PROXY_ADMIN_PORT}/proxy/metrics`, { timeoutMs: 5_000 });
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    const m = new RegExp(`^${CERT_METRIC}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, "m").exec(String(res.body));
    if (m) facts.certExpiry = Number(m[1]);
    else facts.metricsError = `no ${CERT_METRIC} metric`;
  } catch (err) {
    facts.metricsError = errorMessage(err);
  }
  return facts;
}
