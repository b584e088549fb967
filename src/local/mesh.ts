/**
 * The local mesh: the whole of tether on one Linux machine. The control plane (identity CA,
 * destination/policy controller) runs as processes in the host namespace on the bridge address;
 * each pod is a network namespace with the real init rules, the real proxy (uid 2102) and its app.
 * Cluster state is a folder of YAML the controller watches; this runner plays kubelet (pod status,
 * readiness) and kube-controller-manager (EndpointSlices), and kube-proxy for unmeshed pods.
 */
import { chmod, mkdir, rename, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Namespace, Pod as KubePod, Service, ServiceAccount } from "kubernetes-types/core/v1.js";
import { stringify } from "yaml";
import { PROXY_ADMIN_PORT, PROXY_CONTAINER_NAME, PROXY_UNCONTAINED_NODE_OPTIONS, PROXY_UID, IDENTITY_PORT, DESTINATION_PORT, POLICY_PORT, IDENTITY_ADMIN_PORT, DESTINATION_ADMIN_PORT } from "../api/mesh.js";
import { bootstrapCa, rotateIssuer, type BootstrapPaths } from "../ca/bootstrap.js";
import { endpointSlicesFor } from "../discovery/slice-controller.js";
import { LocalMeshError } from "./errors.js";
import type { Pod as NetnsPod } from "./pods.js";
import type { TrackedProcess } from "./processes.js";
import { ServiceAccountTokenIssuer } from "./service-account-tokens.js";
import { LocalSubstrate } from "./substrate.js";
import { silentLogger, type Logger } from "./log.js";
import { targetsFile } from "./names.js";

const TETHER_BIN = resolve(fileURLToPath(new URL("../../bin/tether.mjs", import.meta.url)));
/** Defined (true) by scripts/build.mjs in the compiled CLI. */
declare const TETHER_BUNDLED: boolean | undefined;
const TRUST_DOMAIN = "cluster.local";

export interface LocalMeshOptions {
  stateDir: string;
  instance: string;
  podSubnet?: string;
  serviceSubnet?: string;
  /** Workload certificate lifetime (the CA's --lifetime), e.g. "24h" or "10s" to watch rotation. */
  certLifetime?: string;
  defaultInboundPolicy?: string;
  logger?: Logger;
}

export interface PodSpec {
  name: string;
  namespace: string;
  serviceAccount: string;
  labels: Record<string, string>;
  /** Runs the proxy (init rules + sidecar) when true. */
  meshed: boolean;
  /** The app's command (argv); TETHER_LOCAL_* env tells it its name and data folder. */
  app?: string[];
  /** The app's own environment (a container's `env` values). */
  appEnv?: Record<string, string>;
  /** The app's working directory (a container's `workingDir`). */
  workingDir?: string;
  /** Container ports of the app: name -> number. */
  ports: Record<string, number>;
  /** Extra proxy env (e.g. TETHER_BALANCER=round-robin). */
  proxyEnv?: Record<string, string>;
  /** The owning workload name (for per-workload stats). */
  workload?: string;
}

export interface ServiceSpec {
  name: string;
  namespace: string;
  selector: Record<string, string>;
  port: number;
  targetPort: number | string;
  portName?: string;
}

interface RunningPod {
  spec: PodSpec;
  netns: NetnsPod;
  ready: boolean;
  terminating: boolean;
  processes: TrackedProcess[];
  dataDir: string;
}

/** Writes a file atomically (the controller's folder watch must never read half a manifest). */
async function writeAtomic(path: string, text: string, mode = 0o644): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, text, { mode });
  await rename(tmp, path);
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new LocalMeshError("LOCAL_MESH_TIMEOUT", `${what} did not happen within ${timeoutMs} ms; see the logs under the state folder`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(500);
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
    socket.once("timeout", () => (socket.destroy(), resolve(false)));
  });
}

/**
 * How a pod's proxy is started: the compiled CLI (dist/tether.mjs, what the image runs) with the
 * proxy's node flags, not tsx. From a checkout, dist/ is rebuilt first if any source it was built
 * from has changed (scripts/build.mjs), so a pod never runs stale code; a compiled tether (the
 * local mesh started from dist/ itself) runs its own build.
 */
