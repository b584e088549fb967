/**
 * Indexes over the cluster cache that discovery needs and the cache does not have: Service by
 * cluster IP, pod by pod IP, EndpointSlices by Service, Services by the pods their slices name.
 * Each cluster event updates the indexes and reports which Services and IPs it touched, so only
 * the watches that depend on them are recomputed.
 */
import type { Pod, Service } from "kubernetes-types/core/v1.js";
import type { EndpointSlice } from "kubernetes-types/discovery/v1.js";
import { objectKey, type ClusterState, type ResourceEvent, type Unsubscribe } from "../cluster/types.js";
import { SERVICE_NAME_LABEL } from "./endpoints.js";
import { addTo, deleteFrom } from "./multimap.js";

export interface Touched {
  services: Set<string>;
  ips: Set<string>;
  /** A Namespace changed (annotations): every watch in it may change. */
  namespaces: Set<string>;
}

type Meta = { metadata?: { name?: string; namespace?: string } };

function keyOf(o: Meta): string {
  return objectKey(o.metadata?.namespace ?? "default", o.metadata?.name ?? "");
}

function serviceIps(service: Service): string[] {
  const ips = service.spec?.clusterIPs ?? (service.spec?.clusterIP ? [service.spec.clusterIP] : []);
  return ips.filter((ip) => ip && ip !== "None");
}

function podIps(pod: Pod): string[] {
  // A host-network pod shares its node's IP; that IP does not name the pod.
  if (pod.spec?.hostNetwork) return [];
  const ips = pod.status?.podIPs?.map((p) => p.ip) ?? (pod.status?.podIP ? [pod.status.podIP] : []);
  return ips.filter((ip): ip is string => Boolean(ip));
}

export class ClusterIndex {
  private readonly serviceByIp = new Map<string, string>();
  private readonly ipsOfService = new Map<string, string[]>();
  private readonly podsByIp = new Map<string, Set<string>>();
  private readonly ipsOfPod = new Map<string, string[]>();
  private readonly slicesOfService = new Map<string, Set<string>>();
  private readonly serviceOfSlice = new Map<string, string>();
  private readonly podsOfSlice = new Map<string, string[]>();
  /** pod key -> service key -> number of slices of that Service naming the pod. */
  private readonly servicesOfPod = new Map<string, Map<string, number>>();
  private readonly unsubscribes: Unsubscribe[] = [];

  constructor(private readonly cluster: ClusterState) {}

  /** Subscribes first, then seeds from the cache (the watch does not replay). */
  start(onTouched: (touched: Touched) => void, onError: (err: unknown, kind: string) => void): void {
    const emit = (kind: string, fn: (t: Touched) => void) => {
      const touched: Touched = { services: new Set(), ips: new Set(), namespaces: new Set() };
      try {
        fn(touched);
      } catch (err) {
        // A malformed object must not stop discovery; what was indexed before it stays.
        onError(err, kind);
      }
      onTouched(touched);
    };
    this.unsubscribes.push(
      this.cluster.watch("Service", (e) => emit("Service", (t) => this.onService(e, t))),
      this.cluster.watch("EndpointSlice", (e) => emit("EndpointSlice", (t) => this.onSlice(e, t))),
      this.cluster.watch("Pod", (e) => emit("Pod", (t) => this.onPod(e, t))),
      this.cluster.watch("Namespace", (e) => emit("Namespace", (t) => t.namespaces.add(e.object.metadata?.name ?? ""))),
    );
    // Seeding goes through the same guard; no watch exists yet, so nothing is marked dirty.
    for (const object of this.cluster.list("Service")) emit("Service", (t) => this.onService({ type: "ADDED", kind: "Service", object }, t));
    for (const object of this.cluster.list("Pod")) emit("Pod", (t) => this.onPod({ type: "ADDED", kind: "Pod", object }, t));
    for (const object of this.cluster.list("EndpointSlice")) {
      emit("EndpointSlice", (t) => this.onSlice({ type: "ADDED", kind: "EndpointSlice", object }, t));
    }
  }

  stop(): void {
    for (const u of this.unsubscribes.splice(0)) u();
  }

  serviceKeyForIp(ip: string): string | undefined {
    return this.serviceByIp.get(ip);
  }

  ipsOf(serviceKey: string): readonly string[] {
    return this.ipsOfService.get(serviceKey) ?? [];
  }

