/**
 * A small, strict DER (ASN.1 Distinguished Encoding Rules) encoder and reader: just what X.509
 * certificates and PKCS#10 requests need. The CA builds certificates with it because a generic
 * X.509 library spends far more time than the signature itself; the reader refuses anything that
 * is not canonical DER (indefinite or non-minimal lengths, trailing bytes) so that a request is
 * read exactly one way.
 */
import { CertificateError } from "../core/errors.js";

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Context-specific tags: [n] constructed (EXPLICIT or IMPLICIT SEQUENCE/SET) and [n] primitive. */
export const contextConstructed = (n: number): number => 0xa0 | n;
export const contextPrimitive = (n: number): number => 0x80 | n;

// ---------------------------------------------------------------- encoding

function headerLength(length: number): number {
  if (length < 0x80) return 2;
  let bytes = 0;
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes++;
  return 2 + bytes;
}

/** Writes tag and length at `at`; returns where the content starts. */
function writeHeader(out: Buffer, at: number, tag: number, length: number): number {
  out[at] = tag;
  if (length < 0x80) {
    out[at + 1] = length;
    return at + 2;
  }
  const count = headerLength(length) - 2;
  out[at + 1] = 0x80 | count;
  for (let i = count, n = length; i > 0; i--, n = Math.floor(n / 256)) out[at + 1 + i] = n & 0xff;
  return at + 2 + count;
}

export function tlv(tag: number, content: Buffer): Buffer {
  const out = Buffer.allocUnsafe(headerLength(content.length) + content.length);
  content.copy(out, writeHeader(out, 0, tag, content.length));
  return out;
}

/** A constructed element from parts, copied once (no intermediate concatenation). */
function constructed(tag: number, parts: readonly Buffer[]): Buffer {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = Buffer.allocUnsafe(headerLength(length) + length);
  let at = writeHeader(out, 0, tag, length);
  for (const p of parts) at += p.copy(out, at);
  return out;
}

export const sequence = (...parts: Buffer[]): Buffer => constructed(TAG.SEQUENCE, parts);

/** SET OF: DER requires the encodings sorted as octet strings. */
export const set = (...parts: Buffer[]): Buffer => constructed(TAG.SET, [...parts].sort(Buffer.compare));

export const explicit = (n: number, inner: Buffer): Buffer => tlv(contextConstructed(n), inner);

