/**
 * How the substrate names what it creates in the host. Every name derives from the instance name
 * (also the bridge's name), so `down` can recognise its own leftovers by prefix without touching
 * anything else, and parallel instances (tests) never collide.
 */
import { join } from "node:path";
import { LocalMeshError } from "./errors.js";

/** Default instance: bridge `tether0`, namespaces `tether0-<pod>`, veths `tether0-<n>`. */
export const DEFAULT_INSTANCE = "tether0";
export const DEFAULT_STATE_DIR = "/run/tether-local";
export const DEFAULT_POD_SUBNET = "10.247.0.0/16";
export const DEFAULT_SERVICE_SUBNET = "10.248.0.0/16";

/** Where a local mesh lists its proxies' admin addresses, for `tether stat` and the dashboard. */
export function targetsFile(stateDir: string): string {
  return join(stateDir, "targets.json");
}

/** Environment variable set on every process the substrate starts: the sweep's last resort. */
export const INSTANCE_ENV = "TETHER_LOCAL_INSTANCE";

/** Name of the per-pod iptables chain (nat and filter) that plays kube-proxy for unmeshed traffic. */
export const SERVICES_CHAIN = "TETHER_LOCAL_SERVICES";

/** Linux limits interface names to 15 bytes (IFNAMSIZ - 1). */
const IFNAME_MAX = 15;

/** Lowercase letters and digits, no separator, so `<instance>-` can never prefix another instance. */
const INSTANCE_RE = /^[a-z][a-z0-9]{0,8}$/;
/** A DNS-label-like pod key (the runner passes e.g. `default-server-0`). */
const POD_RE = /^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/;

export function validateInstance(instance: string): string {
  if (!INSTANCE_RE.test(instance)) {
    throw new LocalMeshError(
      "LOCAL_BAD_NAME",
      `instance name "${instance}" must be 1-9 lowercase letters or digits starting with a letter (it names the bridge and prefixes every namespace and link)`,
    );
  }
  return instance;
}

export function validatePodName(name: string): string {
  if (!POD_RE.test(name)) {
    throw new LocalMeshError(
      "LOCAL_BAD_NAME",
      `pod name "${name}" must be 1-63 lowercase letters, digits, '-' or '.', starting and ending with a letter or digit`,
    );
  }
  return name;
}

export function netnsName(instance: string, pod: string): string {
  return `${instance}-${validatePodName(pod)}`;
}

export function netnsPath(netns: string): string {
  return `/run/netns/${netns}`;
}

/** Host end of a pod's veth pair; `index` comes from a counter in the state so names never repeat. */
export function vethName(instance: string, index: number): string {
  const name = `${instance}-${index.toString(36)}`;
  if (name.length > IFNAME_MAX) {
    throw new LocalMeshError("LOCAL_BAD_NAME", `link counter exhausted for instance "${instance}"; run \`tether local down\` to reset it`);
  }
  return name;
}

/** The prefix shared by every namespace and veth of an instance. */
export function instancePrefix(instance: string): string {
  return `${instance}-`;
}

/** iptables comment on every host rule of an instance. */
export function ruleComment(instance: string): string {
  return `tether-local:${instance}`;
}
