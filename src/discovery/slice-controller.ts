/**
 * What the Kubernetes endpoint-slice controller writes for a Service, as a pure function, so the
 * local mesh (which has no controller manager) and tests produce the same EndpointSlices a cluster
 * would: selected pods with an IP and not finished; `ready` from the pod's Ready condition (or
 * publishNotReadyAddresses) and false while terminating; `serving` and `terminating` set the same
 * way; named target ports resolved per pod, pods grouped by their resolved ports; at most 100
 * endpoints per slice. Slice names are stable so re-running yields MODIFIED, not churn.
 * `startSliceController` runs it against a ClusterState, as kube-controller-manager would.
 */
import type { Pod, Service, ServicePort } from "kubernetes-types/core/v1.js";
import type { Endpoint, EndpointPort, EndpointSlice } from "kubernetes-types/discovery/v1.js";
import type { Logger } from "pino";
import type { ClusterState } from "../cluster/types.js";
import { SERVICE_NAME_LABEL } from "./endpoints.js";

export const MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by";
export const MANAGED_BY = "endpointslice-controller.k8s.io";
export const MAX_ENDPOINTS_PER_SLICE = 100;

function selects(selector: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

function podReady(pod: Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

function resolvePort(pod: Pod, sp: ServicePort): number | undefined {
  const target = sp.targetPort ?? sp.port;
  if (typeof target === "number") return target;
  if (/^\d+$/.test(target)) return Number(target);
  const protocol = sp.protocol ?? "TCP";
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? []) if (p.name === target && (p.protocol ?? "TCP") === protocol) return p.containerPort;
  }
  return undefined;
}

function ipFamily(ip: string): "IPv4" | "IPv6" {
  return ip.includes(":") ? "IPv6" : "IPv4";
}

export function endpointSlicesFor(service: Service, pods: readonly Pod[]): EndpointSlice[] {
  const selector = service.spec?.selector;
  // Services without a selector have hand-managed slices; the controller leaves them alone.
  if (!selector || Object.keys(selector).length === 0) return [];
  const ns = service.metadata?.namespace ?? "default";
  const name = service.metadata?.name ?? "";
  const publishNotReady = service.spec?.publishNotReadyAddresses === true;

  const groups = new Map<string, { family: "IPv4" | "IPv6"; ports: EndpointPort[]; endpoints: Endpoint[] }>();
  const candidates = pods
    .filter((p) => (p.metadata?.namespace ?? "default") === ns && selects(selector, p.metadata?.labels))
    .sort((a, b) => (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? ""));
  for (const pod of candidates) {
    const phase = pod.status?.phase;
    const ip = pod.status?.podIP;
    if (!ip || phase === "Succeeded" || phase === "Failed") continue;
    const terminating = Boolean(pod.metadata?.deletionTimestamp);
    const serving = publishNotReady || podReady(pod);
    const ports: EndpointPort[] = [];
    for (const sp of service.spec?.ports ?? []) {
      const port = resolvePort(pod, sp);
      if (port !== undefined) ports.push({ name: sp.name ?? "", port, protocol: sp.protocol ?? "TCP" });
    }
    const family = ipFamily(ip);
    const groupKey = `${family}|${ports.map((p) => `${p.name}/${p.protocol}/${p.port}`).join(",")}`;
    let group = groups.get(groupKey);
    if (!group) groups.set(groupKey, (group = { family, ports, endpoints: [] }));
    const endpoint: Endpoint = {
      addresses: [ip],
      conditions: { ready: serving && !terminating, serving, terminating },
      targetRef: { kind: "Pod", namespace: ns, name: pod.metadata?.name ?? "", uid: pod.metadata?.uid },
    };
    if (pod.spec?.nodeName) endpoint.nodeName = pod.spec.nodeName;
    if (pod.spec?.hostname && pod.spec.subdomain === name) endpoint.hostname = pod.spec.hostname;
    group.endpoints.push(endpoint);
  }

  const slices: EndpointSlice[] = [];
  for (const [groupKey, group] of [...groups.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    for (let i = 0; i < group.endpoints.length; i += MAX_ENDPOINTS_PER_SLICE) {
      slices.push({
        apiVersion: "discovery.k8s.io/v1",
        kind: "EndpointSlice",
        metadata: {
          name: `${name}-${shortHash(groupKey)}-${i / MAX_ENDPOINTS_PER_SLICE}`,
          namespace: ns,
          labels: { [SERVICE_NAME_LABEL]: name, [MANAGED_BY_LABEL]: MANAGED_BY },
          ownerReferences: [
            { apiVersion: "v1", kind: "Service", name, uid: service.metadata?.uid ?? "", controller: true, blockOwnerDeletion: true },
          ],
        },
        addressType: group.family,
        ports: group.ports,
        endpoints: group.endpoints.slice(i, i + MAX_ENDPOINTS_PER_SLICE),
      });
    }
  }
  return slices;
}

/** FNV-1a, 8 hex digits: stable names without pulling in crypto. */
function shortHash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

/** Where a running controller writes: the local mesh applies to its cache, tests to a fixture. */
export interface SliceWriter {
  put(slice: EndpointSlice): void;
  delete(namespace: string, name: string): void;
}

interface SliceControllerOptions {
  cluster: ClusterState;
  writer: SliceWriter;
  logger?: Logger;
}

/**
 * Keeps every selector Service's EndpointSlices in line with its pods: after each Pod or Service
 * event, the event's namespace is recomputed (synchronously) and the differences written; slices
 * this controller manages whose Service or pod group is gone are deleted. For clusters without a
 * controller manager (the local mesh); in Kubernetes, kube-controller-manager does this.
 * Returns a stop function.
 */
export function startSliceController({ cluster, writer, logger }: SliceControllerOptions): () => void {
  const syncNamespace = (ns: string) => {
    try {
      const pods = cluster.list("Pod", ns);
      const wanted = new Map<string, EndpointSlice>();
      for (const svc of cluster.list("Service", ns)) for (const s of endpointSlicesFor(svc, pods)) wanted.set(s.metadata!.name!, s);
      for (const s of wanted.values()) writer.put(s);
      for (const old of cluster.list("EndpointSlice", ns)) {
        const labels = old.metadata?.labels;
        const managed = labels?.[MANAGED_BY_LABEL] === MANAGED_BY && labels[SERVICE_NAME_LABEL];
        if (managed && !wanted.has(old.metadata!.name!)) writer.delete(ns, old.metadata!.name!);
      }
    } catch (err) {
      // One malformed Pod or Service must not stop the others' slices; the next event retries.
      logger?.error({ namespace: ns, err: err instanceof Error ? err.message : String(err) }, "computing EndpointSlices failed");
    }
  };
  const namespaces = new Set<string>();
  for (const p of cluster.list("Pod")) namespaces.add(p.metadata?.namespace ?? "default");
  for (const s of cluster.list("Service")) namespaces.add(s.metadata?.namespace ?? "default");
  for (const ns of namespaces) syncNamespace(ns);
  const stops = [
    cluster.watch("Pod", (e) => syncNamespace(e.object.metadata?.namespace ?? "default")),
    cluster.watch("Service", (e) => syncNamespace(e.object.metadata?.namespace ?? "default")),
  ];
  return () => stops.forEach((stop) => stop());
}