/** An unsigned big-endian integer as a minimal, positive DER INTEGER. */
export function unsignedInteger(value: Buffer): Buffer {
  let start = 0;
  while (start < value.length - 1 && value[start] === 0) start++;
  const trimmed = value.subarray(start);
  const content = trimmed.length === 0 ? Buffer.from([0]) : (trimmed[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed;
  return tlv(TAG.INTEGER, content);
}

export function smallInteger(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`smallInteger takes a non-negative safe integer, got ${n}`);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return unsignedInteger(Buffer.from(bytes.length ? bytes : [0]));
}

export const boolean = (value: boolean): Buffer => tlv(TAG.BOOLEAN, Buffer.from([value ? 0xff : 0x00]));
export const octetString = (value: Buffer): Buffer => tlv(TAG.OCTET_STRING, value);
export const nullValue = (): Buffer => Buffer.from([TAG.NULL, 0]);
/** BIT STRING with zero unused bits (keys, signatures). */
export const bitString = (value: Buffer): Buffer => tlv(TAG.BIT_STRING, Buffer.concat([Buffer.from([0]), value]));
export const utf8String = (s: string): Buffer => tlv(TAG.UTF8_STRING, Buffer.from(s, "utf8"));

const oidCache = new Map<string, Buffer>();

export function oid(dotted: string): Buffer {
  const cached = oidCache.get(dotted);
  if (cached) return cached;
  const arcs = dotted.split(".").map(Number);
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a) || a < 0)) throw new RangeError(`bad OID ${dotted}`);
  const out: number[] = [];
  const push = (value: number): void => {
    const chunk: number[] = [value & 0x7f];
    for (let v = Math.floor(value / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  };
  push(arcs[0]! * 40 + arcs[1]!);
  for (const arc of arcs.slice(2)) push(arc);
  const encoded = tlv(TAG.OID, Buffer.from(out));
  oidCache.set(dotted, encoded);
  return encoded;
}

const pad = (n: number, width = 2): string => String(n).padStart(width, "0");

/** RFC 5280: UTCTime for years 1950-2049, GeneralizedTime otherwise; whole seconds, Zulu. */
export function time(ms: number): Buffer {
  const d = new Date(Math.floor(ms / 1000) * 1000);
  const year = d.getUTCFullYear();
  const rest = `${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;
  if (year >= 1950 && year < 2050) return tlv(TAG.UTC_TIME, Buffer.from(`${pad(year % 100)}${rest}`, "ascii"));
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(`${pad(year, 4)}${rest}`, "ascii"));
}

// ---------------------------------------------------------------- reading

/** One decoded element: `bytes` is the whole TLV, `content` its value; both share the input's memory. */
export interface Element {
  tag: number;
  bytes: Buffer;
  content: Buffer;
}

function malformed(what: string): CertificateError {
  return new CertificateError("DER_MALFORMED", `malformed DER: ${what}`);
}

/** Reads one element at `offset`; the caller decides what may follow it. */
export function readElement(buf: Buffer, offset = 0): Element {
  if (offset + 2 > buf.length) throw malformed("truncated header");
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw malformed("multi-byte tags are not used in certificates");
  let length = buf[offset + 1]!;
  let header = 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0) throw malformed("indefinite length is not DER");
    if (count > 4) throw malformed("length too large");
    if (offset + 2 + count > buf.length) throw malformed("truncated length");
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[offset + 2 + i]!;
    if (buf[offset + 2] === 0 || length < 0x80) throw malformed("non-minimal length encoding");
    header += count;
  }
  const end = offset + header + length;
  if (end > buf.length) throw malformed("content runs past the end of the input");
  return { tag, bytes: buf.subarray(offset, end), content: buf.subarray(offset + header, end) };
}

/** Reads exactly one element that fills `buf` (no trailing bytes). */
export function readOnly(buf: Buffer, tag?: number): Element {
  const el = readElement(buf, 0);
  if (el.bytes.length !== buf.length) throw malformed("trailing bytes after the top-level element");
  if (tag !== undefined) expectTag(el, tag);
  return el;
}

/** The children of a constructed element, in order. */
export function children(el: Element): Element[] {
  if ((el.tag & 0x20) === 0) throw malformed(`tag 0x${el.tag.toString(16)} is not constructed`);
  const out: Element[] = [];
  for (let at = 0; at < el.content.length; ) {
    const child = readElement(el.content, at);
    out.push(child);
    at += child.bytes.length;
  }
  return out;
}

export function expectTag(el: Element | undefined, tag: number, what = "element"): Element {
  if (!el) throw malformed(`missing ${what}`);
  if (el.tag !== tag) throw malformed(`${what} has tag 0x${el.tag.toString(16)}, expected 0x${tag.toString(16)}`);
  return el;
}

export function readOid(el: Element | undefined, what = "OID"): string {
  const { content } = expectTag(el, TAG.OID, what);
  if (content.length === 0) throw malformed(`empty ${what}`);
  const arcs: number[] = [];
  let value = 0;
  for (let i = 0; i < content.length; i++) {
    const b = content[i]!;
    if (value === 0 && b === 0x80) throw malformed(`non-minimal ${what}`);
    value = value * 128 + (b & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER) throw malformed(`${what} arc too large`);
    if ((b & 0x80) === 0) {
      arcs.push(value);
      value = 0;
    } else if (i === content.length - 1) {
      throw malformed(`truncated ${what}`);
    }
  }
  const first = arcs.shift()!;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...arcs].join(".");
}

export function readSmallInteger(el: Element | undefined, what = "INTEGER"): number {
  const { content } = expectTag(el, TAG.INTEGER, what);
  if (content.length === 0 || content.length > 6) throw malformed(`${what} out of range`);
  if (content.length > 1 && ((content[0] === 0 && (content[1]! & 0x80) === 0) || (content[0] === 0xff && (content[1]! & 0x80) !== 0))) {
    throw malformed(`non-minimal ${what}`);
  }
  if (content[0]! & 0x80) throw malformed(`negative ${what}`);
  return content.readUIntBE(0, content.length);
}

export function readBoolean(el: Element | undefined, what = "BOOLEAN"): boolean {
  const { content } = expectTag(el, TAG.BOOLEAN, what);
  if (content.length !== 1 || (content[0] !== 0 && content[0] !== 0xff)) throw malformed(`${what} is not a DER boolean`);
  return content[0] === 0xff;
}

/** A BIT STRING's bytes; keys and signatures have no unused bits. */
export function readBitString(el: Element | undefined, what = "BIT STRING"): Buffer {
  const { content } = expectTag(el, TAG.BIT_STRING, what);
  if (content.length === 0 || content[0] !== 0) throw malformed(`${what} must have zero unused bits`);
  return content.subarray(1);
}
