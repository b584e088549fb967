/**
 * Mesh-wide constants that several components must agree on (ports, uid, labels, annotations).
 * They are part of the contract in DESIGN.md, so they live beside the protos.
 */
export const PROXY_INBOUND_PORT = 4143;
export const PROXY_OUTBOUND_PORT = 4140;
export const PROXY_ADMIN_PORT = 4191;
export const PROXY_UID = 2102;
/**
 * Node flags of every proxy process (the injected container's NODE_OPTIONS, the local mesh, the
 * bench): a small V8 young generation keeps the proxy's resident memory down under load. See
 * "Footprint" in docs/proxy.md for the measurements.
 */
export const PROXY_NODE_OPTIONS: readonly string[] = ["--max-semi-space-size=1"];
/**
 * The same for a proxy started outside a container (the local mesh, the bench). In the injected
 * container Node sizes V8's heap from the memory limit (256Mi by default: a 256 MB old
 * generation, which V8 then grows conservatively); on a bare machine it sizes it from the
 * machine's memory, and the proxy would hold ~25 MB more under load than it does in a pod.
 */
export const PROXY_UNCONTAINED_NODE_OPTIONS: readonly string[] = [...PROXY_NODE_OPTIONS, "--max-old-space-size=256"];

export const IDENTITY_PORT = 8080;
export const DESTINATION_PORT = 8086;
export const POLICY_PORT = 8090;
export const WEBHOOK_PORT = 8443;
/** Admin ports (/metrics, /ready, /live) of the control-plane processes. */
export const IDENTITY_ADMIN_PORT = 9990;
export const WEBHOOK_ADMIN_PORT = 9995;
export const DESTINATION_ADMIN_PORT = 9996;

/** The release: `tether --version`, the image tag, the proxy-version annotation (= package.json's). */
export const TETHER_VERSION = "0.1.0";

export const PROXY_CONTAINER_NAME = "tether-proxy";
export const INIT_CONTAINER_NAME = "tether-init";

export const INJECT_LABEL = "tether.io/inject";
export const INJECT_ANNOTATION = "tether.io/inject";
export const CONFIG_ANNOTATION_PREFIX = "config.tether.io/";
export const SKIP_INBOUND_PORTS_ANNOTATION = "config.tether.io/skip-inbound-ports";
export const SKIP_OUTBOUND_PORTS_ANNOTATION = "config.tether.io/skip-outbound-ports";
export const OPAQUE_PORTS_ANNOTATION = "config.tether.io/opaque-ports";
export const DEFAULT_INBOUND_POLICY_ANNOTATION = "config.tether.io/default-inbound-policy";

/** The control plane runs in this namespace under these service accounts (their identities). */
export const CONTROL_PLANE_NAMESPACE_NAME = "tether";
export const IDENTITY_SERVICE_ACCOUNT = "tether-identity";
export const DESTINATION_SERVICE_ACCOUNT = "tether-destination";
export const INJECTOR_SERVICE_ACCOUNT = "tether-injector";

/** Header the inbound proxy sets to the verified client identity (after removing any incoming one). */
export const CLIENT_ID_HEADER = "tether-client-id";

export const DEFAULT_INBOUND_POLICIES = [
  "all-authenticated",
  "all-unauthenticated",
  "cluster-authenticated",
  "cluster-unauthenticated",
  "deny",
  "audit",
] as const;
export type DefaultInboundPolicy = (typeof DEFAULT_INBOUND_POLICIES)[number];
