/**
 * Compiles the policy resources that apply to one port of one pod into the InboundServer the proxy
 * evaluates (src/api/inbound-policy.ts). Pure over a snapshot of cluster state.
 *
 * - The oldest Server in the pod's namespace whose podSelector matches the pod and whose port
 *   (number, or the name of one of the pod's container ports) is this port decides the port.
 *   Its authorizations come from accepted AuthorizationPolicies targeting it or the namespace; its
 *   routes are the HTTPRoutes/GRPCRoutes with it as parentRef, each with the authorizations of
 *   policies targeting that route. A Server with no authorization denies.
 * - Nothing invalid grants anything, and nothing invalid makes a port fall back to something
 *   wider: an invalid Server denies what it may have covered, an invalid route matches nothing.
 * - A port no Server covers gets the default policy: the pod annotation, else the namespace
 *   annotation, else the cluster default (an unknown value means deny: fail closed).
 * - Kubelet httpGet probe paths of the pod's containers on this port are a route authorized
 *   without mTLS (GET, exact path), on every non-opaque port.
 */
import type { Pod } from "kubernetes-types/core/v1.js";
import type { Authorization, InboundServer, ProxyProtocol, Route, RouteMatch } from "../api/index.js";
import { DEFAULT_INBOUND_POLICIES, DEFAULT_INBOUND_POLICY_ANNOTATION, type DefaultInboundPolicy } from "../api/mesh.js";
import type { GRPCRoute, HTTPRoute, ProxyProtocolName, Server } from "../cluster/policy-resources.js";
import { validatePolicyResource } from "../cluster/policy-validation.js";
import { selectorMatches } from "../cluster/selector.js";
import {
  byAge,
  invalidity,
  nameOf,
  namespaceOf,
  resolvePolicy,
  resolveTarget,
  routesOf,
  type PolicySnapshot,
  type RouteResource,
} from "./resolve.js";

export interface PolicySettings {
  /** The cluster-wide default inbound policy (install-time). */
  clusterDefault: DefaultInboundPolicy;
  /** CIDRs of the cluster's pod and node networks, for the cluster-* defaults. */
  clusterNetworks: string[];
  trustDomain: string;
}

export const DEFAULT_SETTINGS: PolicySettings = {
  clusterDefault: "all-authenticated",
  clusterNetworks: ["10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8"],
  trustDomain: "cluster.local",
};

export function isDefaultPolicy(v: unknown): v is DefaultInboundPolicy {
  return typeof v === "string" && (DEFAULT_INBOUND_POLICIES as readonly string[]).includes(v);
}

export interface EffectiveDefault {
  policy: DefaultInboundPolicy;
  /** "pod", "namespace" or "cluster". */
  source: "pod" | "namespace" | "cluster";
  /** Set when an annotation held an unknown value (then the policy is deny). */
  problem?: string;
}

export function effectiveDefault(snap: PolicySnapshot, pod: Pod, settings: PolicySettings): EffectiveDefault {
  const candidates: [EffectiveDefault["source"], string | undefined][] = [
    ["pod", pod.metadata?.annotations?.[DEFAULT_INBOUND_POLICY_ANNOTATION]],
    ["namespace", snap.get("Namespace", undefined, pod.metadata?.namespace ?? "default")?.metadata?.annotations?.[DEFAULT_INBOUND_POLICY_ANNOTATION]],
  ];
  for (const [source, value] of candidates) {
    if (value === undefined) continue;
    if (isDefaultPolicy(value)) return { policy: value, source };
    return {
      policy: "deny",
      source,
      problem: `${source} annotation ${DEFAULT_INBOUND_POLICY_ANNOTATION}=${JSON.stringify(value)} is not one of ${DEFAULT_INBOUND_POLICIES.join(", ")}; denying (fail closed)`,
    };
  }
  return { policy: settings.clusterDefault, source: "cluster" };
}

function defaultAuthorizations(policy: DefaultInboundPolicy, settings: PolicySettings): Authorization[] {
  const name = `default:${policy}`;
  const cluster = settings.clusterNetworks.map((cidr) => ({ cidr, except: [] }));
  switch (policy) {
    case "all-authenticated":
      return [{ name, networks: [], authentication: "mtls", identities: ["*"] }];
    case "all-unauthenticated":
      return [{ name, networks: [], authentication: "unauthenticated", identities: [] }];
    case "cluster-authenticated":
      return [{ name, networks: cluster, authentication: "mtls", identities: ["*"] }];
    case "cluster-unauthenticated":
      return [{ name, networks: cluster, authentication: "unauthenticated", identities: [] }];
    case "deny":
    case "audit":
      return [];
  }
}

