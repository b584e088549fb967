/**
 * What discovery answers for one target, computed from cluster objects: the endpoint set of a
 * Service port (from its EndpointSlices, as the endpoint-slice controller wrote them) or of a
 * pod IP. Pure: the caller passes lookups into its cache and receives skipped endpoints as reports.
 */
import type { Namespace, Pod, Service, ServicePort } from "kubernetes-types/core/v1.js";
import type { EndpointSlice } from "kubernetes-types/discovery/v1.js";
import type { WeightedAddr } from "../api/index.js";
import { hostPort } from "../api/address.js";
import { OPAQUE_PORTS_ANNOTATION, PROXY_CONTAINER_NAME } from "../api/mesh.js";
import { toDnsName, workloadIdentity } from "../identity/names.js";
import { errorMessage } from "../core/errors.js";
import { listProblem, namedContainerPorts, parsePortList, portSet } from "../api/ports.js";

/** Every endpoint gets the same weight; the proxy's balancer decides by latency. */
export const DEFAULT_WEIGHT = 10_000;

export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

/** One answer: whether the target exists, and its endpoints keyed by `address:port`. */
export interface Snapshot {
  exists: boolean;
  endpoints: ReadonlyMap<string, WeightedAddr>;
}

export type SkipReason = "pod_not_found" | "bad_identity" | "bad_annotation" | "unsupported_address";

export interface Lookups {
  pod(namespace: string, name: string): Pod | undefined;
  namespace(name: string): Namespace | undefined;
  trustDomain: string;
  /** Called for each endpoint left out (or annotation ignored), so the caller logs and counts it. */
  report(reason: SkipReason, detail: string): void;
}

export const NOT_FOUND: Snapshot = { exists: false, endpoints: new Map() };

export function isMeshed(pod: Pod): boolean {
  const spec = pod.spec;
  // Native sidecars (init containers with restartPolicy Always) count too.
  return Boolean(
    spec?.containers?.some((c) => c.name === PROXY_CONTAINER_NAME) ||
      spec?.initContainers?.some((c) => c.name === PROXY_CONTAINER_NAME),
  );
}

function annotationHasPort(
  annotations: Record<string, string> | undefined,
  port: number,
  namedPorts: ReadonlyMap<string, number>,
  where: string,
  lookups: Lookups,
): boolean | undefined {
  const text = annotations?.[OPAQUE_PORTS_ANNOTATION];
  if (text === undefined) return undefined;
  const list = parsePortList(text);
  const problem = listProblem(list);
  if (problem) lookups.report("bad_annotation", `${where}: ${OPAQUE_PORTS_ANNOTATION} entries ignored: ${problem}`);
  return portSet(list, namedPorts).has(port);
}

/** The pod's own annotation wins over its namespace's, as in the injector (webhook/inject.ts). */
function podPortIsOpaque(pod: Pod, port: number, lookups: Lookups): boolean {
  const ns = pod.metadata?.namespace ?? "default";
  const named = namedContainerPorts(pod.spec?.containers);
  const own = annotationHasPort(pod.metadata?.annotations, port, named, `pod ${ns}/${pod.metadata?.name}`, lookups);
  if (own !== undefined) return own;
  return annotationHasPort(lookups.namespace(ns)?.metadata?.annotations, port, named, `namespace ${ns}`, lookups) ?? false;
}

/** Labels for metrics and diagnostics: pod, namespace, service account and the owning workload. */
function podLabels(pod: Pod): Record<string, string> {
  const meta = pod.metadata ?? {};
  const labels: Record<string, string> = {
    namespace: meta.namespace ?? "default",
    pod: meta.name ?? "",
    serviceaccount: pod.spec?.serviceAccountName ?? "default",
  };
  const owner = meta.ownerReferences?.find((r) => r.controller) ?? meta.ownerReferences?.[0];
  if (owner) {
    labels[owner.kind.toLowerCase()] = owner.name;
    const hash = meta.labels?.["pod-template-hash"];
    if (owner.kind === "ReplicaSet" && hash && owner.name.endsWith(`-${hash}`)) {
      labels.deployment = owner.name.slice(0, -hash.length - 1);
    }
  }
  return labels;
}

/**
 * The endpoint a pod serves at `address:port`, or undefined when it must be left out: a meshed
 * pod whose identity cannot be named is dropped rather than sent plaintext (fail closed).
 */
export function podEndpoint(pod: Pod, address: string, port: number, lookups: Lookups): WeightedAddr | undefined {
  const ns = pod.metadata?.namespace ?? "default";
  const meshed = isMeshed(pod);
  let identity = "";
  if (meshed) {
    try {
      identity = toDnsName(workloadIdentity(pod.spec?.serviceAccountName ?? "default", ns, lookups.trustDomain));
    } catch (err) {
      lookups.report("bad_identity", `pod ${ns}/${pod.metadata?.name}: ${errorMessage(err)}`);
      return undefined;
    }
  }
  const protocolHint = podPortIsOpaque(pod, port, lookups) ? "opaque" : meshed ? "h2" : "";
  return { address, port, weight: DEFAULT_WEIGHT, identity, protocolHint, labels: podLabels(pod) };
}

