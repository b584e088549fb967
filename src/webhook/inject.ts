/**
 * The injection decision and patch: a pure function from (pod, namespace, settings) to an
 * RFC 6902 JSON Patch that adds the tether-init init container, the tether-proxy container and
 * their volumes. The webhook sends the patch; `tether inject` applies it to manifests offline.
 *
 * Probes are left as they are (docs/install.md, "Probes"): kubelet probes reach the pod IP, are
 * redirected to the inbound proxy, and the policy controller authorizes the containers' probe
 * paths without mTLS. What cannot work that way (HTTPS probes, tcpSocket probes that the proxy
 * would always accept) is reported as an admission warning.
 */
import type { Container, EnvVar, Namespace, Pod, PodSpec, Probe, Volume } from "kubernetes-types/core/v1.js";
import type { ObjectMeta } from "kubernetes-types/meta/v1.js";
import { TetherError, type CodeOf } from "../core/errors.js";
import { validateServiceAccount } from "../identity/names.js";
import {
  DEFAULT_INBOUND_POLICIES,
  DEFAULT_INBOUND_POLICY_ANNOTATION,
  INIT_CONTAINER_NAME,
  INJECT_ANNOTATION,
  INJECT_LABEL,
  OPAQUE_PORTS_ANNOTATION,
  PROXY_ADMIN_PORT,
  PROXY_CONTAINER_NAME,
  PROXY_INBOUND_PORT,
  PROXY_NODE_OPTIONS,
  PROXY_OUTBOUND_PORT,
  PROXY_UID,
  SKIP_INBOUND_PORTS_ANNOTATION,
  SKIP_OUTBOUND_PORTS_ANNOTATION,
  type DefaultInboundPolicy,
  TETHER_VERSION,
} from "../api/mesh.js";
import { pointer, type PatchOperation } from "./json-patch.js";
import { formatPortRanges, inRanges, listProblem, namedContainerPorts, numericListProblem, parsePortList, type PortRange } from "../api/ports.js";
import {
  ANCHORS_DIR,
  ANCHORS_FILE,
  ANCHORS_VOLUME,
  CONTROL_PLANE_NS_LABEL,
  NEVER_INJECTED_NAMESPACES,
  PROXY_CPU_LIMIT_ANNOTATION,
  PROXY_CPU_REQUEST_ANNOTATION,
  PROXY_LOG_LEVEL_ANNOTATION,
  PROXY_MEMORY_LIMIT_ANNOTATION,
  PROXY_MEMORY_REQUEST_ANNOTATION,
  PROXY_VERSION_ANNOTATION,
  TOKEN_DIR,
  TOKEN_FILE,
  TOKEN_VOLUME,
  TRUST_ANCHORS_CONFIGMAP,
  TRUST_ANCHORS_KEY,
  XTABLES_LOCK_VOLUME,
  controlPlaneAddresses,
  type InjectionSettings,
} from "./settings.js";

/** A pod the injector must refuse (bad annotation, unusable service account, no spec). */
export class InjectionError extends TetherError<CodeOf<"InjectionError">> {}

export type SkipReason =
  | "already-injected"
  | "namespace-not-enabled"
  | "control-plane-namespace"
  | "system-namespace"
  | "host-network"
  | "pod-opted-out";

export interface InjectionInput {
  pod: Pod;
  /** The namespace the pod is created in (a ReplicaSet's pods arrive without metadata.namespace). */
  namespaceName: string;
  namespace: Namespace | undefined;
  settings: InjectionSettings;
  /** `tether inject`: the user asked for this pod explicitly, so the namespace label is not required. */
  explicit?: boolean;
}

export type InjectionResult =
  | { injected: false; reason: SkipReason; message: string }
  | { injected: true; patch: PatchOperation[]; warnings: string[] };

const QUANTITY = /^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$/;
const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"];

/**
 * postStart hook of the proxy: kubelet starts containers in order and waits for postStart, so
 * the app containers (after the proxy) start only once the proxy has an identity and is ready.
 */
const AWAIT_PROXY_SCRIPT =
  `const h=require("node:http"),end=Date.now()+120000;` +
  `function again(){if(Date.now()>end)process.exit(1);setTimeout(poll,250)}` +
  `function poll(){h.get({host:"127.0.0.1",port:${PROXY_ADMIN_PORT},path:"/ready",timeout:1000},` +
  `r=>{r.resume();r.statusCode===200?process.exit(0):again()}).on("error",again)}poll()`;

