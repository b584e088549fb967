/**
 * Parses the `path` of a Destination/Get request: a Service name
 * (`name.ns.svc.DOMAIN:port`, or `host.name.ns.svc.DOMAIN:port` for one endpoint of a headless
 * Service) or an IP:port (a Service's cluster IP or a pod IP). Pure; no cluster access.
 */
import { isIP } from "node:net";
import { TetherError, type CodeOf } from "../core/errors.js";

/** A path that cannot be resolved as written; the message says what form is expected. */
export class DestinationPathError extends TetherError<CodeOf<"DestinationPathError">> {}

export type DestinationTarget =
  | { kind: "service"; namespace: string; name: string; port: number; hostname?: string }
  | { kind: "ip"; ip: string; port: number };

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function parsePort(text: string, path: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    throw new DestinationPathError(
      "DISCOVERY_BAD_PORT",
      `destination ${JSON.stringify(path)} has port ${JSON.stringify(text)}; expected a number from 1 to 65535`,
    );
  }
  return port;
}

/** Splits `host:port`, `[v6]:port` or `v6-address:port` (the last colon separates the port). */
function splitHostPort(path: string): { host: string; port: string } {
  const bracket = /^\[([^\]]+)\]:(.*)$/.exec(path);
  if (bracket) return { host: bracket[1]!, port: bracket[2]! };
  const at = path.lastIndexOf(":");
  if (at <= 0) {
    throw new DestinationPathError(
      "DISCOVERY_BAD_PATH",
      `destination ${JSON.stringify(path)} has no port; expected NAME.NAMESPACE.svc.CLUSTER-DOMAIN:PORT or IP:PORT`,
    );
  }
  return { host: path.slice(0, at), port: path.slice(at + 1) };
}

export function parseDestinationPath(path: string, clusterDomain: string): DestinationTarget {
  const { host: rawHost, port: portText } = splitHostPort(path.trim());
  const port = parsePort(portText, path);
  if (isIP(rawHost)) return { kind: "ip", ip: rawHost, port };

  const host = rawHost.toLowerCase().replace(/\.$/, "");
  const suffix = `.svc.${clusterDomain.toLowerCase()}`;
  if (!host.endsWith(suffix)) {
    throw new DestinationPathError(
      "DISCOVERY_NOT_IN_CLUSTER",
      `${JSON.stringify(host)} is not a Service name of cluster domain ${clusterDomain}; expected NAME.NAMESPACE${suffix}:PORT (or check the --cluster-domain setting)`,
    );
  }
  const labels = host.slice(0, -suffix.length).split(".");
  if ((labels.length !== 2 && labels.length !== 3) || !labels.every((l) => l.length <= 63 && DNS_LABEL.test(l))) {
    throw new DestinationPathError(
      "DISCOVERY_BAD_PATH",
      `${JSON.stringify(host)} is not a Service name: expected NAME.NAMESPACE${suffix} or HOSTNAME.NAME.NAMESPACE${suffix}, each part a DNS-1123 label`,
    );
  }
  if (labels.length === 3) {
    return { kind: "service", hostname: labels[0]!, name: labels[1]!, namespace: labels[2]!, port };
  }
  return { kind: "service", name: labels[0]!, namespace: labels[1]!, port };
}

/** Canonical text of a target, used as the key of its shared watch. */
export function targetKey(target: DestinationTarget): string {
  return target.kind === "ip"
    ? `ip/${target.ip}/${target.port}`
    : `svc/${target.namespace}/${target.name}/${target.port}${target.hostname ? `/${target.hostname}` : ""}`;
}
