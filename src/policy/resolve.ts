/**
 * Resolution of policy resources against each other: which AuthorizationPolicy targets what, what
 * its authentication refs amount to (an Authorization), and why one does not apply. Pure over a
 * read-only snapshot of cluster state. Anything invalid or missing resolves to nothing, so it can
 * never widen access; the reasons feed the status conditions.
 */
import type { Authorization, Network } from "../api/index.js";
import type { ClusterState } from "../cluster/types.js";
import type {
  AuthorizationPolicy,
  GRPCRoute,
  HTTPRoute,
  MeshTLSAuthentication,
  NetworkAuthentication,
  ParentRef,
  Server,
  TargetRef,
} from "../cluster/policy-resources.js";
import { KIND_GROUP, POLICY_GROUP, validatePolicyResource } from "../cluster/policy-validation.js";
import { toDnsName, workloadIdentity } from "../identity/names.js";

/** What compile and status read: the cache of a ClusterState. */
export type PolicySnapshot = Pick<ClusterState, "list" | "get">;


export interface Problem {
  reason: string;
  message: string;
}

interface Meta {
  metadata: { name?: string; namespace?: string; creationTimestamp?: string; uid?: string };
}

export function nameOf(o: Meta): string {
  return o.metadata.name ?? "";
}

export function namespaceOf(o: Meta): string {
  return o.metadata.namespace ?? "default";
}

/** Oldest first, then by name: the order Linkerd and Gateway API use to break ties. */
export function byAge(a: Meta, b: Meta): number {
  const ta = a.metadata.creationTimestamp ?? "";
  const tb = b.metadata.creationTimestamp ?? "";
  if (ta !== tb) return ta < tb ? -1 : 1;
  return nameOf(a) < nameOf(b) ? -1 : nameOf(a) > nameOf(b) ? 1 : 0;
}

/** The validation problem of a resource, if any (memoized per object: objects in the cache are replaced, not mutated). */
const invalidCache = new WeakMap<object, Problem | null>();
export function invalidity(obj: object): Problem | undefined {
  let p = invalidCache.get(obj);
  if (p === undefined) {
    const { errors } = validatePolicyResource(obj);
    p = errors.length === 0 ? null : { reason: "Invalid", message: errors.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message)).join("; ") };
    invalidCache.set(obj, p);
  }
  return p ?? undefined;
}

function groupOk(ref: { group?: string; kind?: string }, kind: string): boolean {
  const want = KIND_GROUP[kind];
  return ref.group === undefined || ref.group === want || (want === "" && ref.group === "core");
}

/** Whether a route's parentRef names this Server. */
export function refsServer(ref: ParentRef, routeNamespace: string, server: Server): boolean {
  return (
    ref.kind === "Server" &&
    (ref.group === undefined || ref.group === POLICY_GROUP) &&
    ref.name === nameOf(server) &&
    (ref.namespace ?? routeNamespace) === namespaceOf(server)
  );
}

export type RouteResource = HTTPRoute | GRPCRoute;

/**
 * Routes in the namespace whose parentRefs include the Server, oldest first, with whether each is
 * valid. Invalid ones still count as attached, so that a broken route cannot turn a Server back
 * into one without routes, which would allow more; one whose parentRefs cannot be read counts as
 * attached to every Server of the namespace (fail closed).
 */
export function routesOf(snap: PolicySnapshot, server: Server): { route: RouteResource; valid: boolean }[] {
  const ns = namespaceOf(server);
  const out: RouteResource[] = [];
  for (const kind of ["HTTPRoute", "GRPCRoute"] as const) {
    for (const r of snap.list(kind, ns)) {
      if (invalidity(r) && parentRefsBroken(r)) out.push(r);
      else if ((r.spec.parentRefs ?? []).some((p) => refsServer(p, ns, server))) out.push(r);
    }
  }
  return out.sort(byAge).map((route) => ({ route, valid: !invalidity(route) }));
}

function parentRefsBroken(route: RouteResource): boolean {
  return validatePolicyResource(route).errors.some((e) => e.field === "" || e.field === "spec" || e.field.startsWith("spec.parentRefs"));
}

export function identityName(serviceAccount: string, namespace: string, trustDomain: string): string | undefined {
  try {
    return toDnsName(workloadIdentity(serviceAccount, namespace, trustDomain));
  } catch {
    return undefined;
  }
}

/** Every service account of a namespace: the identity with a wildcard first label. */
export function namespaceIdentityPattern(namespace: string, trustDomain: string): string | undefined {
  const any = identityName("x", namespace, trustDomain);
  return any === undefined ? undefined : `*${any.slice(1)}`;
}

interface Resolved {
  authorization?: Authorization;
  problem?: Problem;
}

export function meshTlsIdentities(m: MeshTLSAuthentication, trustDomain: string): { identities: string[]; problem?: Problem } {
  const identities = [...(m.spec.identities ?? [])];
  for (const ref of m.spec.identityRefs ?? []) {
    const id =
      ref.kind === "ServiceAccount"
        ? identityName(ref.name, ref.namespace ?? namespaceOf(m), trustDomain)
        : namespaceIdentityPattern(ref.name, trustDomain);
    if (id === undefined) {
      return { identities: [], problem: { reason: "RefInvalid", message: `identityRef ${ref.kind}/${ref.name} does not name a usable identity` } };
    }
    identities.push(id);
  }
  return { identities };
}

