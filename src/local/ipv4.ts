/**
 * IPv4 arithmetic and address allocation for the local mesh. Pure: no I/O, so the allocator and
 * the overlap checks are tested as tables. Addresses and CIDRs are read with the one grammar of
 * src/core/ip.ts; the local mesh takes IPv4 only, with an explicit prefix and no host bits.
 */
import { parseCidr as parseIpCidr, parseIp } from "../core/ip.js";
import { LocalMeshError } from "./errors.js";

export interface Cidr {
  /** Network address as an unsigned 32-bit integer (host bits cleared). */
  readonly base: number;
  readonly prefix: number;
}

export function parseIpv4(text: string): number {
  const ip = text.includes(":") || text.includes("/") ? undefined : parseIp(text);
  if (!ip?.v4) throw new LocalMeshError("LOCAL_BAD_CIDR", `"${text}" is not an IPv4 address (expected a.b.c.d)`);
  return ip.w[3];
}

export function formatIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join(".");
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function parseCidr(text: string): Cidr {
  const parsed = text.includes("/") ? parseIpCidr(text) : undefined;
  if (!parsed || parsed.family !== 4) {
    throw new LocalMeshError("LOCAL_BAD_CIDR", `"${text}" is not an IPv4 CIDR (expected a.b.c.d/len, e.g. 10.247.0.0/16)`);
  }
  const { prefix } = parsed;
  const ip = parsed.w[3];
  const base = (ip & mask(prefix)) >>> 0;
  if (base !== ip) {
    throw new LocalMeshError("LOCAL_BAD_CIDR", `"${text}" has host bits set; did you mean ${formatIpv4(base)}/${prefix}?`);
  }
  return { base, prefix };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIpv4(cidr.base)}/${cidr.prefix}`;
}

export function cidrSize(cidr: Cidr): number {
  return 2 ** (32 - cidr.prefix);
}

export function cidrContains(cidr: Cidr, ip: number): boolean {
  return ((ip & mask(cidr.prefix)) >>> 0) === cidr.base;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const shorter = Math.min(a.prefix, b.prefix);
  return ((a.base & mask(shorter)) >>> 0) === ((b.base & mask(shorter)) >>> 0);
}

/**
 * The lowest free host address of `cidr`, skipping the network and broadcast addresses (for
 * prefixes up to /30), `used` and `reserved`. Lowest-first keeps addresses readable and makes a
 * freed address the next one handed out, as a Kubernetes IPAM does not promise but tests like.
 */
export function allocateAddress(cidr: Cidr, used: Iterable<number>, reserved: Iterable<number> = []): number {
  const taken = new Set<number>([...used, ...reserved]);
  const size = cidrSize(cidr);
  const first = cidr.prefix <= 30 ? 1 : 0;
  const last = cidr.prefix <= 30 ? size - 2 : size - 1;
  for (let offset = first; offset <= last; offset++) {
    const candidate = cidr.base + offset;
    if (!taken.has(candidate)) return candidate;
  }
  throw new LocalMeshError(
    "LOCAL_ADDRESSES_EXHAUSTED",
    `no free address left in ${formatCidr(cidr)} (${taken.size} in use); delete pods or choose a larger --subnet`,
  );
}

/**
 * Splits `within` into /`prefix` blocks and returns one, chosen with `random`, that overlaps
 * none of `taken`; undefined when every block overlaps something.
 */
export function pickFreeBlock(within: Cidr, prefix: number, taken: readonly Cidr[], random: () => number): Cidr | undefined {
  if (prefix < within.prefix || prefix > 30) {
    throw new LocalMeshError("LOCAL_BAD_CIDR", `cannot carve /${prefix} blocks out of ${formatCidr(within)}`);
  }
  const count = 2 ** (prefix - within.prefix);
  const start = Math.floor(random() * count);
  for (let i = 0; i < count; i++) {
    const index = (start + i) % count;
    const block = { base: within.base + index * 2 ** (32 - prefix), prefix };
    if (!taken.some((t) => cidrsOverlap(t, block))) return block;
  }
  return undefined;
}
