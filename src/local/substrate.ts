/**
 * One running instance of the local mesh's network substrate: the state record, the bridge and
 * the pods, with the operations the runner (`tether local up`) composes. Creating it needs root.
 */
import { requireRoot } from "./command.js";
import { down, type DownReport } from "./down.js";
import { DEFAULT_INSTANCE, DEFAULT_POD_SUBNET, DEFAULT_SERVICE_SUBNET, DEFAULT_STATE_DIR } from "./names.js";
import { HostNetwork } from "./network.js";
import { createPod, deletePod, exec, runIn, type Pod } from "./pods.js";
import { spawnTracked, type SpawnOptions, type TrackedProcess } from "./processes.js";
import { syncServices, type ServiceRule, type ServiceSyncPlan } from "./kube-proxy.js";
import { assignServiceIp } from "./service-ips.js";
import { StateStore } from "./state.js";
import { parseCidr } from "./ipv4.js";
import { silentLogger, type Logger } from "./log.js";

export interface SubstrateOptions {
  stateDir?: string;
  /** Bridge name and prefix of every namespace and link (1-9 of [a-z0-9]). */
  instance?: string;
  podSubnet?: string;
  serviceSubnet?: string;
  logger?: Logger;
}

export class LocalSubstrate {
  private readonly pods = new Map<string, Pod>();

  private constructor(
    readonly state: StateStore,
    readonly host: HostNetwork,
    private readonly log: Logger,
  ) {}

  /** Creates the bridge (recording it first); on failure removes whatever was made. */
  static async up(options: SubstrateOptions = {}): Promise<LocalSubstrate> {
    requireRoot("tether local");
    const log = options.logger ?? silentLogger;
    const stateDir = options.stateDir ?? DEFAULT_STATE_DIR;
    const podSubnet = options.podSubnet ?? DEFAULT_POD_SUBNET;
    const serviceSubnet = options.serviceSubnet ?? DEFAULT_SERVICE_SUBNET;
    parseCidr(podSubnet);
    parseCidr(serviceSubnet);
    const state = StateStore.open({ dir: stateDir, instance: options.instance ?? DEFAULT_INSTANCE, podSubnet, serviceSubnet });
    try {
      const host = await HostNetwork.create(state);
      log.info({ bridge: host.bridge, subnet: podSubnet, stateDir }, "bridge up");
      return new LocalSubstrate(state, host, log);
    } catch (err) {
      // Nothing recorded means a pre-check refused (e.g. the bridge name is taken): the names may
      // belong to another live instance, so sweep only when we created something ourselves.
      if (state.resources().length === 0) state.remove();
      else {
        state.close();
        await down({ stateDir, instance: state.instance, logger: log }).catch(() => {});
      }
      throw err;
    }
  }

  get stateDir(): string {
    return this.state.dir;
  }

  async createPod(name: string): Promise<Pod> {
    const pod = await createPod(this.host, name);
    this.pods.set(name, pod);
    this.log.info({ pod: name, ip: pod.ip, netns: pod.netns }, "pod created");
    return pod;
  }

  async deletePod(pod: Pod): Promise<void> {
    await deletePod(pod);
    this.pods.delete(pod.name);
    this.log.info({ pod: pod.name }, "pod deleted");
  }

  pod(name: string): Pod | undefined {
    return this.pods.get(name);
  }

  exec(pod: Pod, argv: readonly string[], options?: Omit<SpawnOptions, "netns">): Promise<TrackedProcess> {
    return exec(pod, argv, options);
  }

  /** Runs a short command to completion in the pod (e.g. `tether proxy-init`). */
  run(pod: Pod, argv: readonly string[], options?: { uid?: number; input?: string; timeoutMs?: number }): Promise<string> {
    return runIn(pod, argv, options);
  }

  /** A tracked process in the host's network namespace (control-plane components). */
  spawnHost(argv: readonly string[], options?: Omit<SpawnOptions, "netns">): Promise<TrackedProcess> {
    return spawnTracked(this.state, argv, options);
  }

  serviceIp(key: string, wanted?: string): string {
    return assignServiceIp(this.state, key, wanted);
  }

  async syncServices(pod: Pod, services: readonly ServiceRule[]): Promise<ServiceSyncPlan> {
    const plan = await syncServices(pod, services);
    for (const r of plan.rejected) this.log.warn({ pod: pod.name, service: r.name, reason: r.reason }, "service left out");
    return plan;
  }

  /** Removes everything (see down.ts); this object is unusable afterwards. */
  async down(graceMs?: number): Promise<DownReport> {
    this.state.close();
    this.pods.clear();
    return down({ stateDir: this.state.dir, instance: this.state.instance, logger: this.log, ...(graceMs !== undefined ? { graceMs } : {}) });
  }
}
