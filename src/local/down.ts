/**
 * `tether local down`: removes everything an instance created, from its state record and,
 * defensively, from what the host shows under the instance's names (namespaces and veths named
 * `<instance>-…`, the bridge `<instance>`, FORWARD rules commented `tether-local:<instance>`,
 * processes carrying TETHER_LOCAL_INSTANCE=<instance> or living in its namespaces). Idempotent:
 * anything already gone counts as removed. Works after a crash of the runner: the record is
 * written before each thing is created.
 */
import { LocalMeshError } from "./errors.js";
import { run, runAllowingFailure } from "./command.js";
import { parseIptablesSave, ruleOption } from "./iptables-save.js";
import { DEFAULT_INSTANCE, INSTANCE_ENV, instancePrefix, netnsPath, ruleComment, validateInstance } from "./names.js";
import { deleteLink, deleteNetns } from "./pods.js";
import { isRunning, pidsInNetns, pidsWithEnv, terminate, type ProcessId } from "./procfs.js";
import { StateStore, type HostRuleEntry } from "./state.js";
import { silentLogger, type Logger } from "./log.js";

export interface DownOptions {
  stateDir: string;
  /** Instance to sweep when the state file is missing (default tether0), or in addition to the recorded one. */
  instance?: string;
  /** How long processes get between SIGTERM and SIGKILL. */
  graceMs?: number;
  logger?: Logger;
}

export interface DownReport {
  instances: string[];
  stoppedRunner: number | undefined;
  processes: number;
  rules: number;
  namespaces: string[];
  links: string[];
}

/** What of an instance is still present on the host. */
export interface Leftovers {
  processes: ProcessId[];
  rules: HostRuleEntry[];
  namespaces: string[];
  links: string[];
}

async function listNetns(): Promise<string[]> {
  const out = await run(["ip", "netns", "list"]);
  return out
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter(Boolean);
}

interface LinkInfo {
  ifname: string;
  kind: string | undefined;
}

async function listLinks(): Promise<LinkInfo[]> {
  const out = await run(["ip", "-j", "-d", "link", "show"]);
  return (JSON.parse(out || "[]") as { ifname: string; linkinfo?: { info_kind?: string } }[]).map((l) => ({
    ifname: l.ifname,
    kind: l.linkinfo?.info_kind,
  }));
}

/** Host iptables rules carrying the instance's comment, in every table. */
async function taggedRules(instance: string): Promise<HostRuleEntry[]> {
  const tag = ruleComment(instance);
  const found: HostRuleEntry[] = [];
  for (const [table, saved] of parseIptablesSave(await run(["iptables-save"]))) {
    for (const rule of saved.rules) {
      if (ruleOption(rule.args, "--comment") === tag) found.push({ kind: "hostRule", table, chain: rule.chain, spec: rule.args });
    }
  }
  return found;
}

/**
 * Scans the host for anything of `instance`. Only bridges named exactly `instance` and veths
 * under its prefix count as links, so a mistyped instance can never take a real interface down.
 */
export async function findLeftovers(instance: string, extraNetns: readonly string[] = []): Promise<Leftovers> {
  validateInstance(instance);
  const prefix = instancePrefix(instance);
  const namespaces = [...new Set([...(await listNetns()).filter((n) => n.startsWith(prefix)), ...extraNetns])];
  const present = new Set(await listNetns());
  const links = (await listLinks())
    .filter((l) => (l.ifname === instance && l.kind === "bridge") || (l.ifname.startsWith(prefix) && l.kind === "veth"))
    .map((l) => l.ifname);
  const processes = [
    ...pidsWithEnv(INSTANCE_ENV, instance),
    ...namespaces.filter((n) => present.has(n)).flatMap((n) => pidsInNetns(netnsPath(n))),
  ];
  return { processes, rules: await taggedRules(instance), namespaces: namespaces.filter((n) => present.has(n)), links };
}

function describe(left: Leftovers): string {
  const parts = [
    left.processes.length ? `processes ${left.processes.map((p) => p.pid).join(", ")}` : "",
    left.rules.length ? `${left.rules.length} iptables rules` : "",
    left.namespaces.length ? `namespaces ${left.namespaces.join(", ")}` : "",
    left.links.length ? `links ${left.links.join(", ")}` : "",
  ];
  return parts.filter(Boolean).join("; ");
}

export function isEmpty(left: Leftovers): boolean {
  return left.processes.length + left.rules.length + left.namespaces.length + left.links.length === 0;
}

async function deleteRule(rule: HostRuleEntry): Promise<boolean> {
  const result = await runAllowingFailure(["iptables", "-w", "-t", rule.table, "-D", rule.chain, ...rule.spec]);
  return result.code === 0;
}

