/**
 * IPv4 and IPv6 addresses and CIDRs in one 128-bit form (IPv4 as IPv4-mapped IPv6), the one grammar
 * of CIDRs in tether: policy validation (the webhook and the controller), the proxy's evaluation of
 * NetworkAuthentication, and the local mesh's subnets all read CIDRs here, so a network that
 * validation admits is one the proxy can match.
 */
import { isIP } from "node:net";

export interface Ip {
  v4: boolean;
  w: [number, number, number, number];
}

function parseV4Word(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const b = Number(p);
    if (b > 255) return undefined;
    n = n * 256 + b;
  }
  return n;
}

/**
 * Parses an IPv4 or IPv6 address; undefined when it is not one. An IPv6 zone id (a link-local
 * peer's `fe80::1%eth0`) is dropped; IPv4 has no zones, so `10.0.0.1%eth0` is not an address.
 */
export function parseIp(text: string): Ip | undefined {
  const zone = text.indexOf("%");
  const addr = zone >= 0 ? text.slice(0, zone) : text;
  const family = isIP(addr);
  if (family === 4) {
    if (zone >= 0) return undefined;
    const n = parseV4Word(addr)!;
    return { v4: true, w: [0, 0, 0xffff, n] };
  }
  if (family !== 6) return undefined;
  const groups: number[] = [];
  const halves = addr.split("::");
  const expand = (part: string): number[] => {
    if (part === "") return [];
    const out: number[] = [];
    for (const g of part.split(":")) {
      if (g.includes(".")) {
        const n = parseV4Word(g)!;
        out.push(n >>> 16, n & 0xffff);
      } else out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = expand(halves[0]!);
  const tail = halves.length > 1 ? expand(halves[1]!) : [];
  groups.push(...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail);
  const w: [number, number, number, number] = [0, 0, 0, 0];
  for (let i = 0; i < 4; i++) w[i] = ((groups[2 * i]! << 16) | groups[2 * i + 1]!) >>> 0;
  const mapped = w[0] === 0 && w[1] === 0 && w[2] === 0xffff;
  return { v4: mapped, w };
}

export interface Cidr {
  v4: boolean;
  w: [number, number, number, number];
  /** Prefix length in the 128-bit space (IPv4 prefixes + 96). */
  bits: number;
  /** How it was written: an IPv4 CIDR (prefix 0-32) or an IPv6 one (prefix 0-128). */
  family: 4 | 6;
  /** The prefix length as written (in the family's own address space). */
  prefix: number;
}

/** Parses `addr/len` (or a bare address, a host route); undefined when malformed. */
export function parseCidr(text: string): Cidr | undefined {
  // A network is not bound to an interface: zone ids belong to addresses, never to CIDRs.
  if (text.includes("%")) return undefined;
  const slash = text.indexOf("/");
  const ip = parseIp(slash >= 0 ? text.slice(0, slash) : text);
  if (!ip) return undefined;
  const max = ip.v4 && !text.includes(":") ? 32 : 128;
  let len = max;
  if (slash >= 0) {
    const lenText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(lenText)) return undefined;
    len = Number(lenText);
    if (len > max) return undefined;
  }
  return { v4: ip.v4, w: ip.w, bits: max === 32 ? len + 96 : len, family: max === 32 ? 4 : 6, prefix: len };
}

/** Why `text` is not a CIDR, for a refusal that names the fix; undefined when it is one. */
export function cidrProblem(text: string): string | undefined {
  if (parseCidr(text)) return undefined;
  if (text.includes("%")) return `${JSON.stringify(text)} names an interface zone; a CIDR has none (e.g. fe80::/64)`;
  const slash = text.indexOf("/");
  const address = slash >= 0 ? text.slice(0, slash) : text;
  if (!parseIp(address)) return `${JSON.stringify(text)} is not an IPv4 or IPv6 CIDR (e.g. 10.0.0.0/8, fd00::/8)`;
  const family = address.includes(":") ? 6 : 4;
  return `${JSON.stringify(text)} has an invalid prefix length (0-${family === 4 ? 32 : 128} for IPv${family})`;
}

/** Whether every address of `inner` is in `outer`. */
export function cidrWithin(inner: Cidr, outer: Cidr): boolean {
  return inner.bits >= outer.bits && inCidr(inner, outer);
}

export function inCidr(ip: Ip, c: Cidr): boolean {
  if (ip.v4 !== c.v4) return false;
  let bits = c.bits;
  for (let i = 0; i < 4 && bits > 0; i++, bits -= 32) {
    const mask = bits >= 32 ? 0xffffffff : ~(0xffffffff >>> bits);
    if (((ip.w[i]! ^ c.w[i]!) & mask) !== 0) return false;
  }
  return true;
}