export function isInjected(pod: Pod): boolean {
  const names = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].map((c) => c.name);
  return (
    names.includes(PROXY_CONTAINER_NAME) ||
    names.includes(INIT_CONTAINER_NAME) ||
    pod.metadata?.annotations?.[PROXY_VERSION_ANNOTATION] !== undefined
  );
}

function skip(reason: SkipReason, message: string): InjectionResult {
  return { injected: false, reason, message };
}

function decide(input: InjectionInput): InjectionResult | undefined {
  const { pod, namespaceName, namespace, settings } = input;
  if (isInjected(pod)) return skip("already-injected", "the pod already has the tether proxy");
  if (namespaceName === settings.controlPlaneNamespace) {
    return skip("control-plane-namespace", `namespace ${namespaceName} holds the tether control plane, which is never injected`);
  }
  if ((NEVER_INJECTED_NAMESPACES as readonly string[]).includes(namespaceName)) {
    return skip("system-namespace", `namespace ${namespaceName} is a Kubernetes system namespace and is never injected`);
  }
  if (pod.spec?.hostNetwork) {
    return skip("host-network", "the pod uses the host network; its traffic cannot be redirected to a per-pod proxy");
  }
  if (pod.metadata?.annotations?.[INJECT_ANNOTATION] === "disabled") {
    return skip("pod-opted-out", `the pod has annotation ${INJECT_ANNOTATION}: disabled`);
  }
  if (!input.explicit && namespace?.metadata?.labels?.[INJECT_LABEL] !== "enabled") {
    return skip("namespace-not-enabled", `namespace ${namespaceName} does not have label ${INJECT_LABEL}=enabled`);
  }
  return undefined;
}

/** A config annotation from the pod, else from its namespace. */
function config(input: InjectionInput, name: string): { value: string; on: string } | undefined {
  const podValue = input.pod.metadata?.annotations?.[name];
  if (podValue !== undefined) return { value: podValue, on: "pod" };
  const nsValue = input.namespace?.metadata?.annotations?.[name];
  if (nsValue !== undefined) return { value: nsValue, on: `namespace ${input.namespaceName}` };
  return undefined;
}

function bad(name: string, on: string, value: string, why: string): InjectionError {
  return new InjectionError(
    "INJECT_BAD_ANNOTATION",
    `annotation ${name}=${JSON.stringify(value)} on the ${on} is invalid: ${why}; fix or remove the annotation`,
  );
}

/**
 * A port-list annotation as ranges. Names of the pod's container ports are allowed where the
 * ports are the pod's own (opaque-ports) and resolved here, so the proxy gets numbers only; a
 * name no container declares names no port, as in discovery.
 */
function portsConfig(input: InjectionInput, name: string, names: "container-port-names" | "numbers-only"): PortRange[] {
  const c = config(input, name);
  if (!c) return [];
  const list = parsePortList(c.value);
  const problem = names === "container-port-names" ? listProblem(list) : numericListProblem(list);
  if (problem) throw bad(name, c.on, c.value, problem);
  const named = namedContainerPorts(input.pod.spec?.containers);
  return [...list.ranges, ...list.names.flatMap((n) => (named.has(n) ? [{ low: named.get(n)!, high: named.get(n)! }] : []))];
}

function quantityConfig(input: InjectionInput, name: string, fallback: string): string {
  const c = config(input, name);
  if (!c) return fallback;
  if (!QUANTITY.test(c.value)) throw bad(name, c.on, c.value, "not a Kubernetes quantity (e.g. 100m, 1, 64Mi)");
  return c.value;
}

function choiceConfig<T extends string>(input: InjectionInput, name: string, choices: readonly T[], fallback: T): T {
  const c = config(input, name);
  if (!c) return fallback;
  if (!(choices as readonly string[]).includes(c.value)) throw bad(name, c.on, c.value, `expected one of ${choices.join(", ")}`);
  return c.value as T;
}

