/**
 * The wire contract of the control plane: loads the .proto files beside this module and exposes
 * gRPC service definitions and client constructors. Field names are camelCase in TypeScript.
 */
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const here = dirname(fileURLToPath(import.meta.url));

const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [here],
};

function load(file: string): grpc.GrpcObject {
  return grpc.loadPackageDefinition(protoLoader.loadSync(join(here, file), LOADER_OPTIONS));
}

type ServiceCtor = grpc.ServiceClientConstructor;

function service(root: grpc.GrpcObject, path: string): ServiceCtor {
  let node: unknown = root;
  for (const part of path.split(".")) node = (node as Record<string, unknown>)[part];
  if (typeof node !== "function") throw new Error(`service ${path} not found in protos`);
  return node as ServiceCtor;
}

export const IdentityService = service(load("identity.proto"), "tether.identity.v1.Identity");
export const DestinationService = service(load("destination.proto"), "tether.destination.v1.Destination");
export const InboundPoliciesService = service(load("policy.proto"), "tether.policy.v1.InboundPolicies");

/** Timestamp as proto-loader presents google.protobuf.Timestamp with longs as numbers. */
export interface Timestamp {
  seconds: number;
  nanos: number;
}

export function toTimestamp(ms: number): Timestamp {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

export function fromTimestamp(ts: Timestamp | null | undefined): number {
  return ts ? ts.seconds * 1000 + Math.floor(ts.nanos / 1e6) : 0;
}

// ---- tether.identity.v1 ----
export interface CertifyRequest {
  identity: string;
  token: Buffer;
  certificateSigningRequest: Buffer;
}

export interface CertifyResponse {
  leafCertificate: Buffer;
  intermediateCertificates: Buffer[];
  validUntil: Timestamp | null;
}

// ---- tether.destination.v1 ----
export interface GetDestination {
  path: string;
  contextToken: string;
}

export interface WeightedAddr {
  address: string;
  port: number;
  weight: number;
  identity: string;
  protocolHint: "" | "h2" | "http1" | "opaque";
  labels: Record<string, string>;
}

export interface TcpAddress {
  address: string;
  port: number;
}

export type DestinationUpdate =
  | { update: "add"; add: { endpoints: WeightedAddr[] } }
  | { update: "remove"; remove: { addresses: TcpAddress[] } }
  | { update: "noEndpoints"; noEndpoints: { exists: boolean } };

// ---- tether.policy.v1 ----
export interface PortSpec {
  workload: string;
  port: number;
}

export interface Network {
  cidr: string;
  except: string[];
}

export interface Authorization {
  name: string;
  networks: Network[];
  authentication: "unauthenticated" | "mtls";
  identities: string[];
}

export interface HeaderMatch {
  name: string;
  value: string;
  regex: boolean;
}

export interface RouteMatch {
  pathType: "" | "Exact" | "PathPrefix" | "RegularExpression";
  path: string;
  method: string;
  headers: HeaderMatch[];
  grpcService: string;
  grpcMethod: string;
  grpcMatchType: "" | "Exact" | "RegularExpression";
}

export interface Route {
  name: string;
  matches: RouteMatch[];
  authorizations: Authorization[];
}

export type ProxyProtocol = "unknown" | "http1" | "http2" | "grpc" | "opaque";

export interface InboundServer {
  name: string;
  protocol: ProxyProtocol;
  authorizations: Authorization[];
  routes: Route[];
  defaultPolicy: string;
  audit: boolean;
}
