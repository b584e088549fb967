/**
 * The host side of the local mesh: one Linux bridge whose address is the first of a private
 * subnet, and host FORWARD rules that keep pod traffic on the bridge. Every pod address, the
 * bridge's and nothing else lives in that subnet, and the pods' packets never leave it:
 * - pods reach each other over the bridge (layer 2, no routing, so ip_forward stays untouched);
 * - Service virtual IPs are rewritten inside each pod (kube-proxy.ts or the proxy) before routing;
 * - anything else a pod sends to the bridge for forwarding is dropped, also on hosts that enable
 *   ip_forward (Docker does).
 */
import { LocalMeshError } from "./errors.js";
import { run, runAllowingFailure } from "./command.js";
import {
  allocateAddress,
  cidrContains,
  cidrsOverlap,
  formatCidr,
  formatIpv4,
  parseCidr,
  parseIpv4,
  pickFreeBlock,
  type Cidr,
} from "./ipv4.js";
import { ruleComment } from "./names.js";
import type { HostRuleEntry, StateStore } from "./state.js";

/** FORWARD rules of an instance; with br_netfilter loaded, bridged frames traverse FORWARD too. */
export function hostRules(instance: string): HostRuleEntry[] {
  const tag = ["-m", "comment", "--comment", ruleComment(instance)];
  const rule = (spec: string[]): HostRuleEntry => ({ kind: "hostRule", table: "filter", chain: "FORWARD", spec });
  return [
    rule(["-i", instance, "-o", instance, ...tag, "-j", "ACCEPT"]),
    rule(["-i", instance, ...tag, "-j", "DROP"]),
    rule(["-o", instance, ...tag, "-j", "DROP"]),
  ];
}

export interface HostRoute {
  dst: Cidr;
  dev: string;
}

/** Every IPv4 route of the host (all tables), including its local addresses as /32s. */
export async function hostRoutes(): Promise<HostRoute[]> {
  const out = await run(["ip", "-j", "-4", "route", "show", "table", "all"]);
  const routes: HostRoute[] = [];
  for (const r of JSON.parse(out || "[]") as { dst?: string; dev?: string }[]) {
    if (!r.dst || r.dst === "default") continue;
    try {
      routes.push({ dst: parseCidr(r.dst.includes("/") ? r.dst : `${r.dst}/32`), dev: r.dev ?? "" });
    } catch {
      // multicast/unusual entries the parser refuses cannot overlap a private unicast subnet we pick
    }
  }
  return routes;
}

/** Refuses a subnet that overlaps any route or address of the host not on `ownBridge`. */
export function assertSubnetFree(subnet: Cidr, routes: readonly HostRoute[], ownBridge: string): void {
  const clash = routes.find((r) => r.dev !== ownBridge && cidrsOverlap(r.dst, subnet));
  if (clash) {
    throw new LocalMeshError(
      "LOCAL_SUBNET_OVERLAP",
      `subnet ${formatCidr(subnet)} overlaps ${formatCidr(clash.dst)} on ${clash.dev || "the host"}; pass another --subnet (a private range nothing else uses)`,
    );
  }
}

/** A random free /`prefix` inside `within` that overlaps no host route (tests and net-check use it). */
export async function pickFreeSubnet(within = "10.246.0.0/16", prefix = 24, random: () => number = Math.random): Promise<string> {
  const routes = await hostRoutes();
  const block = pickFreeBlock(parseCidr(within), prefix, routes.map((r) => r.dst), random);
  if (!block) {
    throw new LocalMeshError("LOCAL_ADDRESSES_EXHAUSTED", `no free /${prefix} left in ${within}; run \`tether local down\` for stale instances`);
  }
  return formatCidr(block);
}

export class HostNetwork {
  readonly subnet: Cidr;
  readonly gateway: number;

  private constructor(
    readonly state: StateStore,
    readonly bridge: string,
  ) {
    this.subnet = parseCidr(state.podSubnet);
    this.gateway = this.subnet.base + 1;
  }

  /** Creates the bridge and host rules recorded in `state` (recording each first). */
  static async create(state: StateStore): Promise<HostNetwork> {
    const net = new HostNetwork(state, state.instance);
    const { bridge, subnet } = net;
    if (subnet.prefix > 29) {
      throw new LocalMeshError("LOCAL_BAD_CIDR", `pod subnet ${formatCidr(subnet)} is too small; use /29 or larger (default /16)`);
    }
    const probe = await runAllowingFailure(["ip", "link", "show", "dev", bridge]);
    if (probe.code === 0) {
      throw new LocalMeshError(
        "LOCAL_STATE_STALE",
        `a link named ${bridge} already exists on this host; if a crashed runner left it, run \`tether local down --instance ${bridge}\``,
      );
    }
    assertSubnetFree(subnet, await hostRoutes(), bridge);
    state.record([{ kind: "bridge", name: bridge }]);
    await run(["ip", "link", "add", bridge, "type", "bridge"]);
    await run(["ip", "addr", "add", `${net.gatewayIp}/${subnet.prefix}`, "dev", bridge]);
    await run(["ip", "link", "set", bridge, "up"]);
    // Another runner may have claimed the same subnet between our check and our address: check again.
    assertSubnetFree(subnet, await hostRoutes(), bridge);
    // Inserted at the top in reverse so the ACCEPT comes first: FORWARD may end in Docker's DROP.
    for (const rule of [...hostRules(bridge)].reverse()) {
      state.record([rule]);
      await run(["iptables", "-w", "-t", rule.table, "-I", rule.chain, "1", ...rule.spec]);
    }
    return net;
  }

  get gatewayIp(): string {
    return formatIpv4(this.gateway);
  }

  get prefix(): number {
    return this.subnet.prefix;
  }

  /** The lowest pod address not in use, never the bridge's. */
  allocatePodIp(): string {
    const used = Object.values(this.state.pods()).map((p) => parseIpv4(p.ip));
    return formatIpv4(allocateAddress(this.subnet, used, [this.gateway]));
  }

  contains(ip: string): boolean {
    return cidrContains(this.subnet, parseIpv4(ip));
  }
}
