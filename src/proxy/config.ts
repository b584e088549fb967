/**
 * The proxy's settings, read from the environment the injector (or the local mesh runner) sets.
 * Parsing is pure: `readProxyConfig(env)` returns the settings or throws a ProxyConfigError
 * naming every variable that is missing or malformed.
 */
import { numericListProblem, parsePortList, portSet, type PortList, type PortSet } from "../api/ports.js";
import { TetherError, type CodeOf } from "../core/errors.js";
import { DEFAULT_TRUST_DOMAIN, workloadIdentity, type WorkloadIdentity } from "../identity/names.js";
import {
  PROXY_ADMIN_PORT,
  PROXY_INBOUND_PORT,
  PROXY_OUTBOUND_PORT,
  IDENTITY_SERVICE_ACCOUNT,
  DESTINATION_SERVICE_ACCOUNT,
  CONTROL_PLANE_NAMESPACE_NAME,
} from "../api/mesh.js";

export class ProxyConfigError extends TetherError<CodeOf<"ProxyConfigError">> {}

export type BalancerName = "peak-ewma" | "round-robin";

export interface ProxyConfig {
  podName: string;
  podNamespace: string;
  /** The owning workload (e.g. Deployment) name, a metrics label for per-workload stats. */
  workload: string;
  podIp: string | undefined;
  identity: WorkloadIdentity;
  tokenFile: string;
  trustAnchorsFile: string;
  identityAddr: string;
  /** The identity the CA must prove (SNI / server identity check). */
  identityServerName: WorkloadIdentity;
  destinationAddr: string;
  policyAddr: string;
  /** The identity the destination/policy controller must prove. */
  controllerServerName: WorkloadIdentity;
  inboundPort: number;
  outboundPort: number;
  adminPort: number;
  /** Listen address of the admin server; inbound listens on all addresses, outbound on loopback. */
  adminHost: string;
  /** Container ports whose policy is watched from start-up (readiness waits for them). */
  inboundPorts: number[];
  opaquePorts: PortSet;
  balancer: BalancerName;
  /** Detection timeout: a client that sends nothing for this long is treated as opaque TCP. */
  detectTimeoutMs: number;
  /** How long a new connection waits for discovery or policy before failing (closed). */
  controlPlaneWaitMs: number;
  logLevel: string;
}

export const ENV = {
  podName: "TETHER_POD_NAME",
  podNamespace: "TETHER_POD_NAMESPACE",
  podIp: "TETHER_POD_IP",
  workload: "TETHER_WORKLOAD",
  serviceAccount: "TETHER_SERVICE_ACCOUNT",
  trustDomain: "TETHER_TRUST_DOMAIN",
  tokenFile: "TETHER_TOKEN_FILE",
  trustAnchorsFile: "TETHER_TRUST_ANCHORS_FILE",
  identityAddr: "TETHER_IDENTITY_ADDR",
  destinationAddr: "TETHER_DESTINATION_ADDR",
  policyAddr: "TETHER_POLICY_ADDR",
  inboundPort: "TETHER_INBOUND_LISTEN_PORT",
  outboundPort: "TETHER_OUTBOUND_LISTEN_PORT",
  adminPort: "TETHER_ADMIN_LISTEN_PORT",
  adminHost: "TETHER_ADMIN_LISTEN_HOST",
  inboundPorts: "TETHER_INBOUND_PORTS",
  opaquePorts: "TETHER_OPAQUE_PORTS",
  balancer: "TETHER_BALANCER",
  detectTimeoutMs: "TETHER_DETECT_TIMEOUT_MS",
  controlPlaneWaitMs: "TETHER_CONTROL_PLANE_WAIT_MS",
  logLevel: "TETHER_LOG_LEVEL",
} as const;


/** "web-7d4b9c8f6-x2x9z" -> "web": strips the ReplicaSet hash and pod suffix when present. */
export function workloadFromPodName(pod: string): string {
  const m = /^(.+)-[a-z0-9]{5,10}-[a-z0-9]{5}$/.exec(pod);
  return m ? m[1]! : pod;
}