function resources(input: InjectionInput): Container["resources"] {
  const d = input.settings.proxyResources;
  const pick = (entries: [string, string][]) => {
    const kept = entries.filter(([, v]) => v !== "");
    return kept.length ? Object.fromEntries(kept) : undefined;
  };
  const requests = pick([
    ["cpu", quantityConfig(input, PROXY_CPU_REQUEST_ANNOTATION, d.cpuRequest)],
    ["memory", quantityConfig(input, PROXY_MEMORY_REQUEST_ANNOTATION, d.memoryRequest)],
  ]);
  const limits = pick([
    ["cpu", quantityConfig(input, PROXY_CPU_LIMIT_ANNOTATION, d.cpuLimit)],
    ["memory", quantityConfig(input, PROXY_MEMORY_LIMIT_ANNOTATION, d.memoryLimit)],
  ]);
  return { ...(requests ? { requests } : {}), ...(limits ? { limits } : {}) };
}

/** Resolves a probe's port (number or container port name) within its container. */
function probePort(container: Container, port: number | string | undefined): number | undefined {
  if (typeof port === "number") return port;
  if (port === undefined) return undefined;
  if (/^\d+$/.test(port)) return Number(port);
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

function probeWarnings(spec: PodSpec, skipped: PortRange[]): string[] {
  const warnings: string[] = [];
  for (const container of spec.containers ?? []) {
    const probes: [string, Probe | undefined][] = [
      ["liveness", container.livenessProbe],
      ["readiness", container.readinessProbe],
      ["startup", container.startupProbe],
    ];
    for (const [kind, probe] of probes) {
      if (!probe) continue;
      const port = probePort(container, probe.httpGet?.port ?? probe.tcpSocket?.port);
      if (port === undefined || inRanges(port, skipped)) continue;
      if (probe.httpGet?.scheme === "HTTPS") {
        warnings.push(
          `container ${container.name}: the HTTPS ${kind} probe on port ${port} cannot pass through the tether proxy (it expects mTLS from meshed clients); add the port to ${SKIP_INBOUND_PORTS_ANNOTATION} or probe over HTTP`,
        );
      } else if (probe.tcpSocket) {
        warnings.push(
          `container ${container.name}: the tcpSocket ${kind} probe on port ${port} is accepted by the tether proxy even when the app is down; prefer an httpGet or grpc probe`,
        );
      }
    }
  }
  return warnings;
}

function inboundPorts(spec: PodSpec, skipped: PortRange[]): string {
  const ports = new Set<number>();
  for (const c of spec.containers ?? []) {
    for (const p of c.ports ?? []) {
      if ((p.protocol ?? "TCP") === "TCP" && p.containerPort !== PROXY_ADMIN_PORT && !inRanges(p.containerPort, skipped)) {
        ports.add(p.containerPort);
      }
    }
  }
  return [...ports].sort((a, b) => a - b).join(",");
}

function proxyEnv(input: InjectionInput, spec: PodSpec, skippedInbound: PortRange[]): EnvVar[] {
  const s = input.settings;
  const addr = controlPlaneAddresses(s);
  const field = (name: string, fieldPath: string): EnvVar => ({ name, valueFrom: { fieldRef: { fieldPath } } });
  const policy = choiceConfig<DefaultInboundPolicy>(input, DEFAULT_INBOUND_POLICY_ANNOTATION, DEFAULT_INBOUND_POLICIES, s.defaultInboundPolicy);
  return [
    field("TETHER_POD_NAME", "metadata.name"),
    field("TETHER_POD_NAMESPACE", "metadata.namespace"),
    field("TETHER_POD_IP", "status.podIP"),
    field("TETHER_SERVICE_ACCOUNT", "spec.serviceAccountName"),
    { name: "TETHER_TRUST_DOMAIN", value: s.trustDomain },
    // Kubernetes expands $(VAR) from variables defined earlier in the list.
    {
      name: "TETHER_IDENTITY_NAME",
      value: `$(TETHER_SERVICE_ACCOUNT).$(TETHER_POD_NAMESPACE).serviceaccount.identity.tether.${s.trustDomain}`,
    },
    { name: "TETHER_TOKEN_FILE", value: TOKEN_FILE },
    { name: "TETHER_TRUST_ANCHORS_FILE", value: ANCHORS_FILE },
    { name: "TETHER_IDENTITY_ADDR", value: addr.identity },
    { name: "TETHER_DESTINATION_ADDR", value: addr.destination },
    { name: "TETHER_POLICY_ADDR", value: addr.policy },
    { name: "TETHER_INBOUND_PORTS", value: inboundPorts(spec, skippedInbound) },
    { name: "TETHER_OPAQUE_PORTS", value: formatPortRanges(portsConfig(input, OPAQUE_PORTS_ANNOTATION, "container-port-names")) },
    { name: "TETHER_DEFAULT_INBOUND_POLICY", value: policy },
    { name: "TETHER_LOG_LEVEL", value: choiceConfig(input, PROXY_LOG_LEVEL_ANNOTATION, LOG_LEVELS, s.proxyLogLevel) },
    // V8 flags for the proxy's footprint; through the environment, so the image's entrypoint
    // (however it runs tether) stays the one way in.
    { name: "NODE_OPTIONS", value: PROXY_NODE_OPTIONS.join(" ") },
  ];
}

function proxyContainer(input: InjectionInput, spec: PodSpec, skippedInbound: PortRange[]): Container {
  const s = input.settings;
  const admin = (path: string) => ({ httpGet: { path, port: PROXY_ADMIN_PORT } });
  return {
    name: PROXY_CONTAINER_NAME,
    image: s.image,
    imagePullPolicy: s.imagePullPolicy,
    args: ["proxy"],
    env: proxyEnv(input, spec, skippedInbound),
    ports: [
      { name: "tether-inbound", containerPort: PROXY_INBOUND_PORT },
      { name: "tether-outbound", containerPort: PROXY_OUTBOUND_PORT },
      { name: "tether-admin", containerPort: PROXY_ADMIN_PORT },
    ],
    livenessProbe: { ...admin("/live"), initialDelaySeconds: 10, periodSeconds: 10, failureThreshold: 3 },
    readinessProbe: { ...admin("/ready"), periodSeconds: 5, failureThreshold: 2 },
    ...(s.awaitProxy ? { lifecycle: { postStart: { exec: { command: ["node", "-e", AWAIT_PROXY_SCRIPT] } } } } : {}),
    resources: resources(input),
    securityContext: {
      runAsUser: PROXY_UID,
      runAsGroup: PROXY_UID,
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
    volumeMounts: [
      { name: TOKEN_VOLUME, mountPath: TOKEN_DIR, readOnly: true },
      { name: ANCHORS_VOLUME, mountPath: ANCHORS_DIR, readOnly: true },
    ],
    terminationMessagePolicy: "FallbackToLogsOnError",
  };
}

function initContainer(input: InjectionInput, skippedInbound: PortRange[], skippedOutbound: PortRange[]): Container {
  const s = input.settings;
  // The admin port is never redirected: kubelet probes the proxy itself there.
  const skipIn = formatPortRanges([{ low: PROXY_ADMIN_PORT, high: PROXY_ADMIN_PORT }, ...skippedInbound]);
  const skipOut = formatPortRanges(skippedOutbound);
  return {
    name: INIT_CONTAINER_NAME,
    image: s.image,
    imagePullPolicy: s.imagePullPolicy,
    args: [
      "proxy-init",
      "--proxy-uid",
      String(PROXY_UID),
      "--inbound-port",
      String(PROXY_INBOUND_PORT),
      "--outbound-port",
      String(PROXY_OUTBOUND_PORT),
      "--skip-inbound-ports",
      skipIn,
      ...(skipOut ? ["--skip-outbound-ports", skipOut] : []),
      ...(s.ipv6 ? ["--ipv6"] : []),
    ],
    resources: { requests: { cpu: "10m", memory: "64Mi" }, limits: { cpu: "500m", memory: "256Mi" } },
    securityContext: {
      // iptables needs root with NET_ADMIN and NET_RAW, and nothing else.
      runAsUser: 0,
      runAsGroup: 0,
      runAsNonRoot: false,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { add: ["NET_ADMIN", "NET_RAW"], drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
    volumeMounts: [{ name: XTABLES_LOCK_VOLUME, mountPath: "/run" }],
    terminationMessagePolicy: "FallbackToLogsOnError",
  };
}

function volumes(s: InjectionSettings): Volume[] {
  return [
    {
      name: TOKEN_VOLUME,
      projected: {
        sources: [
          { serviceAccountToken: { audience: "identity.tether.io", expirationSeconds: s.tokenExpirationSeconds, path: "token" } },
        ],
      },
    },
    { name: ANCHORS_VOLUME, configMap: { name: TRUST_ANCHORS_CONFIGMAP, items: [{ key: TRUST_ANCHORS_KEY, path: TRUST_ANCHORS_KEY }] } },
    { name: XTABLES_LOCK_VOLUME, emptyDir: {} },
  ];
}

/** Adds `entries` to the map at metadata.<field>, creating the map when the pod has none. */
function addToMap(ops: PatchOperation[], meta: ObjectMeta | undefined, field: "labels" | "annotations", entries: Record<string, string>) {
  if (!meta?.[field]) {
    ops.push({ op: "add", path: pointer("metadata", field), value: entries });
    return;
  }
  for (const [k, v] of Object.entries(entries)) ops.push({ op: "add", path: pointer("metadata", field, k), value: v });
}

/** Appends to a list at spec.<field>, creating it when absent; `first` inserts at the front instead. */
function addToList(ops: PatchOperation[], spec: PodSpec, field: "initContainers" | "containers" | "volumes", items: unknown[], first = false) {
  const existing = spec[field];
  if (!existing || existing.length === 0) {
    ops.push({ op: "add", path: pointer("spec", field), value: items });
    return;
  }
  items.forEach((item, i) => ops.push({ op: "add", path: first ? pointer("spec", field, i) : pointer("spec", field, "-"), value: item }));
}

/** Decides whether the pod is injected and, if so, builds the patch. Throws InjectionError for pods that must be refused. */
export function planInjection(input: InjectionInput): InjectionResult {
  const skipped = decide(input);
  if (skipped) return skipped;
  const { pod, settings } = input;
  const spec = pod.spec;
  if (!spec || !Array.isArray(spec.containers) || spec.containers.length === 0) {
    throw new InjectionError("INJECT_NO_CONTAINERS", "the pod has no spec.containers; nothing to inject into");
  }
  // The patch adds to these: a manifest written by hand (tether inject) may have them in any shape.
  for (const [where, value, kind] of [
    ["metadata", pod.metadata, "map"],
    ["spec.initContainers", spec.initContainers, "list"],
    ["spec.volumes", spec.volumes, "list"],
    ["metadata.labels", pod.metadata?.labels, "map"],
    ["metadata.annotations", pod.metadata?.annotations, "map"],
  ] as const) {
    if (value === undefined || value === null) continue;
    if (kind === "list" ? !Array.isArray(value) : typeof value !== "object" || Array.isArray(value)) {
      throw new InjectionError("INJECT_MALFORMED_POD", `the pod's ${where} is not a ${kind === "list" ? "list" : "map"}; fix the manifest`);
    }
  }
  const serviceAccount = spec.serviceAccountName || "default";
  try {
    validateServiceAccount(serviceAccount);
  } catch (err) {
    throw new InjectionError("INJECT_BAD_SERVICE_ACCOUNT", `${(err as Error).message}; run the pod under another service account or opt it out with ${INJECT_ANNOTATION}: disabled`);
  }
  const skippedInbound = portsConfig(input, SKIP_INBOUND_PORTS_ANNOTATION, "numbers-only");
  const skippedOutbound = portsConfig(input, SKIP_OUTBOUND_PORTS_ANNOTATION, "numbers-only");

  const ops: PatchOperation[] = [];
  if (!pod.metadata) ops.push({ op: "add", path: "/metadata", value: {} });
  addToMap(ops, pod.metadata, "annotations", { [PROXY_VERSION_ANNOTATION]: TETHER_VERSION });
  addToMap(ops, pod.metadata, "labels", { [CONTROL_PLANE_NS_LABEL]: settings.controlPlaneNamespace });
  // Last among init containers, so the pod's own init containers keep plain network access.
  addToList(ops, spec, "initContainers", [initContainer(input, skippedInbound, skippedOutbound)]);
  // First among containers, so it starts (and, with the postStart hook, is ready) before the app.
  addToList(ops, spec, "containers", [proxyContainer(input, spec, skippedInbound)], true);
  addToList(ops, spec, "volumes", volumes(settings));
  return { injected: true, patch: ops, warnings: probeWarnings(spec, skippedInbound) };
}