/** The numbers a container port name stands for in this pod. */
function containerPortNumbers(pod: Pod, name: string): number[] {
  const out: number[] = [];
  for (const c of pod.spec?.containers ?? []) for (const p of c.ports ?? []) if (p.name === name) out.push(p.containerPort);
  return out;
}

export function serverCoversPort(server: Server, pod: Pod, port: number): boolean {
  const p = server.spec.port;
  return typeof p === "number" ? p === port : containerPortNumbers(pod, p).includes(port);
}

/**
 * Servers covering this pod port, oldest first (the first one decides; the rest conflict).
 * An invalid Server still covers what it may have meant, so a typo cannot open ports to the
 * default policy: it then denies (fail closed). If its selector is broken it covers every pod of
 * the namespace; if its port is broken, every port of the pods it selects.
 */
export function serversFor(snap: PolicySnapshot, pod: Pod, port: number): Server[] {
  return snap
    .list("Server", namespaceOf(pod as { metadata: object }))
    .filter((s) => {
      const broken = invalidity(s) ? brokenParts(s) : { port: false, selector: false };
      if (!broken.port && !serverCoversPort(s, pod, port)) return false;
      return broken.selector || selectorMatches(s.spec.podSelector, pod.metadata?.labels);
    })
    .sort(byAge);
}

function brokenParts(server: Server): { port: boolean; selector: boolean } {
  const fields = validatePolicyResource(server).errors.map((e) => e.field);
  const whole = fields.some((f) => f === "" || f === "spec");
  return {
    port: whole || fields.some((f) => f.startsWith("spec.port")),
    selector: whole || fields.some((f) => f.startsWith("spec.podSelector")),
  };
}

/** Exact paths of the pod's kubelet httpGet probes on this port. */
export function probePaths(pod: Pod, port: number): string[] {
  const paths = new Set<string>();
  for (const c of pod.spec?.containers ?? []) {
    for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe]) {
      const get = probe?.httpGet;
      if (!get) continue;
      const target = typeof get.port === "number" ? get.port : (c.ports ?? []).find((p) => p.name === get.port)?.containerPort;
      if (target !== port) continue;
      const path = get.path || "/";
      const q = path.indexOf("?");
      paths.add(q >= 0 ? path.slice(0, q) : path);
    }
  }
  return [...paths].sort();
}

/**
 * Adds the probe route in front of `routes`. A server without routes has one implicit match-all
 * route, which must stay beside the probe route.
 */
function withProbes(routes: Route[], pod: Pod, port: number): Route[] {
  const probes = probePaths(pod, port);
  if (probes.length === 0) return routes;
  return [probeRoute(probes), ...(routes.length > 0 ? routes : [{ name: "default", matches: [], authorizations: [] }])];
}

function probeRoute(paths: string[]): Route {
  return {
    name: "probe",
    matches: paths.map((path) => match({ pathType: "Exact", path, method: "GET" })),
    authorizations: [{ name: "probe", networks: [], authentication: "unauthenticated", identities: [] }],
  };
}

function match(m: Partial<RouteMatch>): RouteMatch {
  return { pathType: "", path: "", method: "", headers: [], grpcService: "", grpcMethod: "", grpcMatchType: "", ...m };
}

/** A regular expression no path matches (an empty negative lookahead): the match of an invalid route. */
export const NEVER = "(?!)";

const PROTOCOLS: Record<ProxyProtocolName, ProxyProtocol> = {
  unknown: "unknown",
  "HTTP/1": "http1",
  "HTTP/2": "http2",
  gRPC: "grpc",
  opaque: "opaque",
};

function headerMatches(headers: { type?: string; name: string; value: string }[] | undefined) {
  return (headers ?? []).map((h) => ({ name: h.name, value: h.value, regex: h.type === "RegularExpression" }));
}

function routeMatches(route: RouteResource): RouteMatch[] {
  const out: RouteMatch[] = [];
  if (route.kind === "HTTPRoute") {
    for (const rule of (route as HTTPRoute).spec.rules ?? []) {
      // A rule without matches matches every request (Gateway API: PathPrefix "/").
      for (const m of rule.matches?.length ? rule.matches : [{}]) {
        out.push(
          match({
            pathType: m.path ? m.path.type ?? "PathPrefix" : "",
            path: m.path ? m.path.value ?? "/" : "",
            method: m.method ?? "",
            headers: headerMatches(m.headers),
          }),
        );
      }
    }
  } else {
    for (const rule of (route as GRPCRoute).spec.rules ?? []) {
      for (const m of rule.matches?.length ? rule.matches : [{}]) {
        out.push(
          match({
            grpcService: m.method?.service ?? "",
            grpcMethod: m.method?.method ?? "",
            grpcMatchType: m.method ? m.method.type ?? "Exact" : "",
            headers: headerMatches(m.headers),
          }),
        );
      }
    }
  }
  // No rules at all: the route matches everything, which is an empty match list.
  return out.every((m) => !m.path && !m.method && !m.grpcService && !m.grpcMethod && m.headers.length === 0) ? [] : out;
}

