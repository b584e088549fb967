/**
 * What the injector needs to know about the installation (image, trust domain, control-plane
 * addresses, defaults), and the names it writes into pods. `tether install` renders the same
 * settings into the injector's Deployment, so the manifests and the injector agree.
 */
import { DEFAULT_TRUST_DOMAIN, CONTROL_PLANE_NAMESPACE } from "../identity/names.js";
import { DESTINATION_PORT, IDENTITY_PORT, POLICY_PORT, TETHER_VERSION, type DefaultInboundPolicy } from "../api/mesh.js";

export const DEFAULT_IMAGE = `ghcr.io/tether-mesh/tether:${TETHER_VERSION}`;

/** Annotation the injector writes on every pod it injects (its value is the proxy version). */
export const PROXY_VERSION_ANNOTATION = "tether.io/proxy-version";
/** Label on injected pods; lets `tether check` and operators select meshed pods. */
export const CONTROL_PLANE_NS_LABEL = "tether.io/control-plane-ns";

/** Per-pod (or per-namespace) overrides of the install defaults. */
export const PROXY_CPU_REQUEST_ANNOTATION = "config.tether.io/proxy-cpu-request";
export const PROXY_CPU_LIMIT_ANNOTATION = "config.tether.io/proxy-cpu-limit";
export const PROXY_MEMORY_REQUEST_ANNOTATION = "config.tether.io/proxy-memory-request";
export const PROXY_MEMORY_LIMIT_ANNOTATION = "config.tether.io/proxy-memory-limit";
export const PROXY_LOG_LEVEL_ANNOTATION = "config.tether.io/proxy-log-level";

/** trust-manager (or the operator) publishes the trust anchors under this ConfigMap name and key in every meshed namespace. */
export const TRUST_ANCHORS_CONFIGMAP = "tether-identity-trust-roots";
export const TRUST_ANCHORS_KEY = "ca-bundle.crt";

/** Volumes and mount paths the injector adds. */
export const TOKEN_VOLUME = "tether-identity-token";
export const TOKEN_DIR = "/var/run/secrets/tether.io/serviceaccount";
export const TOKEN_FILE = `${TOKEN_DIR}/token`;
export const ANCHORS_VOLUME = "tether-trust-anchors";
export const ANCHORS_DIR = "/var/run/tether/trust-anchors";
export const ANCHORS_FILE = `${ANCHORS_DIR}/${TRUST_ANCHORS_KEY}`;
/** iptables takes a lock file under /run; the init container's root filesystem is read-only. */
export const XTABLES_LOCK_VOLUME = "tether-init-xtables-lock";

/** Namespaces never injected whatever their labels say. */
export const NEVER_INJECTED_NAMESPACES = ["kube-system", "kube-public", "kube-node-lease"] as const;

export interface ProxyResources {
  cpuRequest: string;
  cpuLimit: string;
  memoryRequest: string;
  memoryLimit: string;
}

export interface InjectionSettings {
  image: string;
  imagePullPolicy: "Always" | "IfNotPresent" | "Never";
  trustDomain: string;
  controlPlaneNamespace: string;
  /** DNS suffix of Services (svc.<clusterDomain>). */
  clusterDomain: string;
  defaultInboundPolicy: DefaultInboundPolicy;
  proxyResources: ProxyResources;
  /** Lifetime of the projected token the proxy presents to the CA (kubelet refreshes it at 80%). */
  tokenExpirationSeconds: number;
  proxyLogLevel: string;
  /** Makes the app containers wait (postStart hook on the proxy) until the proxy is ready. */
  awaitProxy: boolean;
  /** Also intercept IPv6 (ip6tables). Required on dual-stack clusters: otherwise IPv6 traffic bypasses the proxy. */
  ipv6: boolean;
}

export const DEFAULT_PROXY_RESOURCES: ProxyResources = {
  cpuRequest: "100m",
  cpuLimit: "1",
  memoryRequest: "64Mi",
  memoryLimit: "256Mi",
};

export function defaultInjectionSettings(overrides: Partial<InjectionSettings> = {}): InjectionSettings {
  return {
    image: DEFAULT_IMAGE,
    imagePullPolicy: "IfNotPresent",
    trustDomain: DEFAULT_TRUST_DOMAIN,
    controlPlaneNamespace: CONTROL_PLANE_NAMESPACE,
    clusterDomain: "cluster.local",
    defaultInboundPolicy: "all-authenticated",
    proxyResources: { ...DEFAULT_PROXY_RESOURCES },
    tokenExpirationSeconds: 3600,
    proxyLogLevel: "info",
    awaitProxy: true,
    ipv6: false,
    ...overrides,
  };
}

export function controlPlaneAddresses(s: InjectionSettings): { identity: string; destination: string; policy: string } {
  const svc = (name: string, port: number) => `${name}.${s.controlPlaneNamespace}.svc.${s.clusterDomain}:${port}`;
  return {
    identity: svc("tether-identity", IDENTITY_PORT),
    destination: svc("tether-destination", DESTINATION_PORT),
    policy: svc("tether-destination", POLICY_PORT),
  };
}
