/**
 * A pod of the local mesh: a network namespace with `lo` up, one veth pair to the bridge (`eth0`
 * inside), its own address from the pod subnet and a default route via the bridge (so a
 * connection to a Service VIP gets routed far enough for the pod's nat OUTPUT rules to rewrite it).
 */
import { LocalMeshError } from "./errors.js";
import { run, runAllowingFailure } from "./command.js";
import { netnsName, netnsPath, validatePodName, vethName } from "./names.js";
import { pidsInNetns, terminate } from "./procfs.js";
import { spawnTracked, wrapArgv, type SpawnOptions, type TrackedProcess } from "./processes.js";
import type { HostNetwork } from "./network.js";
import type { LinkEntry, NetnsEntry, ProcessEntry } from "./state.js";

export interface Pod {
  readonly name: string;
  readonly netns: string;
  readonly ip: string;
  /** Host end of the veth pair. */
  readonly hostLink: string;
  readonly host: HostNetwork;
}

export async function createPod(host: HostNetwork, name: string): Promise<Pod> {
  const { state } = host;
  validatePodName(name);
  if (state.pods()[name]) {
    throw new LocalMeshError("LOCAL_POD_EXISTS", `pod ${name} already exists; delete it first or pick another name`);
  }
  const netns = netnsName(state.instance, name);
  const hostLink = vethName(state.instance, state.takeLinkIndex());
  const ip = host.allocatePodIp();
  const entries: [NetnsEntry, LinkEntry] = [
    { kind: "netns", name: netns },
    { kind: "link", name: hostLink },
  ];
  state.record(entries, { name, record: { netns, link: hostLink, ip } });
  const pod: Pod = { name, netns, ip, hostLink, host };
  try {
    await run(["ip", "netns", "add", netns]);
    await run(["ip", "-batch", "-"], {
      input: [`link add ${hostLink} type veth peer name eth0 netns ${netns}`, `link set ${hostLink} master ${host.bridge} up`, ""].join("\n"),
    });
    await run(["ip", "-n", netns, "-batch", "-"], {
      input: [
        "link set lo up",
        `addr add ${ip}/${host.prefix} dev eth0`,
        "link set eth0 up",
        `route add default via ${host.gatewayIp} dev eth0`,
        "",
      ].join("\n"),
    });
    // As container runtimes do: apps running as non-root may bind low ports inside their pod.
    // /proc/sys/net shows the namespace of the writer; sh rather than sysctl(8), which procps may lack.
    await run(["sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_unprivileged_port_start"], { netns });
  } catch (err) {
    await removePodResources(host, pod).catch(() => {});
    throw err;
  }
  return pod;
}

/** Stops every process in the pod, then removes its namespace (which takes the veth pair with it). */
export async function deletePod(pod: Pod, graceMs = 3_000): Promise<void> {
  await removePodResources(pod.host, pod, graceMs);
}

async function removePodResources(host: HostNetwork, pod: Pod, graceMs = 3_000): Promise<void> {
  const { state } = host;
  const recorded = state
    .resources()
    .filter((r): r is ProcessEntry => r.kind === "process" && r.netns === pod.netns);
  const tracked = recorded.flatMap((r) => (r.pid && r.startTime ? [{ pid: r.pid, startTime: r.startTime }] : []));
  await terminate([...tracked, ...pidsInNetns(netnsPath(pod.netns))], graceMs);
  const leftover = pidsInNetns(netnsPath(pod.netns));
  if (leftover.length > 0) {
    throw new LocalMeshError("LOCAL_COMMAND_FAILED", `processes ${leftover.map((p) => p.pid).join(", ")} in pod ${pod.name} survived SIGKILL`);
  }
  await deleteNetns(pod.netns);
  await deleteLink(pod.hostLink);
  state.forget([{ kind: "netns", name: pod.netns }, { kind: "link", name: pod.hostLink }, ...recorded], pod.name);
}

/** `ip netns del`, treating an already-missing namespace as done. */
export async function deleteNetns(netns: string): Promise<void> {
  const result = await runAllowingFailure(["ip", "netns", "del", netns]);
  if (result.code !== 0 && !/No such file|not exist/i.test(result.stderr)) {
    throw new LocalMeshError("LOCAL_COMMAND_FAILED", `ip netns del ${netns} failed: ${result.stderr.trim()}`);
  }
}

/** `ip link del`, treating an already-missing link as done (a namespace's removal takes its veth peer). */
export async function deleteLink(name: string): Promise<void> {
  const result = await runAllowingFailure(["ip", "link", "del", "dev", name]);
  if (result.code !== 0 && !/Cannot find device|No such device|does not exist/i.test(result.stderr)) {
    throw new LocalMeshError("LOCAL_COMMAND_FAILED", `ip link del ${name} failed: ${result.stderr.trim()}`);
  }
}

/**
 * Starts `argv` inside the pod's network namespace, optionally as `uid` (the proxy runs as 2102),
 * with stdout/stderr in log files under the state dir. Tracked: `deletePod` and `down` stop it.
 */
export function exec(pod: Pod, argv: readonly string[], options: Omit<SpawnOptions, "netns"> = {}): Promise<TrackedProcess> {
  return spawnTracked(pod.host.state, argv, { logGroup: pod.name, ...options, netns: pod.netns });
}

/**
 * Runs a short command to completion inside the pod (e.g. `tether proxy-init`), as root or
 * `uid`, and returns its stdout; fails on non-zero exit.
 */
export function runIn(pod: Pod, argv: readonly string[], options: { uid?: number; input?: string; timeoutMs?: number } = {}): Promise<string> {
  const full = wrapArgv(argv, options.uid === undefined ? {} : { uid: options.uid });
  return run(full, {
    netns: pod.netns,
    ...(options.input !== undefined ? { input: options.input } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
  });
}