type ResolvedTarget = NonNullable<ReturnType<typeof resolveTarget>["target"]>;

type AcceptedPolicy = { target: ResolvedTarget; authorization: Authorization };

/**
 * Results shared by compilations over one unchanged snapshot (the watcher makes one per batch of
 * events), so recompiling every pod port of a namespace resolves its policies once.
 */
export class CompileCache {
  readonly policies = new Map<string, AcceptedPolicy[]>();
}

/** Every accepted policy of the namespace with its target and authorization, oldest first. */
function acceptedPolicies(snap: PolicySnapshot, namespace: string, settings: PolicySettings, cache?: CompileCache): AcceptedPolicy[] {
  const cached = cache?.policies.get(namespace);
  if (cached) return cached;
  const out: AcceptedPolicy[] = [];
  for (const policy of snap.list("AuthorizationPolicy", namespace).sort(byAge)) {
    const { target } = resolveTarget(snap, policy);
    if (!target) continue;
    const { authorization } = resolvePolicy(snap, policy, settings.trustDomain);
    if (authorization) out.push({ target, authorization });
  }
  cache?.policies.set(namespace, out);
  return out;
}

function compileServer(
  snap: PolicySnapshot,
  server: Server,
  pod: Pod,
  port: number,
  def: EffectiveDefault,
  settings: PolicySettings,
  cache: CompileCache | undefined,
): InboundServer {
  const ns = namespaceOf(server);
  const serverName = nameOf(server);
  if (invalidity(server)) {
    // Not accepted: deny everything but the kubelet's probes (status says what to fix).
    return {
      name: `server:${ns}/${serverName}`,
      protocol: "unknown",
      authorizations: [],
      routes: withProbes([], pod, port),
      defaultPolicy: def.policy,
      audit: false,
    };
  }
  const protocol = PROTOCOLS[server.spec.proxyProtocol ?? "unknown"];
  const policies = acceptedPolicies(snap, ns, settings, cache);
  const authorizations = policies
    .filter(({ target: t }) => (t.kind === "Server" && nameOf(t.server) === serverName) || (t.kind === "Namespace" && t.namespace === ns))
    .map((p) => p.authorization);
  let routes: Route[] = [];
  if (protocol !== "opaque") {
    const byRoute = new Map<string, Authorization[]>();
    for (const { target: t, authorization } of policies) {
      if (t.kind !== "HTTPRoute" && t.kind !== "GRPCRoute") continue;
      const key = `${t.kind}/${nameOf(t.route)}`;
      byRoute.set(key, [...(byRoute.get(key) ?? []), authorization]);
    }
    for (const { route: r, valid } of routesOf(snap, server)) {
      const name = `${r.kind.toLowerCase()}:${ns}/${nameOf(r)}`;
      // An invalid route matches nothing and grants nothing, but keeps the Server in route mode.
      if (!valid) routes.push({ name, matches: [match({ pathType: "RegularExpression", path: NEVER })], authorizations: [] });
      else routes.push({ name, matches: routeMatches(r), authorizations: byRoute.get(`${r.kind}/${nameOf(r)}`) ?? [] });
    }
    routes = withProbes(routes, pod, port);
  }
  return { name: `server:${ns}/${serverName}`, protocol, authorizations, routes, defaultPolicy: def.policy, audit: server.spec.accessPolicy === "audit" };
}

function compileDefault(pod: Pod, port: number, def: EffectiveDefault, settings: PolicySettings): InboundServer {
  return {
    name: `default:${def.policy}`,
    protocol: "unknown",
    authorizations: defaultAuthorizations(def.policy, settings),
    routes: withProbes([], pod, port),
    defaultPolicy: def.policy,
    audit: def.policy === "audit",
  };
}

/** `cache` may be shared by compilations as long as the snapshot does not change in between. */
export function compileInboundServer(snap: PolicySnapshot, pod: Pod, port: number, settings: PolicySettings, cache?: CompileCache): InboundServer {
  const def = effectiveDefault(snap, pod, settings);
  const server = serversFor(snap, pod, port)[0];
  return server ? compileServer(snap, server, pod, port, def, settings, cache) : compileDefault(pod, port, def, settings);
}
