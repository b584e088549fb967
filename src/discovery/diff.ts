/**
 * Turns two answers into the messages a subscriber needs. Pure.
 * - first message: the full set (`add`), or `noEndpoints{exists}` when it is empty;
 * - later: `remove` for endpoints gone, then `add` for endpoints new or changed (add replaces
 *   an endpoint with the same address:port), or `noEndpoints` when the set became empty.
 */
import type { DestinationUpdate, WeightedAddr } from "../api/index.js";
import type { Snapshot } from "./endpoints.js";

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => a[k] === b[k]);
}

export function sameEndpoint(a: WeightedAddr, b: WeightedAddr): boolean {
  return (
    a.address === b.address &&
    a.port === b.port &&
    a.weight === b.weight &&
    a.identity === b.identity &&
    a.protocolHint === b.protocolHint &&
    sameLabels(a.labels, b.labels)
  );
}

function sorted(map: ReadonlyMap<string, WeightedAddr>, keys: Iterable<string>): WeightedAddr[] {
  return [...keys].sort().map((k) => map.get(k)!);
}

export function fullUpdate(next: Snapshot): DestinationUpdate[] {
  if (next.endpoints.size === 0) return [{ update: "noEndpoints", noEndpoints: { exists: next.exists } }];
  return [{ update: "add", add: { endpoints: sorted(next.endpoints, next.endpoints.keys()) } }];
}

export function diffSnapshots(prev: Snapshot | undefined, next: Snapshot): DestinationUpdate[] {
  if (!prev || prev.endpoints.size === 0) {
    if (prev && next.endpoints.size === 0 && prev.exists === next.exists) return [];
    return fullUpdate(next);
  }
  if (next.endpoints.size === 0) return [{ update: "noEndpoints", noEndpoints: { exists: next.exists } }];

  const out: DestinationUpdate[] = [];
  const removed = [...prev.endpoints.keys()].filter((k) => !next.endpoints.has(k)).sort();
  if (removed.length > 0) {
    out.push({
      update: "remove",
      remove: { addresses: removed.map((k) => ({ address: prev.endpoints.get(k)!.address, port: prev.endpoints.get(k)!.port })) },
    });
  }
  const changed: string[] = [];
  for (const [k, ep] of next.endpoints) {
    const before = prev.endpoints.get(k);
    if (!before || !sameEndpoint(before, ep)) changed.push(k);
  }
  if (changed.length > 0) out.push({ update: "add", add: { endpoints: sorted(next.endpoints, changed) } });
  return out;
}
