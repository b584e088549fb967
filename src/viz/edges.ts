/**
 * Who talks to whom. The client's proxy names the destination (outbound series carry dst_pod,
 * authority and the server identity it verified, in peer_identity); the server's proxy names the
 * client identity it saw on mTLS (inbound peer_identity). Joining both sides gives each edge with
 * both identities, and whether every request on it was mTLS. Pure; table-tested.
 */
import { METRIC } from "./aggregate.js";
import type { PodRef, PodWindow } from "./window.js";

export interface EdgeEnd {
  /** Display name: namespace/workload when known, else the identity or authority seen. */
  label: string;
  namespace?: string;
  workload?: string;
}

export interface Edge {
  src: EdgeEnd;
  dst: EdgeEnd;
  /** Identities the server saw the client present ("" entries omitted). */
  clientIdentities: string[];
  /** Identities the client verified on the server. */
  serverIdentities: string[];
  /** Every observed request on the edge was mTLS. */
  mtls: boolean;
  /** Requests per second (the client's count when it reports, else the server's). */
  rps: number;
  /** Which proxies reported the edge. */
  seenBy: "both" | "client" | "server";
}

interface Side {
  rps: number;
  requests: number;
  tlsRequests: number;
  identities: Set<string>;
}

interface Draft {
  src: EdgeEnd;
  dst: EdgeEnd;
  srcKey: string;
  dstKey: string;
  client?: Side;
  server?: Side;
}

const workloadKey = (p: { namespace: string; workload: string }) => `${p.namespace}/${p.workload}`;

function side(): Side {
  return { rps: 0, requests: 0, tlsRequests: 0, identities: new Set() };
}

function add(s: Side, value: number, seconds: number, tls: boolean, identity: string | undefined): void {
  s.requests += value;
  if (seconds > 0) s.rps += value / seconds;
  if (tls) s.tlsRequests += value;
  if (identity) s.identities.add(identity);
}

export function edges(windows: readonly PodWindow[]): Edge[] {
  const live = windows.filter((w) => !w.error);
  const podsByName = new Map<string, PodRef[]>();
  const identityOf = new Map<string, Set<string>>();
  const learn = (key: string, identity: string) => {
    const set = identityOf.get(key) ?? new Set();
    set.add(identity);
    identityOf.set(key, set);
  };
  for (const w of windows) {
    podsByName.set(w.pod.pod, [...(podsByName.get(w.pod.pod) ?? []), w.pod]);
    if (w.pod.identity) learn(workloadKey(w.pod), w.pod.identity);
  }
  // dst_pod may be "name" or "namespace/name"; a bare name prefers the client's namespace.
  const resolvePod = (dstPod: string, fromNs: string): PodRef | undefined => {
    const [ns, name] = dstPod.includes("/") ? (dstPod.split("/", 2) as [string, string]) : [undefined, dstPod];
    const candidates = podsByName.get(name) ?? [];
    return candidates.find((p) => p.namespace === (ns ?? fromNs)) ?? (ns === undefined ? candidates[0] : undefined);
  };

  const drafts = new Map<string, Draft>();
  const draft = (src: EdgeEnd, srcKey: string, dst: EdgeEnd, dstKey: string): Draft => {
    const key = `${srcKey} -> ${dstKey}`;
    const d = drafts.get(key) ?? { src, dst, srcKey, dstKey };
    drafts.set(key, d);
    return d;
  };
  const end = (p: { namespace: string; workload: string }): EdgeEnd => ({ label: workloadKey(p), namespace: p.namespace, workload: p.workload });

  for (const w of live) {
    for (const s of w.increases) {
      if (s.name !== METRIC.requests || s.labels.direction !== "outbound" || s.value <= 0) continue;
      const tls = s.labels.tls === "true";
      const server = s.labels.peer_identity || undefined;
      const dstPod = s.labels.dst_pod ? resolvePod(s.labels.dst_pod, w.pod.namespace) : undefined;
      const dst: EdgeEnd = dstPod ? end(dstPod) : { label: s.labels.dst_pod || s.labels.authority || "unknown" };
      const d = draft(end(w.pod), workloadKey(w.pod), dst, dstPod ? workloadKey(dstPod) : `authority:${dst.label}`);
      d.client ??= side();
      add(d.client, s.value, w.seconds, tls, server);
      // The identity a client verified on a pod is that pod's workload's identity.
      if (dstPod && tls && server) learn(workloadKey(dstPod), server);
    }
  }

  const workloadsByIdentity = new Map<string, string[]>();
  for (const [key, ids] of identityOf) for (const id of ids) workloadsByIdentity.set(id, [...(workloadsByIdentity.get(id) ?? []), key]);
  const endByKey = new Map<string, EdgeEnd>();
  for (const w of windows) endByKey.set(workloadKey(w.pod), end(w.pod));

  for (const w of live) {
    const dstKey = workloadKey(w.pod);
    for (const s of w.increases) {
      if (s.name !== METRIC.requests || s.labels.direction !== "inbound" || s.value <= 0) continue;
      const tls = s.labels.tls === "true";
      const client = tls ? s.labels.peer_identity || undefined : undefined;
      let srcKey = client ? workloadsByIdentity.get(client)?.[0] : undefined;
      if (!srcKey) {
        // An unknown identity (or plaintext) into a workload that exactly one client of unknown
        // identity calls: that client is the one.
        const unknownCallers = [...drafts.values()].filter((d) => d.dstKey === dstKey && d.client && !identityOf.has(d.srcKey));
        if (client && unknownCallers.length === 1) srcKey = unknownCallers[0]!.srcKey;
      }
      const src = srcKey ? endByKey.get(srcKey) : undefined;
      const d = src && srcKey
        ? draft(src, srcKey, end(w.pod), dstKey)
        : draft({ label: client ?? "unauthenticated" }, `identity:${client ?? ""}`, end(w.pod), dstKey);
      d.server ??= side();
      add(d.server, s.value, w.seconds, tls, client);
    }
  }

  return [...drafts.values()]
    .map((d) => {
      const sides = [d.client, d.server].filter((s): s is Side => !!s);
      return {
        src: d.src,
        dst: d.dst,
        clientIdentities: [...(d.server?.identities ?? identityOf.get(d.srcKey) ?? [])].sort(),
        serverIdentities: [...(d.client?.identities ?? [])].sort(),
        mtls: sides.every((s) => s.tlsRequests === s.requests),
        rps: d.client?.rps ?? d.server?.rps ?? 0,
        seenBy: d.client && d.server ? "both" : d.client ? "client" : "server",
      } satisfies Edge;
    })
    .sort((a, b) => a.src.label.localeCompare(b.src.label) || a.dst.label.localeCompare(b.dst.label));
}