export function readProxyConfig(env: Record<string, string | undefined>): ProxyConfig {
  const problems: string[] = [];
  const required = (name: string): string => {
    const value = env[name]?.trim();
    if (!value) problems.push(`${name} is not set`);
    return value ?? "";
  };
  const port = (name: string, fallback: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0 || n > 65535) problems.push(`${name}=${raw} is not a port number`);
    return n;
  };
  // The injector writes numbers only (it resolves container port names itself).
  const portList = (name: string): PortList => {
    const list = parsePortList(env[name] ?? "");
    const problem = numericListProblem(list);
    if (problem) problems.push(`${name}: ${problem}`);
    return list;
  };
  /** The ports whose policy is watched from start-up: single ports (one per container port). */
  const singlePorts = (name: string): number[] => {
    const { ranges } = portList(name);
    if (ranges.some((r) => r.low !== r.high)) problems.push(`${name}: lists container ports, one by one, not ranges`);
    return ranges.map((r) => r.low);
  };
  const millis = (name: string, fallback: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0) problems.push(`${name}=${raw} is not a duration in milliseconds`);
    return n;
  };

  const podName = required(ENV.podName);
  const podNamespace = required(ENV.podNamespace);
  const serviceAccount = required(ENV.serviceAccount);
  const trustDomain = env[ENV.trustDomain]?.trim() || DEFAULT_TRUST_DOMAIN;
  const balancer = (env[ENV.balancer]?.trim() || "peak-ewma") as BalancerName;
  if (balancer !== "peak-ewma" && balancer !== "round-robin") {
    problems.push(`${ENV.balancer}=${balancer} is not a balancer (peak-ewma or round-robin)`);
  }
  const config = {
    podName,
    podNamespace,
    podIp: env[ENV.podIp]?.trim() || undefined,
    workload: env[ENV.workload]?.trim() || workloadFromPodName(podName),
    tokenFile: required(ENV.tokenFile),
    trustAnchorsFile: required(ENV.trustAnchorsFile),
    identityAddr: required(ENV.identityAddr),
    destinationAddr: required(ENV.destinationAddr),
    policyAddr: env[ENV.policyAddr]?.trim() || env[ENV.destinationAddr]?.trim() || "",
    inboundPort: port(ENV.inboundPort, PROXY_INBOUND_PORT),
    outboundPort: port(ENV.outboundPort, PROXY_OUTBOUND_PORT),
    adminPort: port(ENV.adminPort, PROXY_ADMIN_PORT),
    adminHost: env[ENV.adminHost]?.trim() || "0.0.0.0",
    inboundPorts: singlePorts(ENV.inboundPorts),
    opaquePorts: portSet(portList(ENV.opaquePorts)),
    balancer,
    detectTimeoutMs: millis(ENV.detectTimeoutMs, 1000),
    controlPlaneWaitMs: millis(ENV.controlPlaneWaitMs, 3000),
    logLevel: env[ENV.logLevel]?.trim() || "info",
  };
  let identity: WorkloadIdentity | undefined;
  let identityServerName: WorkloadIdentity | undefined;
  let controllerServerName: WorkloadIdentity | undefined;
  if (problems.length === 0) {
    try {
      identity = workloadIdentity(serviceAccount, podNamespace, trustDomain);
      identityServerName = workloadIdentity(IDENTITY_SERVICE_ACCOUNT, CONTROL_PLANE_NAMESPACE_NAME, trustDomain);
      controllerServerName = workloadIdentity(DESTINATION_SERVICE_ACCOUNT, CONTROL_PLANE_NAMESPACE_NAME, trustDomain);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  if (problems.length > 0 || !identity || !identityServerName || !controllerServerName) {
    throw new ProxyConfigError(
      "PROXY_CONFIG_INVALID",
      `the proxy cannot start: ${problems.join("; ")}. These variables are set by the tether injector; check the pod's tether-proxy container env.`,
    );
  }
  return { ...config, identity, identityServerName, controllerServerName };
}