/**
 * Turns a policy's required authentication refs into one Authorization: NetworkAuthentication
 * gives the networks; MeshTLSAuthentication or ServiceAccount gives the identities and demands mTLS.
 */
export function resolvePolicy(snap: PolicySnapshot, policy: AuthorizationPolicy, trustDomain: string): Resolved {
  const invalid = invalidity(policy);
  if (invalid) return { problem: invalid };
  const ns = namespaceOf(policy);
  let networks: Network[] = [];
  let identities: string[] | undefined;
  for (const ref of policy.spec.requiredAuthenticationRefs) {
    const where = `${ref.kind} ${ref.namespace ?? ns}/${ref.name}`;
    if (ref.kind === "ServiceAccount") {
      const id = identityName(ref.name, ref.namespace ?? ns, trustDomain);
      if (id === undefined) return { problem: { reason: "RefInvalid", message: `${where} does not name a usable identity` } };
      identities = [id];
      continue;
    }
    const target =
      ref.kind === "MeshTLSAuthentication"
        ? snap.get("MeshTLSAuthentication", ns, ref.name)
        : snap.get("NetworkAuthentication", ns, ref.name);
    if (!target) return { problem: { reason: "RefNotFound", message: `${where} does not exist` } };
    const bad = invalidity(target);
    if (bad) return { problem: { reason: "RefInvalid", message: `${where} is invalid: ${bad.message}` } };
    if (ref.kind === "MeshTLSAuthentication") {
      const r = meshTlsIdentities(target as MeshTLSAuthentication, trustDomain);
      if (r.problem) return { problem: r.problem };
      identities = r.identities;
    } else {
      networks = (target as NetworkAuthentication).spec.networks.map((n) => ({ cidr: n.cidr, except: n.except ?? [] }));
    }
  }
  return {
    authorization: {
      name: `authorizationpolicy:${ns}/${nameOf(policy)}`,
      networks,
      authentication: identities ? "mtls" : "unauthenticated",
      identities: identities ?? [],
    },
  };
}

/** What a policy's targetRef points at, or why it points at nothing usable. */
export type Target =
  | { kind: "Server"; server: Server }
  | { kind: "Namespace"; namespace: string }
  | { kind: "HTTPRoute" | "GRPCRoute"; route: RouteResource; servers: Server[] };

export function resolveTarget(snap: PolicySnapshot, policy: AuthorizationPolicy): { target?: Target; problem?: Problem } {
  const invalid = invalidity(policy);
  if (invalid) return { problem: invalid };
  const ns = namespaceOf(policy);
  const ref: TargetRef = policy.spec.targetRef;
  if (!groupOk(ref, ref.kind)) return { problem: { reason: "Invalid", message: `targetRef group ${ref.group} does not hold ${ref.kind}` } };
  switch (ref.kind) {
    case "Namespace":
      // Validation allows only the policy's own namespace, which exists if the policy does (the
      // local source need not declare Namespace objects).
      if (ref.name !== ns) return { problem: { reason: "Invalid", message: `a policy in namespace ${ns} can only target Namespace ${ns}` } };
      return { target: { kind: "Namespace", namespace: ref.name } };
    case "Server": {
      const server = snap.get("Server", ns, ref.name);
      if (!server) return { problem: { reason: "TargetNotFound", message: `Server ${ns}/${ref.name} does not exist` } };
      const bad = invalidity(server);
      if (bad) return { problem: { reason: "TargetInvalid", message: `Server ${ns}/${ref.name} is invalid: ${bad.message}` } };
      return { target: { kind: "Server", server } };
    }
    case "HTTPRoute":
    case "GRPCRoute": {
      const route = ref.kind === "HTTPRoute" ? snap.get("HTTPRoute", ns, ref.name) : snap.get("GRPCRoute", ns, ref.name);
      if (!route) return { problem: { reason: "TargetNotFound", message: `${ref.kind} ${ns}/${ref.name} does not exist` } };
      const bad = invalidity(route);
      if (bad) return { problem: { reason: "TargetInvalid", message: `${ref.kind} ${ns}/${ref.name} is invalid: ${bad.message}` } };
      const servers = (route.spec.parentRefs ?? [])
        .filter((p) => p.kind === "Server")
        .map((p) => snap.get("Server", p.namespace ?? ns, p.name))
        .filter((s): s is Server => s !== undefined && !invalidity(s) && (route.spec.parentRefs ?? []).some((p) => refsServer(p, ns, s)));
      if (servers.length === 0) {
        return { problem: { reason: "TargetNotAttached", message: `${ref.kind} ${ns}/${ref.name} has no Server parentRef that exists` } };
      }
      return { target: { kind: ref.kind, route, servers } };
    }
    default:
      return { problem: { reason: "Invalid", message: `targetRef kind ${ref.kind} is not supported` } };
  }
}
