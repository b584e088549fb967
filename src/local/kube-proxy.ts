/**
 * Services without the mesh, the way kube-proxy's iptables mode does it: inside each pod's network
 * namespace, nat OUTPUT jumps to chain TETHER_LOCAL_SERVICES, which DNATs VIP:port to one
 * endpoint chosen per connection (`-m statistic --mode random`, probability 1/(n-i) for the i-th
 * of n endpoints, so each gets 1/n). A long-lived gRPC connection therefore sticks to one pod:
 * the "without the mesh" baseline. A Service with no endpoints is rejected in filter OUTPUT
 * (connection refused at once rather than a timeout), as kube-proxy does.
 *
 * Coexistence with the proxy: `tether proxy-init` adds nat OUTPUT -> TETHER_OUTPUT, which
 * REDIRECTs every uid but 2102 to :4140. That jump must come first, or an app's connection to a
 * VIP would be DNATed to one pod before the proxy could see it (and its SO_ORIGINAL_DST would be a
 * pod, not the Service). Every sync therefore moves our jump after the last TETHER_OUTPUT jump.
 * The proxy itself (uid 2102) dials pod IPs, which TETHER_LOCAL_SERVICES leaves alone.
 *
 * Rendering is pure (planServiceSync); syncServices applies it atomically with iptables-restore.
 */
import { runIn, type Pod } from "./pods.js";
import { run } from "./command.js";
import { cidrContains, parseCidr, parseIpv4, type Cidr } from "./ipv4.js";
import { SERVICES_CHAIN } from "./names.js";
import { parseIptablesSave, ruleOption, type SavedTable } from "./iptables-save.js";

/** The proxy's outbound chain (installed by `tether proxy-init`), which must precede ours. */
export const PROXY_OUTPUT_CHAIN = "TETHER_OUTPUT";

export interface ServiceEndpoint {
  ip: string;
  port: number;
}

export interface ServiceRule {
  /** For humans and rule comments, e.g. `default/server:grpc`. */
  name: string;
  vip: string;
  port: number;
  /** Current ready endpoints; empty means connections are refused. */
  endpoints: readonly ServiceEndpoint[];
}

export interface ServiceRanges {
  /** VIPs must lie here (10.248.0.0/16 by default). */
  serviceSubnet: string;
  /** Endpoints must lie here: DNAT never sends traffic outside the local mesh. */
  podSubnet: string;
}

export interface RejectedService {
  name: string;
  reason: string;
}

export interface ServiceSyncPlan {
  /** iptables-restore --noflush input. */
  restore: string;
  rejected: RejectedService[];
  /** Number of DNAT rules written. */
  dnatRules: number;
}

const validPort = (p: number) => Number.isInteger(p) && p >= 1 && p <= 65535;

/** Why `address` (called `what`) is not an IPv4 address inside `subnet`, or undefined. */
function addressProblem(what: string, address: string, subnet: Cidr, subnetName: string): string | undefined {
  let ip: number;
  try {
    ip = parseIpv4(address);
  } catch {
    return `${what} "${address}" is not an IPv4 address`;
  }
  return cidrContains(subnet, ip) ? undefined : `${what} ${address} is outside the ${subnetName} subnet`;
}

function checkService(s: ServiceRule, services: Cidr, pods: Cidr): string | undefined {
  const vipProblem = addressProblem("VIP", s.vip, services, "service");
  if (vipProblem) return vipProblem;
  if (!validPort(s.port)) return `port ${s.port} is not 1-65535`;
  for (const e of s.endpoints) {
    const problem = addressProblem("endpoint", e.ip, pods, "pod");
    if (problem) return problem;
    if (!validPort(e.port)) return `endpoint port ${e.port} is not 1-65535`;
  }
  return undefined;
}

function comment(name: string): string[] {
  return ["-m", "comment", "--comment", `"${name.replace(/[^A-Za-z0-9/:._-]/g, "_").slice(0, 200)}"`];
}

/** Lines moving (or adding) `OUTPUT -j chain` after every jump to `after` in `table`. */
function jumpLines(table: SavedTable | undefined, chain: string, after: string | undefined): string[] {
  const rules = (table?.rules ?? []).filter((r) => r.chain === "OUTPUT");
  const ours = rules.flatMap((r, i) => (r.args.length === 2 && ruleOption(r.args, "-j") === chain ? [i] : []));
  const lastAfter = after === undefined ? -1 : rules.reduce((last, r, i) => (ruleOption(r.args, "-j") === after ? i : last), -1);
  if (ours.length === 1 && (ours[0] as number) > lastAfter) return [];
  return [...ours.map(() => `-D OUTPUT -j ${chain}`), `-A OUTPUT -j ${chain}`];
}

/**
 * What to apply in a pod whose current rules are `saved` (iptables-save output) so that its
 * Services are exactly `services`. Services that would send traffic outside the mesh's ranges are
 * left out and reported.
 */
export function planServiceSync(saved: string, services: readonly ServiceRule[], ranges: ServiceRanges): ServiceSyncPlan {
  const serviceCidr = parseCidr(ranges.serviceSubnet);
  const podCidr = parseCidr(ranges.podSubnet);
  const tables = parseIptablesSave(saved);
  const rejected: RejectedService[] = [];
  const nat = [`:${SERVICES_CHAIN} - [0:0]`];
  const filter = [`:${SERVICES_CHAIN} - [0:0]`];
  let dnatRules = 0;
  const ordered = [...services].sort((a, b) => a.vip.localeCompare(b.vip) || a.port - b.port);
  for (const s of ordered) {
    const reason = checkService(s, serviceCidr, podCidr);
    if (reason) {
      rejected.push({ name: s.name, reason });
      continue;
    }
    const match = ["-d", `${s.vip}/32`, "-p", "tcp", "-m", "tcp", "--dport", String(s.port), ...comment(s.name)];
    const endpoints = [...s.endpoints].sort((a, b) => a.ip.localeCompare(b.ip) || a.port - b.port);
    if (endpoints.length === 0) {
      filter.push(["-A", SERVICES_CHAIN, ...match, "-j", "REJECT", "--reject-with", "icmp-port-unreachable"].join(" "));
      continue;
    }
    endpoints.forEach((e, i) => {
      const remaining = endpoints.length - i;
      const statistic = remaining > 1 ? ["-m", "statistic", "--mode", "random", "--probability", (1 / remaining).toFixed(10)] : [];
      nat.push(["-A", SERVICES_CHAIN, ...match, ...statistic, "-j", "DNAT", "--to-destination", `${e.ip}:${e.port}`].join(" "));
      dnatRules++;
    });
  }
  nat.push(...jumpLines(tables.get("nat"), SERVICES_CHAIN, PROXY_OUTPUT_CHAIN));
  filter.push(...jumpLines(tables.get("filter"), SERVICES_CHAIN, undefined));
  const restore = ["*nat", ...nat, "COMMIT", "*filter", ...filter, "COMMIT", ""].join("\n");
  return { restore, rejected, dnatRules };
}

/**
 * Makes the pod's Service rules match `services` (with their current endpoints) in one atomic
 * iptables-restore. Call again whenever endpoints change, and after `tether proxy-init`.
 */
export async function syncServices(pod: Pod, services: readonly ServiceRule[]): Promise<ServiceSyncPlan> {
  const saved = await runIn(pod, ["iptables-save"]);
  const plan = planServiceSync(saved, services, {
    serviceSubnet: pod.host.state.serviceSubnet,
    podSubnet: pod.host.state.podSubnet,
  });
  await run(["iptables-restore", "-w", "--noflush"], { netns: pod.netns, input: plan.restore });
  return plan;
}