function isTerminal(pod: Pod): boolean {
  const phase = pod.status?.phase;
  return phase === "Succeeded" || phase === "Failed";
}

/** Answer for `podIP:port`: that one pod, ready or not (the client chose it), unless it has finished. */
export function podSnapshot(pod: Pod | undefined, ip: string, port: number, lookups: Lookups): Snapshot {
  if (!pod || isTerminal(pod)) return NOT_FOUND;
  const endpoint = podEndpoint(pod, ip, port, lookups);
  return { exists: true, endpoints: endpoint ? new Map([[hostPort(ip, port), endpoint]]) : new Map() };
}

export function isHeadless(service: Service): boolean {
  return service.spec?.clusterIP === "None";
}

/** The TCP Service port numbered `port`; mesh traffic is TCP only. */
export function findServicePort(service: Service, port: number): ServicePort | undefined {
  return service.spec?.ports?.find((p) => p.port === port && (p.protocol ?? "TCP") === "TCP");
}

/** The port an endpoint of `slice` serves `servicePort` on, or undefined when the slice does not carry it. */
function slicePortFor(slice: EndpointSlice, servicePort: ServicePort | undefined, requested: number): number | undefined {
  // A headless Service without ports: clients connect to whatever port they like.
  if (!servicePort) return requested;
  const wanted = servicePort.name ?? "";
  const match = slice.ports?.find((p) => (p.name ?? "") === wanted && (p.protocol ?? "TCP") === "TCP");
  if (!match) return undefined;
  if (match.port != null) return match.port;
  return typeof servicePort.targetPort === "number" ? servicePort.targetPort : servicePort.port;
}

export interface ServiceQuery {
  service: Service | undefined;
  port: number;
  /** Only the endpoint with this hostname (`host.svc.ns.svc.DOMAIN`, headless Services). */
  hostname?: string;
  slices: readonly EndpointSlice[];
}

/**
 * The endpoints of a Service port. Not ready and terminating endpoints are left out (no new
 * requests go to them). A port the Service does not declare does not exist, except on headless
 * Services, which pass any port through to their pods.
 */
export function serviceSnapshot(query: ServiceQuery, lookups: Lookups): Snapshot {
  const { service, port } = query;
  if (!service) return NOT_FOUND;
  const servicePort = findServicePort(service, port);
  if (!servicePort && !isHeadless(service)) return NOT_FOUND;
  const serviceNs = service.metadata?.namespace ?? "default";
  const serviceName = service.metadata?.name ?? "";
  const serviceOpaque =
    annotationHasPort(service.metadata?.annotations, port, new Map(servicePort?.name ? [[servicePort.name, port]] : []), `service ${serviceNs}/${serviceName}`, lookups) ??
    false;

  const endpoints = new Map<string, WeightedAddr>();
  const slices = [...query.slices].sort((a, b) => (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? ""));
  for (const slice of slices) {
    if (slice.addressType !== "IPv4" && slice.addressType !== "IPv6") {
      lookups.report("unsupported_address", `EndpointSlice ${serviceNs}/${slice.metadata?.name}: addressType ${slice.addressType} is not routable by the proxy`);
      continue;
    }
    const targetPort = slicePortFor(slice, servicePort, port);
    if (targetPort === undefined) continue;
    for (const ep of slice.endpoints ?? []) {
      const c = ep.conditions ?? {};
      // Kubernetes: a nil `ready` means ready; terminating endpoints take no new requests.
      if (c.ready === false || c.terminating === true) continue;
      if (query.hostname !== undefined && ep.hostname !== query.hostname) continue;
      const address = ep.addresses?.[0];
      if (!address) continue;
      const key = hostPort(address, targetPort);
      if (endpoints.has(key)) continue;
      const endpoint = sliceEndpoint(ep.targetRef, serviceNs, address, targetPort, lookups);
      if (!endpoint) continue;
      endpoint.labels.service = serviceName;
      if (ep.zone) endpoint.labels.zone = ep.zone;
      if (serviceOpaque) endpoint.protocolHint = "opaque";
      endpoints.set(key, endpoint);
    }
  }
  return { exists: true, endpoints };
}

function sliceEndpoint(
  ref: { kind?: string; name?: string; namespace?: string } | undefined,
  serviceNs: string,
  address: string,
  port: number,
  lookups: Lookups,
): WeightedAddr | undefined {
  if (ref?.kind !== "Pod" || !ref.name) {
    // Hand-written slices point at addresses outside the mesh: plain TCP, no identity.
    return { address, port, weight: DEFAULT_WEIGHT, identity: "", protocolHint: "", labels: { namespace: serviceNs } };
  }
  const podNs = ref.namespace ?? serviceNs;
  const pod = lookups.pod(podNs, ref.name);
  if (!pod) {
    // Without the pod we cannot tell whether it is meshed; leave it out until the pod is cached.
    lookups.report("pod_not_found", `endpoint ${address} refers to pod ${podNs}/${ref.name}, which is not in the cache yet`);
    return undefined;
  }
  return podEndpoint(pod, address, port, lookups);
}
