/**
 * Where the proxies are. A target is a pod and the URL of its proxy's admin server (:4191).
 * Three lists: a fixed one, a JSON file (what `tether local up` writes), and Kubernetes (pods
 * with a tether-proxy container, read through the API server's pod proxy).
 */
import { readFile } from "node:fs/promises";
import type { KubeConfig } from "@kubernetes/client-node";
import { PROXY_ADMIN_PORT } from "../api/mesh.js";
import { kubeRequest, statusMessage } from "../cluster/kube-http.js";
import { DEFAULT_TRUST_DOMAIN, toDnsName, workloadIdentity } from "../identity/names.js";
import { VizError } from "./errors.js";
import type { PodRef } from "./window.js";

export interface ProxyTarget extends PodRef {
  /** Base URL of the admin server, e.g. http://10.247.0.5:4191 (metrics at /metrics). */
  adminUrl: string;
}

export interface TargetList {
  describe(): string;
  list(): Promise<ProxyTarget[]>;
  /** The Prometheus text of one target's /metrics. */
  fetchMetrics(target: ProxyTarget, timeoutMs: number): Promise<string>;
}

export async function fetchAdminMetrics(target: ProxyTarget, timeoutMs: number): Promise<string> {
  const url = `${target.adminUrl.replace(/\/$/, "")}/metrics`;
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${url} answered ${res.status}: ${text.slice(0, 120).trim()}`);
  return text;
}

export function staticTargets(targets: readonly ProxyTarget[]): TargetList {
  return {
    describe: () => `${targets.length} proxies`,
    list: async () => [...targets],
    fetchMetrics: fetchAdminMetrics,
  };
}

const FIELDS = ["namespace", "pod", "workload", "adminUrl"] as const;

/**
 * Validates the targets file's content: `{"targets": [{namespace, pod, workload, adminUrl,
 * identity?}]}` (a bare array is accepted too). Every problem names the entry and the field.
 */
export function parseTargets(json: unknown, source: string): ProxyTarget[] {
  const list = Array.isArray(json) ? json : (json as { targets?: unknown } | null)?.targets;
  if (!Array.isArray(list)) {
    throw new VizError("VIZ_TARGETS_INVALID", `${source}: expected {"targets": [...]} with one entry per proxy (see docs/visibility.md)`);
  }
  return list.map((entry: unknown, i) => {
    const e = (entry ?? {}) as Record<string, unknown>;
    for (const field of FIELDS) {
      if (typeof e[field] !== "string" || e[field] === "") {
        throw new VizError("VIZ_TARGETS_INVALID", `${source}: targets[${i}].${field} must be a non-empty string`);
      }
    }
    try {
      new URL(e.adminUrl as string);
    } catch {
      throw new VizError("VIZ_TARGETS_INVALID", `${source}: targets[${i}].adminUrl "${String(e.adminUrl)}" is not a URL (e.g. http://10.247.0.5:4191)`);
    }
    const target: ProxyTarget = {
      namespace: e.namespace as string,
      pod: e.pod as string,
      workload: e.workload as string,
      adminUrl: e.adminUrl as string,
    };
    if (typeof e.identity === "string" && e.identity) target.identity = e.identity;
    return target;
  });
}

/** A targets file, re-read on every list so pods the local runner adds or removes show up. */
export function fileTargets(path: string): TargetList {
  return {
    describe: () => `proxies listed in ${path}`,
    async list() {
      let text: string;
      try {
        text = await readFile(path, "utf8");
      } catch (err) {
        throw new VizError("VIZ_TARGETS_UNREADABLE", `cannot read the targets file ${path}: ${(err as Error).message}; is the local mesh up (tether local up)?`, { cause: err });
      }
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (err) {
        throw new VizError("VIZ_TARGETS_INVALID", `${path} is not JSON: ${(err as Error).message}`, { cause: err });
      }
      return parseTargets(json, path);
    },
    fetchMetrics: fetchAdminMetrics,
  };
}

interface PodJson {
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string>; ownerReferences?: { kind?: string; name?: string }[] };
  spec?: { serviceAccountName?: string; containers?: { name?: string }[] };
  status?: { phase?: string };
}

export const PROXY_CONTAINER = "tether-proxy";

/** The workload a pod belongs to: its Deployment (ReplicaSet name minus the template hash), else its owner, else itself. */
export function podWorkload(pod: PodJson): string {
  const name = pod.metadata?.name ?? "";
  const owner = pod.metadata?.ownerReferences?.[0];
  const hash = pod.metadata?.labels?.["pod-template-hash"];
  if (owner?.kind === "ReplicaSet" && owner.name) {
    return hash && owner.name.endsWith(`-${hash}`) ? owner.name.slice(0, -hash.length - 1) : owner.name;
  }
  return owner?.name ?? name;
}

/** Running pods with a tether-proxy container; metrics through /api/v1/namespaces/NS/pods/NAME:4191/proxy/metrics. */
export function kubernetesTargets(kc: KubeConfig, options: { namespace?: string; trustDomain?: string } = {}): TargetList {
  const ns = options.namespace;
  return {
    describe: () => `meshed pods ${ns ? `in namespace ${ns}` : "in all namespaces"} (Kubernetes API)`,
    async list() {
      const path = ns ? `/api/v1/namespaces/${encodeURIComponent(ns)}/pods` : "/api/v1/pods";
      const res = await kubeRequest(kc, "GET", path, { timeoutMs: 15_000 });
      if (res.status !== 200) {
        throw new VizError("VIZ_KUBERNETES_LIST_FAILED", `listing pods (${path}) answered ${res.status}: ${statusMessage(res.body)}; check the kubeconfig's permissions (pods: list)`);
      }
      const items = ((res.body as { items?: PodJson[] }).items ?? []).filter(
        (p) => p.status?.phase === "Running" && p.spec?.containers?.some((c) => c.name === PROXY_CONTAINER),
      );
      return items.map((p) => {
        const namespace = p.metadata?.namespace ?? "default";
        const pod = p.metadata?.name ?? "";
        const sa = p.spec?.serviceAccountName ?? "default";
        return {
          namespace,
          pod,
          workload: podWorkload(p),
          identity: toDnsName(workloadIdentity(sa, namespace, options.trustDomain ?? DEFAULT_TRUST_DOMAIN)),
          adminUrl: `kubernetes:/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}:${PROXY_ADMIN_PORT}/proxy`,
        };
      });
    },
    async fetchMetrics(target, timeoutMs) {
      const path = `${target.adminUrl.replace(/^kubernetes:/, "")}/metrics`;
      const res = await kubeRequest(kc, "GET", path, { timeoutMs });
      if (res.status !== 200) throw new Error(`pod proxy ${path} answered ${res.status}: ${statusMessage(res.body)} (needs pods/proxy: get)`);
      return typeof res.body === "string" ? res.body : JSON.stringify(res.body);
    },
  };
}