  /** The pod holding `ip`; when several do (an IP reused after a pod finished), a running one wins. */
  podForIp(ip: string): Pod | undefined {
    let best: Pod | undefined;
    for (const key of this.podsByIp.get(ip) ?? []) {
      const [ns, name] = splitKey(key);
      const pod = this.cluster.get("Pod", ns, name);
      if (!pod) continue;
      const phase = pod.status?.phase;
      if (phase === "Running") return pod;
      if (!best && phase !== "Succeeded" && phase !== "Failed") best = pod;
    }
    return best;
  }

  service(serviceKey: string): Service | undefined {
    const [ns, name] = splitKey(serviceKey);
    return this.cluster.get("Service", ns, name);
  }

  slicesOf(serviceKey: string): EndpointSlice[] {
    const out: EndpointSlice[] = [];
    for (const key of this.slicesOfService.get(serviceKey) ?? []) {
      const [ns, name] = splitKey(key);
      const slice = this.cluster.get("EndpointSlice", ns, name);
      if (slice) out.push(slice);
    }
    return out;
  }

  private onService(e: ResourceEvent<"Service">, t: Touched): void {
    const key = keyOf(e.object);
    for (const ip of this.ipsOfService.get(key) ?? []) {
      if (this.serviceByIp.get(ip) === key) this.serviceByIp.delete(ip);
      t.ips.add(ip);
    }
    const ips = e.type === "DELETED" ? [] : serviceIps(e.object);
    if (ips.length > 0) this.ipsOfService.set(key, ips);
    else this.ipsOfService.delete(key);
    for (const ip of ips) {
      this.serviceByIp.set(ip, key);
      t.ips.add(ip);
    }
    t.services.add(key);
  }

  private onPod(e: ResourceEvent<"Pod">, t: Touched): void {
    const key = keyOf(e.object);
    for (const ip of this.ipsOfPod.get(key) ?? []) {
      deleteFrom(this.podsByIp, ip, key);
      t.ips.add(ip);
    }
    const ips = e.type === "DELETED" ? [] : podIps(e.object);
    if (ips.length > 0) this.ipsOfPod.set(key, ips);
    else this.ipsOfPod.delete(key);
    for (const ip of ips) {
      addTo(this.podsByIp, ip, key);
      t.ips.add(ip);
    }
    for (const svc of this.servicesOfPod.get(key)?.keys() ?? []) {
      t.services.add(svc);
      for (const ip of this.ipsOf(svc)) t.ips.add(ip);
    }
  }

  private onSlice(e: ResourceEvent<"EndpointSlice">, t: Touched): void {
    const key = keyOf(e.object);
    const ns = e.object.metadata?.namespace ?? "default";
    const before = this.serviceOfSlice.get(key);
    const label = e.type === "DELETED" ? undefined : e.object.metadata?.labels?.[SERVICE_NAME_LABEL];
    const after = label ? objectKey(ns, label) : undefined;

    if (before) {
      deleteFrom(this.slicesOfService, before, key);
      for (const pod of this.podsOfSlice.get(key) ?? []) this.unref(pod, before);
      touchService(this, before, t);
    }
    this.serviceOfSlice.delete(key);
    this.podsOfSlice.delete(key);
    if (after) {
      this.serviceOfSlice.set(key, after);
      addTo(this.slicesOfService, after, key);
      const pods = [
        ...new Set(
          (e.object.endpoints ?? [])
            .filter((ep) => ep.targetRef?.kind === "Pod" && ep.targetRef.name)
            .map((ep) => objectKey(ep.targetRef!.namespace ?? ns, ep.targetRef!.name!)),
        ),
      ];
      this.podsOfSlice.set(key, pods);
      for (const pod of pods) {
        let refs = this.servicesOfPod.get(pod);
        if (!refs) this.servicesOfPod.set(pod, (refs = new Map()));
        refs.set(after, (refs.get(after) ?? 0) + 1);
      }
      touchService(this, after, t);
    }
  }

  private unref(pod: string, service: string): void {
    const refs = this.servicesOfPod.get(pod);
    if (!refs) return;
    const n = (refs.get(service) ?? 0) - 1;
    if (n > 0) refs.set(service, n);
    else refs.delete(service);
    if (refs.size === 0) this.servicesOfPod.delete(pod);
  }
}

function touchService(index: ClusterIndex, key: string, t: Touched): void {
  t.services.add(key);
  for (const ip of index.ipsOf(key)) t.ips.add(ip);
}

export function splitKey(key: string): [string, string] {
  const at = key.indexOf("/");
  return [key.slice(0, at), key.slice(at + 1)];
}
