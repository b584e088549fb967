/**
 * Header lists as the frame layer carries them: flat `[name, value, name, value, …]` arrays,
 * lowercase names, pseudo-headers first. What the forwarder needs: lookups, hop-by-hop removal,
 * and the object form the policy evaluator reads. Copies keep the list's never-indexed names.
 */
import { NEVER_INDEXED, withNeverIndexed, type HeaderFields } from "./hpack.js";

export type { HeaderFields };

/** Hop-by-hop headers (RFC 9110 §7.6.1); HTTP/2 forbids them (RFC 9113 §8.2.2) except `te: trailers`. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);

export function fieldValue(fields: HeaderFields, name: string): string | undefined {
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

/**
 * `fields` without hop-by-hop headers, without those `connection` names, without `te` unless it is
 * "trailers", and without `drop` (lowercase names). Returns the same array when nothing is removed,
 * which is the common case and costs no copy.
 */
export function forwardableFields(fields: HeaderFields, drop?: string): HeaderFields {
  let named: Set<string> | undefined;
  let any = false;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    if (name === "connection") {
      named ??= new Set();
      for (const h of fields[i + 1]!.split(",")) named.add(h.trim().toLowerCase());
    }
    any ||= removable(name, fields[i + 1]!, drop);
  }
  if (!any && !named) return fields;
  const out: HeaderFields = [];
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    if (!removable(name, fields[i + 1]!, drop) && !named?.has(name)) out.push(name, fields[i + 1]!);
  }
  return withNeverIndexed(out, fields[NEVER_INDEXED]);
}

function removable(name: string, value: string, drop: string | undefined): boolean {
  return HOP_BY_HOP.has(name) || name === drop || (name === "te" && value.trim().toLowerCase() !== "trailers");
}

/** A copy of `fields` without any field called `name` (never-indexed names kept, RFC 7541 §7.1.3). */
export function withoutField(fields: HeaderFields, name: string): HeaderFields {
  const out: HeaderFields = [];
  for (let i = 0; i < fields.length; i += 2) if (fields[i] !== name) out.push(fields[i]!, fields[i + 1]!);
  return withNeverIndexed(out, fields[NEVER_INDEXED]);
}

/** The object form (repeated names joined as arrays), for the policy evaluator and logs. */
export function fieldsToObject(fields: HeaderFields): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    const existing = out[name];
    if (existing === undefined) out[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else out[name] = [existing, value];
  }
  return out;
}
