/**
 * The `config.tether.io/opaque-ports` annotation: a comma-separated list of port numbers,
 * ranges (`4000-4100`) and container port names. Pure; bad entries are returned, not thrown,
 * so one typo in an annotation never hides a pod's endpoints.
 */
export interface PortSet {
  numbers: Set<number>;
  ranges: [number, number][];
  names: Set<string>;
  /** Entries that could not be parsed, verbatim, for the caller to log and count. */
  invalid: string[];
}

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function validPort(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65535;
}

export function parsePortSet(text: string): PortSet {
  const set: PortSet = { numbers: new Set(), ranges: [], names: new Set(), invalid: [] };
  for (const raw of text.split(",")) {
    const entry = raw.trim();
    if (!entry) continue;
    const range = /^(\d+)-(\d+)$/.exec(entry);
    if (range) {
      const lo = Number(range[1]);
      const hi = Number(range[2]);
      if (validPort(lo) && validPort(hi) && lo <= hi) set.ranges.push([lo, hi]);
      else set.invalid.push(entry);
    } else if (/^\d+$/.test(entry)) {
      const n = Number(entry);
      if (validPort(n)) set.numbers.add(n);
      else set.invalid.push(entry);
    } else if (entry.length <= 15 && NAME.test(entry)) {
      set.names.add(entry);
    } else {
      set.invalid.push(entry);
    }
  }
  return set;
}

/** Whether `port` is in the set; `portNames` are the names the workload gives that port number. */
export function portSetHas(set: PortSet, port: number, portNames: readonly string[] = []): boolean {
  if (set.numbers.has(port)) return true;
  if (set.ranges.some(([lo, hi]) => port >= lo && port <= hi)) return true;
  return portNames.some((n) => set.names.has(n));
}
