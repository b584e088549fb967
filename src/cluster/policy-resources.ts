/**
 * Shapes of the policy.tether.io/v1alpha1 resources and the Gateway API routes tether reads.
 * The CRD schemas in deploy/crds/ are the authority; these types mirror them.
 */
import type { ObjectMeta, LabelSelector } from "kubernetes-types/meta/v1.js";

export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

interface Resource<Kind extends string, Spec> {
  apiVersion: string;
  kind: Kind;
  metadata: ObjectMeta;
  spec: Spec;
  status?: { conditions?: Condition[] };
}

export type ProxyProtocolName = "unknown" | "HTTP/1" | "HTTP/2" | "gRPC" | "opaque";

export type Server = Resource<
  "Server",
  {
    podSelector: LabelSelector;
    /** A container port number or name. */
    port: number | string;
    proxyProtocol?: ProxyProtocolName;
    /** What happens to requests no authorization allows: "deny" (default) or "audit" (allow, log and count). */
    accessPolicy?: "deny" | "audit";
  }
>;

export interface TargetRef {
  group?: string;
  kind: string;
  name: string;
  namespace?: string;
}

export type AuthorizationPolicy = Resource<
  "AuthorizationPolicy",
  {
    targetRef: TargetRef;
    requiredAuthenticationRefs: TargetRef[];
  }
>;

export type MeshTLSAuthentication = Resource<
  "MeshTLSAuthentication",
  {
    /** Identity names; `*` matches any identity, `*.ns.serviceaccount.identity.tether.td` one label. */
    identities?: string[];
    /** ServiceAccounts (their identity) or Namespaces (every service account in them). */
    identityRefs?: TargetRef[];
  }
>;

export type NetworkAuthentication = Resource<
  "NetworkAuthentication",
  {
    networks: { cidr: string; except?: string[] }[];
  }
>;

export interface ParentRef {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  port?: number;
}

export interface HTTPRouteMatch {
  path?: { type?: "Exact" | "PathPrefix" | "RegularExpression"; value?: string };
  method?: string;
  headers?: { type?: "Exact" | "RegularExpression"; name: string; value: string }[];
}

export type HTTPRoute = Resource<
  "HTTPRoute",
  {
    parentRefs?: ParentRef[];
    rules?: { matches?: HTTPRouteMatch[] }[];
  }
>;

export interface GRPCRouteMatch {
  method?: { type?: "Exact" | "RegularExpression"; service?: string; method?: string };
  headers?: { type?: "Exact" | "RegularExpression"; name: string; value: string }[];
}

export type GRPCRoute = Resource<
  "GRPCRoute",
  {
    parentRefs?: ParentRef[];
    rules?: { matches?: GRPCRouteMatch[] }[];
  }
>;
