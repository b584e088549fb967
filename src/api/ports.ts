/**
 * The grammar of every port list tether reads: the `config.tether.io/*-ports` annotations, the
 * proxy's TETHER_*_PORTS variables and `tether proxy-init --skip-*-ports`. One parser, so the
 * injector never admits a value that the proxy, discovery or the init container reads otherwise.
 *
 *   list  = entry *( "," entry )        blanks around entries are ignored; empty entries too
 *   entry = port | port "-" port | name  a range is LOW-HIGH inclusive, LOW <= HIGH, any width
 *   port  = 1..65535 in decimal
 *   name  = a container port name (IANA_SVC_NAME: 1-15 of [a-z0-9-], a letter, no "--",
 *           no leading or trailing "-")
 *
 * Parsing never throws: it returns what it understood and the entries it did not. Each caller
 * decides how to react (the injector refuses the pod, discovery logs and counts and ignores the
 * entry, the proxy and the init container refuse to start), and whether names are allowed where
 * it reads the list (only for ports of the pod itself, which has containers to resolve them).
 */

export interface PortRange {
  low: number;
  high: number;
}

export interface PortList {
  /** Ports and ranges, in the order written (a single port is a range of one). */
  ranges: PortRange[];
  /** Container port names, in the order written. */
  names: string[];
  /** Entries that are none of the above, verbatim. */
  invalid: string[];
}

/** What a port list means for one pod: ports in it, by number or by the name a container gives. */
export interface PortSet {
  has(port: number): boolean;
}

const PORT = /^\d{1,5}$/;
const NAME = /^(?=.*[a-z])(?!.*--)[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$/;

/** A port 1-65535 in decimal, or undefined. */
export function parsePort(text: string): number | undefined {
  if (!PORT.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}

export function parsePortList(text: string): PortList {
  const list: PortList = { ranges: [], names: [], invalid: [] };
  for (const raw of text.split(",")) {
    const entry = raw.trim();
    if (entry === "") continue;
    const dash = entry.indexOf("-");
    const low = parsePort(dash > 0 ? entry.slice(0, dash) : entry);
    const high = dash > 0 ? parsePort(entry.slice(dash + 1)) : low;
    if (low !== undefined && high !== undefined && low <= high) list.ranges.push({ low, high });
    else if (NAME.test(entry)) list.names.push(entry);
    else list.invalid.push(entry);
  }
  return list;
}

/** Why a list cannot be used where names are not allowed, or undefined when it can. */
export function numericListProblem(list: PortList): string | undefined {
  const bad = [...list.invalid, ...list.names];
  if (bad.length === 0) return undefined;
  return `${bad.map((e) => JSON.stringify(e)).join(", ")} ${bad.length === 1 ? "is" : "are"} not a port (1-65535) or a range LOW-HIGH`;
}

/** Why a list cannot be used where container port names are allowed, or undefined when it can. */
export function listProblem(list: PortList): string | undefined {
  if (list.invalid.length === 0) return undefined;
  const bad = list.invalid.map((e) => JSON.stringify(e)).join(", ");
  return `${bad} ${list.invalid.length === 1 ? "is" : "are"} not a port (1-65535), a range LOW-HIGH or a container port name`;
}

export function inRanges(port: number, ranges: readonly PortRange[]): boolean {
  return ranges.some((r) => port >= r.low && port <= r.high);
}

/** The set a list names for a pod; `namedPorts` maps the pod's container port names to numbers. */
export function portSet(list: PortList, namedPorts: ReadonlyMap<string, number> = new Map()): PortSet {
  const named = new Set(list.names.flatMap((n) => (namedPorts.has(n) ? [namedPorts.get(n)!] : [])));
  return { has: (port) => named.has(port) || inRanges(port, list.ranges) };
}

/** The canonical text of ranges (what the injector writes for the proxy and the init container). */
export function formatPortRanges(ranges: readonly PortRange[]): string {
  return ranges.map((r) => (r.low === r.high ? String(r.low) : `${r.low}-${r.high}`)).join(",");
}

/** A pod's container port names and their numbers (names are unique within a pod). */
export function namedContainerPorts(containers: readonly { ports?: readonly { name?: string; containerPort: number }[] }[] | undefined): Map<string, number> {
  const named = new Map<string, number>();
  for (const c of containers ?? []) for (const p of c.ports ?? []) if (p.name) named.set(p.name, p.containerPort);
  return named;
}