async function proxyCommand(): Promise<string[]> {
  let entry: string;
  if (typeof TETHER_BUNDLED !== "undefined" && TETHER_BUNDLED) {
    entry = fileURLToPath(new URL("../../dist/tether.mjs", import.meta.url));
  } else {
    // Through a variable, so that the compiled CLI does not include the build script.
    const script = new URL("../../scripts/build.mjs", import.meta.url).href;
    const build = (await import(script)) as typeof import("../../scripts/build.mjs");
    entry = (await build.ensureBuilt()).tether!;
  }
  return [process.execPath, ...PROXY_UNCONTAINED_NODE_OPTIONS, entry, "proxy"];
}

async function httpOk(url: string): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
  return res.ok;
}

export class LocalMesh {
  readonly pods = new Map<string, RunningPod>();
  readonly services = new Map<string, ServiceSpec & { vip: string }>();
  private readonly namespaces = new Set<string>();
  private readonly serviceAccounts = new Set<string>();
  /** Substrate changes (namespaces, iptables) run one at a time; waiting for readiness does not. */
  private queue: Promise<unknown> = Promise.resolve();
  private constructor(
    readonly substrate: LocalSubstrate,
    readonly options: LocalMeshOptions,
    readonly pki: BootstrapPaths,
    readonly tokens: ServiceAccountTokenIssuer,
    readonly clusterDir: string,
    readonly dataDir: string,
    private readonly log: Logger,
    /** The proxy's argv (see proxyCommand). */
    private readonly proxyArgv: readonly string[],
  ) {}

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => {});
    return next;
  }

  get gateway(): string {
    return this.substrate.host.gatewayIp;
  }

  get identityAddr(): string {
    return `${this.gateway}:${IDENTITY_PORT}`;
  }

  /** Brings up the substrate, the PKI and the control plane; resolves when both are ready. */
  static async start(options: LocalMeshOptions): Promise<LocalMesh> {
    const log = options.logger ?? silentLogger;
    const proxyArgv = await proxyCommand();
    const substrate = await LocalSubstrate.up({
      stateDir: options.stateDir,
      instance: options.instance,
      logger: log,
      ...(options.podSubnet ? { podSubnet: options.podSubnet } : {}),
      ...(options.serviceSubnet ? { serviceSubnet: options.serviceSubnet } : {}),
    });
    try {
      // The proxies run as uid 2102 and read their token and the anchors under the state folder.
      await chmod(options.stateDir, 0o711);
      const dataDir = join(options.stateDir, "mesh");
      const clusterDir = join(dataDir, "cluster");
      await mkdir(clusterDir, { recursive: true, mode: 0o755 });
      await chmod(dataDir, 0o755);
      const pkiDir = join(dataDir, "pki");
      const pki = await bootstrapCa({ dir: pkiDir, trustDomain: TRUST_DOMAIN });
      await chmod(pkiDir, 0o755);
      const tokens = await ServiceAccountTokenIssuer.create();
      await writeAtomic(join(pkiDir, "jwks.json"), JSON.stringify(tokens.jwks()));
      const mesh = new LocalMesh(substrate, options, pki, tokens, clusterDir, dataDir, log, proxyArgv);
      await mesh.startControlPlane();
      return mesh;
    } catch (err) {
      await substrate.down().catch(() => {});
      throw err;
    }
  }

  private async startControlPlane(): Promise<void> {
    const gw = this.gateway;
    const node = process.execPath;
    await this.substrate.spawnHost(
      [
        node, TETHER_BIN, "ca", "serve",
        "--issuer-dir", this.pki.issuerDir,
        "--anchors", this.pki.anchorsPath,
        "--listen", `${gw}:${IDENTITY_PORT}`,
        "--admin-port", String(IDENTITY_ADMIN_PORT),
        "--lifetime", this.options.certLifetime ?? "24h",
        "--token-mode", "jwks",
        "--jwks-file", join(this.dataDir, "pki", "jwks.json"),
        "--token-issuer", this.tokens.issuer,
      ],
      { logName: "identity", logGroup: "control-plane" },
    );
    await waitFor("the identity CA listening", () => tcpOpen(gw, IDENTITY_PORT), 30_000);
    await this.ensureNamespace("tether", false);
    const tokenFile = await this.writeToken("tether", "tether-destination", "tether-destination-0", join(this.dataDir, "control-plane"));
    await this.substrate.spawnHost(
      [
        node, TETHER_BIN, "controller", "serve",
        "--cluster-dir", this.clusterDir,
        "--host", gw,
        "--admin-port", String(DESTINATION_ADMIN_PORT),
        "--identity-addr", this.identityAddr,
        "--token-file", tokenFile,
        "--trust-anchors", this.pki.anchorsPath,
        "--default-inbound-policy", this.options.defaultInboundPolicy ?? "all-authenticated",
        "--cluster-networks", this.substrate.state.podSubnet,
      ],
      { logName: "controller", logGroup: "control-plane" },
    );
    await waitFor("the controller ready", () => httpOk(`http://${gw}:${DESTINATION_ADMIN_PORT}/ready`), 60_000);
    this.log.info({ identity: this.identityAddr }, "control plane ready");
  }

  /** Mints a projected-token-shaped JWT for a pod, readable by its proxy. */
  private async writeToken(namespace: string, serviceAccount: string, podName: string, dir: string): Promise<string> {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const path = join(dir, "token");
    await writeAtomic(path, await this.tokens.mint({ namespace, serviceAccount, podName, lifetimeSeconds: 24 * 3600 }));
    return path;
  }

  /** Publishes an object to the controller's cluster folder as it is (policy resources, routes). */
  applyObject(object: { kind: string; metadata?: { name?: string; namespace?: string } }): Promise<void> {
    return this.writeManifest(object.kind.toLowerCase(), object.metadata?.namespace, object.metadata?.name ?? "unnamed", object);
  }

  private async writeManifest(kind: string, namespace: string | undefined, name: string, object: unknown): Promise<void> {
    await writeAtomic(join(this.clusterDir, `${kind}.${namespace ?? "_"}.${name}.yaml`), stringify(object));
  }

  private async removeManifest(kind: string, namespace: string | undefined, name: string): Promise<void> {
    await rm(join(this.clusterDir, `${kind}.${namespace ?? "_"}.${name}.yaml`), { force: true });
  }

  async ensureNamespace(name: string, meshed: boolean): Promise<void> {
    if (this.namespaces.has(name)) return;
    this.namespaces.add(name);
    const ns: Namespace = { apiVersion: "v1", kind: "Namespace", metadata: { name, labels: meshed ? { "tether.io/inject": "enabled" } : {} } };
    await this.writeManifest("namespace", undefined, name, ns);
  }

  private async ensureServiceAccount(namespace: string, name: string): Promise<void> {
    const key = `${namespace}/${name}`;
    if (this.serviceAccounts.has(key)) return;
    this.serviceAccounts.add(key);
    const sa: ServiceAccount = { apiVersion: "v1", kind: "ServiceAccount", metadata: { name, namespace } };
    await this.writeManifest("serviceaccount", namespace, name, sa);
  }

  /** The Pod object as kubelet would report it. */
  private podObject(pod: RunningPod): KubePod {
    const { spec } = pod;
    const containerPorts = Object.entries(spec.ports).map(([name, containerPort]) => ({ name, containerPort, protocol: "TCP" }));
    return {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: spec.name,
        namespace: spec.namespace,
        labels: spec.labels,
        ...(spec.workload
          ? { ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: `${spec.workload}-local`, uid: spec.workload, controller: true }] }
          : {}),
        ...(pod.terminating ? { deletionTimestamp: new Date().toISOString() } : {}),
      },
      spec: {
        serviceAccountName: spec.serviceAccount,
        containers: [
          { name: "app", image: "local", ports: containerPorts },
          ...(spec.meshed ? [{ name: PROXY_CONTAINER_NAME, image: "local", ports: [{ name: "tether-admin", containerPort: PROXY_ADMIN_PORT }] }] : []),
        ],
      },
      status: {
        phase: "Running",
        podIP: pod.netns.ip,
        podIPs: [{ ip: pod.netns.ip }],
        conditions: [{ type: "Ready", status: pod.ready && !pod.terminating ? "True" : "False" }],
      },
    };
  }

  /** Creates a pod: namespace, init rules and proxy when meshed, the app; waits until it is ready. */
  async addPod(spec: PodSpec): Promise<RunningPod> {
    if (this.pods.has(spec.name)) throw new LocalMeshError("LOCAL_POD_EXISTS", `pod ${spec.name} already exists`);
    await this.ensureNamespace(spec.namespace, spec.meshed);
    await this.ensureServiceAccount(spec.namespace, spec.serviceAccount);
    const netns = await this.serial(() => this.substrate.createPod(spec.name));
    const dataDir = join(this.dataDir, "pods", spec.name);
    await mkdir(dataDir, { recursive: true, mode: 0o755 });
    const pod: RunningPod = { spec, netns, ready: false, terminating: false, processes: [], dataDir };
    this.pods.set(spec.name, pod);
    await this.writeManifest("pod", spec.namespace, spec.name, this.podObject(pod));
    const node = process.execPath;
    if (spec.meshed) {
      await this.serial(() => this.substrate.run(netns, [node, TETHER_BIN, "proxy-init"]));
      const tokenFile = await this.writeToken(spec.namespace, spec.serviceAccount, spec.name, dataDir);
      pod.processes.push(
        await this.substrate.exec(netns, this.proxyArgv, {
          uid: PROXY_UID,
          logName: "proxy",
          logGroup: spec.name,
          env: {
            TETHER_POD_NAME: spec.name,
            TETHER_POD_NAMESPACE: spec.namespace,
            TETHER_POD_IP: netns.ip,
            TETHER_SERVICE_ACCOUNT: spec.serviceAccount,
            TETHER_WORKLOAD: spec.workload ?? spec.name,
            TETHER_TRUST_DOMAIN: TRUST_DOMAIN,
            TETHER_TOKEN_FILE: tokenFile,
            TETHER_TRUST_ANCHORS_FILE: this.pki.anchorsPath,
            TETHER_IDENTITY_ADDR: this.identityAddr,
            TETHER_DESTINATION_ADDR: `${this.gateway}:${DESTINATION_PORT}`,
            TETHER_POLICY_ADDR: `${this.gateway}:${POLICY_PORT}`,
            TETHER_INBOUND_PORTS: Object.values(spec.ports).join(","),
            TETHER_LOG_LEVEL: "info",
            ...spec.proxyEnv,
          },
        }),
      );
    }
    if (spec.app) {
      pod.processes.push(
        await this.substrate.exec(netns, spec.app, {
          logName: "app",
          logGroup: spec.name,
          env: { ...spec.appEnv, TETHER_LOCAL_POD: spec.name, TETHER_LOCAL_POD_DIR: dataDir },
          ...(spec.workingDir ? { cwd: spec.workingDir } : {}),
        }),
      );
    }
    await this.waitReady(pod);
    pod.ready = true;
    await this.writeManifest("pod", spec.namespace, spec.name, this.podObject(pod));
    await this.syncEndpoints();
    this.log.info({ pod: spec.name, ip: netns.ip, meshed: spec.meshed }, "pod ready");
    await this.writeTargets();
    return pod;
  }

  private async waitReady(pod: RunningPod): Promise<void> {
    const ip = pod.netns.ip;
    if (pod.spec.meshed) await waitFor(`proxy of ${pod.spec.name} ready`, () => httpOk(`http://${ip}:${PROXY_ADMIN_PORT}/ready`), 60_000);
    for (const port of Object.values(pod.spec.ports)) {
      // From outside, a meshed pod's port is answered by its inbound proxy even before the app
      // listens, so the app is checked from inside the pod, on loopback (which is not redirected).
      const appListening = pod.spec.meshed
        ? () => this.substrate.run(pod.netns, ["bash", "-c", `exec 3<>/dev/tcp/127.0.0.1/${port}`], { timeoutMs: 2000 }).then(() => true)
        : () => tcpOpen(ip, port);
      await waitFor(`${pod.spec.name}:${port} accepting`, appListening, 60_000);
    }
  }

  /** Takes a pod out: unready first (endpoints drop), then its processes and namespace. */
  async removePod(name: string): Promise<void> {
    const pod = this.pods.get(name);
    if (!pod) return;
    pod.terminating = true;
    await this.writeManifest("pod", pod.spec.namespace, name, this.podObject(pod));
    await this.syncEndpoints();
    // Let every proxy see the endpoint go before the pod stops (what a preStop sleep does in a
    // cluster), then stop the proxy first: it drains (GOAWAY, in-flight requests finish), then the app.
    await new Promise((r) => setTimeout(r, 1500));
    for (const proc of pod.processes) await proc.stop(5000);
    await this.serial(() => this.substrate.deletePod(pod.netns));
    this.pods.delete(name);
    await this.removeManifest("pod", pod.spec.namespace, name);
    await this.syncEndpoints();
    await this.writeTargets();
  }

  async addService(spec: ServiceSpec): Promise<string> {
    const vip = this.substrate.serviceIp(`${spec.namespace}/${spec.name}`);
    this.services.set(`${spec.namespace}/${spec.name}`, { ...spec, vip });
    await this.ensureNamespace(spec.namespace, false);
    const service: Service = {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: spec.name, namespace: spec.namespace },
      spec: {
        clusterIP: vip,
        selector: spec.selector,
        ports: [{ name: spec.portName ?? "grpc", port: spec.port, targetPort: spec.targetPort as number, protocol: "TCP" }],
      },
    };
    await this.writeManifest("service", spec.namespace, spec.name, service);
    await this.syncEndpoints();
    return vip;
  }

  /** Plays the endpoint-slice controller and kube-proxy after any pod or service change. */
  private syncEndpoints(): Promise<void> {
    return this.serial(() => this.writeEndpoints());
  }

  private async writeEndpoints(): Promise<void> {
    const podObjects = [...this.pods.values()].map((p) => this.podObject(p));
    const rules = [];
    for (const svc of this.services.values()) {
      const service: Service = {
        metadata: { name: svc.name, namespace: svc.namespace },
        spec: { clusterIP: svc.vip, selector: svc.selector, ports: [{ name: svc.portName ?? "grpc", port: svc.port, targetPort: svc.targetPort as number, protocol: "TCP" }] },
      };
      const slices = endpointSlicesFor(service, podObjects.filter((p) => p.metadata?.namespace === svc.namespace));
      for (const slice of slices) await this.writeManifest("endpointslice", svc.namespace, slice.metadata!.name!, slice);
      const ready = [...this.pods.values()].filter(
        (p) => p.ready && !p.terminating && p.spec.namespace === svc.namespace && Object.entries(svc.selector).every(([k, v]) => p.spec.labels[k] === v),
      );
      const targetPort = (p: RunningPod) => (typeof svc.targetPort === "number" ? svc.targetPort : p.spec.ports[svc.targetPort] ?? 0);
      rules.push({ name: `${svc.namespace}/${svc.name}`, vip: svc.vip, port: svc.port, endpoints: ready.map((p) => ({ ip: p.netns.ip, port: targetPort(p) })) });
    }
    for (const pod of this.pods.values()) if (!pod.terminating) await this.substrate.syncServices(pod.netns, rules);
  }

  /** The proxies' admin addresses, for `tether stat` and the dashboard. */
  private async writeTargets(): Promise<void> {
    const targets = [...this.pods.values()]
      .filter((p) => p.spec.meshed && p.ready)
      .map((p) => ({ namespace: p.spec.namespace, pod: p.spec.name, workload: p.spec.workload ?? p.spec.name, adminUrl: `http://${p.netns.ip}:${PROXY_ADMIN_PORT}` }));
    await writeAtomic(targetsFile(this.options.stateDir), JSON.stringify({ targets }, null, 2));
  }

  /** Runs a command in a pod to completion (at most `timeoutMs`) and returns its stdout. */
  run(podName: string, argv: string[], timeoutMs = 300_000): Promise<string> {
    const pod = this.pods.get(podName);
    if (!pod) throw new LocalMeshError("LOCAL_POD_UNKNOWN", `no pod named ${podName}`);
    return this.substrate.run(pod.netns, argv, { timeoutMs });
  }

  /** Replaces the issuer with a new one from the same anchor (the CA hot-reloads it). */
  rotateIssuer(): Promise<unknown> {
    return rotateIssuer({ dir: join(this.dataDir, "pki"), trustDomain: TRUST_DOMAIN });
  }

  async stop(): Promise<void> {
    await this.substrate.down();
  }

  static readonly bin = TETHER_BIN;

}
