/**
 * The one interface controllers use to read cluster state: list + watch of the kinds tether cares
 * about, from a cache. Two sources implement it: Kubernetes (informers) and a local folder of YAML.
 */
import type { Namespace, Pod, Secret, Service, ServiceAccount } from "kubernetes-types/core/v1.js";
import type { EndpointSlice } from "kubernetes-types/discovery/v1.js";
import type {
  AuthorizationPolicy,
  GRPCRoute,
  HTTPRoute,
  MeshTLSAuthentication,
  NetworkAuthentication,
  Server,
} from "./policy-resources.js";

export interface ResourceTypes {
  Namespace: Namespace;
  Pod: Pod;
  Service: Service;
  EndpointSlice: EndpointSlice;
  ServiceAccount: ServiceAccount;
  Secret: Secret;
  Server: Server;
  AuthorizationPolicy: AuthorizationPolicy;
  MeshTLSAuthentication: MeshTLSAuthentication;
  NetworkAuthentication: NetworkAuthentication;
  HTTPRoute: HTTPRoute;
  GRPCRoute: GRPCRoute;
}

export type ResourceKind = keyof ResourceTypes;

/** The policy.tether.io kinds (the CRDs in deploy/crds). */
export const POLICY_RESOURCE_KINDS = ["Server", "AuthorizationPolicy", "MeshTLSAuthentication", "NetworkAuthentication"] as const;
/** The Gateway API routes tether reads (those whose parentRef is a Server). */
export const ROUTE_KINDS = ["HTTPRoute", "GRPCRoute"] as const;
/** Every kind the policy controller compiles from, validates and reports status on. */
export const POLICY_KINDS = [...POLICY_RESOURCE_KINDS, ...ROUTE_KINDS] as const;
export type PolicyKind = (typeof POLICY_KINDS)[number];

export const RESOURCE_KINDS: readonly ResourceKind[] = ["Namespace", "Pod", "Service", "EndpointSlice", "ServiceAccount", "Secret", ...POLICY_KINDS];

/** Where each kind lives in the Kubernetes API. */
export const RESOURCE_API: Record<ResourceKind, { group: string; version: string; plural: string; namespaced: boolean }> = {
  Namespace: { group: "", version: "v1", plural: "namespaces", namespaced: false },
  Pod: { group: "", version: "v1", plural: "pods", namespaced: true },
  Service: { group: "", version: "v1", plural: "services", namespaced: true },
  EndpointSlice: { group: "discovery.k8s.io", version: "v1", plural: "endpointslices", namespaced: true },
  ServiceAccount: { group: "", version: "v1", plural: "serviceaccounts", namespaced: true },
  Secret: { group: "", version: "v1", plural: "secrets", namespaced: true },
  Server: { group: "policy.tether.io", version: "v1alpha1", plural: "servers", namespaced: true },
  AuthorizationPolicy: { group: "policy.tether.io", version: "v1alpha1", plural: "authorizationpolicies", namespaced: true },
  MeshTLSAuthentication: { group: "policy.tether.io", version: "v1alpha1", plural: "meshtlsauthentications", namespaced: true },
  NetworkAuthentication: { group: "policy.tether.io", version: "v1alpha1", plural: "networkauthentications", namespaced: true },
  HTTPRoute: { group: "gateway.networking.k8s.io", version: "v1", plural: "httproutes", namespaced: true },
  GRPCRoute: { group: "gateway.networking.k8s.io", version: "v1", plural: "grpcroutes", namespaced: true },
};

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED";

export interface ResourceEvent<K extends ResourceKind = ResourceKind> {
  type: WatchEventType;
  kind: K;
  object: ResourceTypes[K];
}

export type Unsubscribe = () => void;

export interface ClusterState {
  /** Cached objects of a kind, in one namespace or all. */
  list<K extends ResourceKind>(kind: K, namespace?: string): ResourceTypes[K][];
  /** One cached object; `namespace` is ignored for cluster-scoped kinds. */
  get<K extends ResourceKind>(kind: K, namespace: string | undefined, name: string): ResourceTypes[K] | undefined;
  /**
   * Calls `handler` for every later change of `kind` (no replay: call list() after subscribing).
   * A re-list after a lost watch produces the ADDED/MODIFIED/DELETED events that reconcile the cache.
   */
  watch<K extends ResourceKind>(kind: K, handler: (event: ResourceEvent<K>) => void): Unsubscribe;
  /** Resolves once every kind has been listed once. */
  ready(): Promise<void>;
  /** Writes the status of a policy resource (Kubernetes: the status subresource; local: kept in memory). */
  writeStatus(kind: ResourceKind, namespace: string, name: string, status: unknown): Promise<void>;
  close(): Promise<void>;
}

export function objectKey(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}