export async function down(options: DownOptions): Promise<DownReport> {
  const log = options.logger ?? silentLogger;
  const graceMs = options.graceMs ?? 3_000;
  let store = StateStore.adopt(options.stateDir);
  const recordedInstance = store?.instance;
  // One failure must not stop the rest; the final scan decides whether anything survived.
  const failures: string[] = [];
  const attempt = async (fn: () => Promise<void>): Promise<boolean> => {
    try {
      await fn();
      return true;
    } catch (err) {
      failures.push(err instanceof Error ? err.message : String(err));
      log.warn({ err }, "removal failed; continuing");
      return false;
    }
  };
  const report: DownReport = { instances: [], stoppedRunner: undefined, processes: 0, rules: 0, namespaces: [], links: [] };

  // A live runner would keep recreating what we remove: stop it first, then re-read its record.
  const owner = store?.owner;
  if (owner && owner.pid !== process.pid && isRunning(owner)) {
    log.info({ pid: owner.pid }, "stopping the runner");
    // Only the runner itself: its group may hold the user's shell pipeline (e.g. `| tee`).
    await terminate([owner], graceMs, false);
    report.stoppedRunner = owner.pid;
    store = StateStore.adopt(options.stateDir);
  }

  // The runner may have removed its record while stopping: keep sweeping the instance it named.
  const instances = [...new Set([recordedInstance, options.instance ?? (recordedInstance ? undefined : DEFAULT_INSTANCE)])].filter(
    (i): i is string => i !== undefined,
  );
  instances.forEach(validateInstance);
  report.instances = instances;
  const recorded = store?.resources() ?? [];
  const recordedNetns = recorded.flatMap((r) => (r.kind === "netns" ? [r.name] : []));

  // 1. Processes: recorded ones, then whatever the sweep finds (children, unrecorded spawns).
  const recordedPids = recorded.flatMap((r) => (r.kind === "process" && r.pid && r.startTime ? [{ pid: r.pid, startTime: r.startTime }] : []));
  for (let round = 0; round < 3; round++) {
    const swept = (await Promise.all(instances.map((i) => findLeftovers(i, recordedNetns)))).flatMap((l) => l.processes);
    const targets = round === 0 ? [...recordedPids, ...swept] : swept;
    const live = [...new Map(targets.filter(isRunning).map((p) => [`${p.pid}/${p.startTime}`, p])).values()];
    if (live.length === 0) break;
    log.info({ pids: live.map((p) => p.pid) }, "stopping processes");
    report.processes += live.length;
    await terminate(live, graceMs);
  }

  // 2. Host iptables rules: recorded, then any carrying the instance's comment.
  for (const rule of recorded) {
    if (rule.kind === "hostRule" && (await deleteRule(rule))) report.rules++;
  }
  for (const instance of instances) {
    for (const rule of await taggedRules(instance)) {
      if (await deleteRule(rule)) report.rules++;
    }
  }

  // 3. Namespaces (each takes its veth peer with it), then links and the bridge.
  const present = new Set(await listNetns());
  const swept = await Promise.all(instances.map((i) => findLeftovers(i, recordedNetns)));
  for (const netns of new Set([...recordedNetns, ...swept.flatMap((l) => l.namespaces)])) {
    if (!present.has(netns)) continue;
    if (await attempt(() => deleteNetns(netns))) report.namespaces.push(netns);
  }
  const links = await listLinks();
  const recordedLinks = recorded.flatMap((r) => (r.kind === "link" || r.kind === "bridge" ? [r.name] : []));
  const wanted = new Set([...recordedLinks, ...swept.flatMap((l) => l.links)]);
  // veths before bridges, so a bridge is empty when it goes
  const ours = links.filter((l) => wanted.has(l.ifname) && (l.kind === "veth" || l.kind === "bridge"));
  for (const link of ours.sort((a, b) => Number(a.kind === "bridge") - Number(b.kind === "bridge"))) {
    if (await attempt(() => deleteLink(link.ifname))) report.links.push(link.ifname);
  }

  // 4. Verify, then drop the record; keep it (and fail) if anything survived.
  // The kernel removes a namespace's veth pair asynchronously: give it a moment before judging.
  let remaining: Leftovers[] = [];
  for (let check = 0; check < 10; check++) {
    remaining = (await Promise.all(instances.map((i) => findLeftovers(i)))).filter((l) => !isEmpty(l));
    if (remaining.length === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (remaining.length > 0) {
    throw new LocalMeshError(
      "LOCAL_DOWN_INCOMPLETE",
      `could not remove ${remaining.map(describe).join("; ")}${failures.length ? ` (${failures.join("; ")})` : ""}; check \`ip netns list\`, \`ip link\`, \`iptables-save\` and run \`tether local down\` again`,
    );
  }
  store?.remove();
  log.info(report, "local mesh removed");
  return report;
}
