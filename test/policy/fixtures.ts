/** Builders of policy resources and a small cluster shared by the policy tests. */
import type { Pod } from "kubernetes-types/core/v1.js";
import { MemoryCluster } from "../../src/cluster/memory.js";
import type {
  AuthorizationPolicy,
  GRPCRoute,
  HTTPRoute,
  MeshTLSAuthentication,
  NetworkAuthentication,
  Server,
  TargetRef,
} from "../../src/cluster/policy-resources.js";
import { DEFAULT_INBOUND_POLICY_ANNOTATION } from "../../src/api/mesh.js";
import type { PolicySettings } from "../../src/policy/compile.js";

export const SETTINGS: PolicySettings = {
  clusterDefault: "all-authenticated",
  clusterNetworks: ["10.0.0.0/8", "fd00::/8"],
  trustDomain: "cluster.local",
};

export const id = (sa: string, ns: string) => `${sa}.${ns}.serviceaccount.identity.tether.cluster.local`;

const P = "policy.tether.io/v1alpha1";
const G = "gateway.networking.k8s.io/v1";
let clock = 0;
/** Increasing creation timestamps so "oldest first" is deterministic. */
const created = () => new Date(Date.UTC(2026, 0, 1) + 1000 * clock++).toISOString();

export function server(ns: string, name: string, spec: Partial<Server["spec"]>): Server {
  return { apiVersion: P, kind: "Server", metadata: { name, namespace: ns, creationTimestamp: created() }, spec: { podSelector: {}, port: 8080, ...spec } as Server["spec"] };
}

export function policy(ns: string, name: string, targetRef: TargetRef, refs: TargetRef[]): AuthorizationPolicy {
  return {
    apiVersion: P,
    kind: "AuthorizationPolicy",
    metadata: { name, namespace: ns, creationTimestamp: created() },
    spec: { targetRef, requiredAuthenticationRefs: refs },
  };
}

export function meshTls(ns: string, name: string, spec: MeshTLSAuthentication["spec"]): MeshTLSAuthentication {
  return { apiVersion: P, kind: "MeshTLSAuthentication", metadata: { name, namespace: ns, creationTimestamp: created() }, spec };
}

export function network(ns: string, name: string, networks: NetworkAuthentication["spec"]["networks"]): NetworkAuthentication {
  return { apiVersion: P, kind: "NetworkAuthentication", metadata: { name, namespace: ns, creationTimestamp: created() }, spec: { networks } };
}

export function grpcRoute(ns: string, name: string, serverName: string, rules: GRPCRoute["spec"]["rules"]): GRPCRoute {
  return {
    apiVersion: G,
    kind: "GRPCRoute",
    metadata: { name, namespace: ns, creationTimestamp: created() },
    spec: { parentRefs: [{ group: "policy.tether.io", kind: "Server", name: serverName }], rules },
  };
}

export function httpRoute(ns: string, name: string, serverName: string, rules: HTTPRoute["spec"]["rules"]): HTTPRoute {
  return {
    apiVersion: G,
    kind: "HTTPRoute",
    metadata: { name, namespace: ns, creationTimestamp: created() },
    spec: { parentRefs: [{ group: "policy.tether.io", kind: "Server", name: serverName }], rules },
  };
}

export const ref = {
  server: (name: string): TargetRef => ({ group: "policy.tether.io", kind: "Server", name }),
  namespace: (name: string): TargetRef => ({ kind: "Namespace", name }),
  grpcRoute: (name: string): TargetRef => ({ group: "gateway.networking.k8s.io", kind: "GRPCRoute", name }),
  httpRoute: (name: string): TargetRef => ({ group: "gateway.networking.k8s.io", kind: "HTTPRoute", name }),
  meshTls: (name: string): TargetRef => ({ group: "policy.tether.io", kind: "MeshTLSAuthentication", name }),
  network: (name: string): TargetRef => ({ group: "policy.tether.io", kind: "NetworkAuthentication", name }),
  serviceAccount: (name: string, namespace?: string): TargetRef => ({ kind: "ServiceAccount", name, ...(namespace ? { namespace } : {}) }),
};

export function pod(ns: string, name: string, labels: Record<string, string>, annotations: Record<string, string> = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: ns, labels, annotations },
    spec: {
      serviceAccountName: labels.app ?? "default",
      containers: [
        {
          name: "app",
          image: "app",
          ports: [
            { name: "http", containerPort: 8080 },
            { name: "grpc", containerPort: 9090 },
          ],
          readinessProbe: { httpGet: { path: "/ready", port: "http" } },
          livenessProbe: { httpGet: { path: "/live", port: 8080 } },
        },
      ],
    },
  };
}

/** Namespaces shop (no annotation), open (all-unauthenticated), a pod in each, plus `pay`. */
export function baseCluster(): MemoryCluster {
  const c = new MemoryCluster();
  c.apply("Namespace", { metadata: { name: "shop" } });
  c.apply("Namespace", { metadata: { name: "pay" } });
  c.apply("Namespace", { metadata: { name: "open", annotations: { [DEFAULT_INBOUND_POLICY_ANNOTATION]: "all-unauthenticated" } } });
  c.apply("Pod", pod("shop", "web-1", { app: "web", tier: "front" }));
  c.apply("Pod", pod("shop", "api-1", { app: "api" }));
  c.apply("Pod", pod("open", "x-1", { app: "x" }));
  c.apply("Pod", pod("open", "locked-1", { app: "locked" }, { [DEFAULT_INBOUND_POLICY_ANNOTATION]: "deny" }));
  return c;
}

type Applicable = Server | AuthorizationPolicy | MeshTLSAuthentication | NetworkAuthentication | HTTPRoute | GRPCRoute;

export function applyAll(c: MemoryCluster, objects: Applicable[]): void {
  for (const o of objects) c.apply(o.kind as never, o as never);
}
