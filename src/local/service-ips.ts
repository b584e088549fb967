/**
 * Virtual IPs for Services, from their own range (10.248.0.0/16 by default) that no route leads
 * to: like ClusterIPs, they mean something only to the rules inside pods (kube-proxy.ts) and to
 * the proxies. Assignments live in the state so a Service keeps its VIP while the runner lives.
 */
import { allocateAddress, cidrContains, formatIpv4, parseCidr, parseIpv4 } from "./ipv4.js";
import { LocalMeshError } from "./errors.js";
import type { StateStore } from "./state.js";

/**
 * The VIP of Service `key` (e.g. `default/server`): the one already assigned, else `wanted` (a
 * manifest's clusterIP) when free and in range, else the lowest free address.
 */
export function assignServiceIp(state: StateStore, key: string, wanted?: string): string {
  const existing = state.serviceIps()[key];
  if (existing) return existing;
  const range = parseCidr(state.serviceSubnet);
  const used = Object.values(state.serviceIps()).map(parseIpv4);
  let ip: number;
  if (wanted !== undefined) {
    ip = parseIpv4(wanted);
    if (!cidrContains(range, ip) || used.includes(ip)) {
      throw new LocalMeshError(
        "LOCAL_BAD_SERVICE",
        `clusterIP ${wanted} of ${key} is outside ${state.serviceSubnet} or already taken; remove it from the manifest to get one assigned`,
      );
    }
  } else {
    ip = allocateAddress(range, used);
  }
  state.setServiceIp(key, formatIpv4(ip));
  return formatIpv4(ip);
}

export function releaseServiceIp(state: StateStore, key: string): void {
  state.deleteServiceIp(key);
}
