/**
 * HPACK (RFC 7541): the header compression of HTTP/2. Pure and synchronous; the frame layer hands
 * in complete header blocks (HEADERS + CONTINUATION payloads) and writes out what `encode` returns.
 *
 * Header lists are flat `[name0, value0, name1, value1, ...]` arrays of latin1 strings, one char
 * per byte, so any octets round-trip and a string's length is its size on the wire.
 */
import { TetherError, type CodeOf } from "../../core/errors.js";
import { HuffmanError, huffmanDecode } from "./huffman.js";

/**
 * The names of the fields a decoded list carried as never indexed (RFC 7541 §6.2.3). An
 * intermediary must re-encode those never indexed too (§7.1.3), so the decoder leaves this set on
 * the list (a non-enumerable property, absent in the common case) and the encoder honours it. By
 * name: one never-indexed field makes every field of its name in that list never indexed, which
 * only ever indexes less.
 */
export const NEVER_INDEXED: unique symbol = Symbol("hpack.never-indexed");

export type HeaderFields = string[] & { readonly [NEVER_INDEXED]?: ReadonlySet<string> };

/** `fields`, carrying `names` as its never-indexed names (for a list built from a decoded one). */
export function withNeverIndexed(fields: HeaderFields, names: ReadonlySet<string> | undefined): HeaderFields {
  if (names && names.size > 0) Object.defineProperty(fields, NEVER_INDEXED, { value: names, configurable: true });
  return fields;
}

export type HpackErrorCode = CodeOf<"HpackError">;

/** A header block that cannot be decoded. For HTTP/2 this is a connection error (COMPRESSION_ERROR). */
export class HpackError extends TetherError<HpackErrorCode> {}

/** The SETTINGS_HEADER_TABLE_SIZE default (RFC 9113 §6.5.2). */
export const DEFAULT_TABLE_SIZE = 4096;

/** RFC 7541 §4.1: an entry's size counts 32 octets of overhead besides its name and value. */
const ENTRY_OVERHEAD = 32;

// prettier-ignore
const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [":authority", ""], [":method", "GET"], [":method", "POST"], [":path", "/"], [":path", "/index.html"],
  [":scheme", "http"], [":scheme", "https"], [":status", "200"], [":status", "204"], [":status", "206"],
  [":status", "304"], [":status", "400"], [":status", "404"], [":status", "500"], ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"], ["accept-language", ""], ["accept-ranges", ""], ["accept", ""],
  ["access-control-allow-origin", ""], ["age", ""], ["allow", ""], ["authorization", ""], ["cache-control", ""],
  ["content-disposition", ""], ["content-encoding", ""], ["content-language", ""], ["content-length", ""],
  ["content-location", ""], ["content-range", ""], ["content-type", ""], ["cookie", ""], ["date", ""],
  ["etag", ""], ["expect", ""], ["expires", ""], ["from", ""], ["host", ""], ["if-match", ""],
  ["if-modified-since", ""], ["if-none-match", ""], ["if-range", ""], ["if-unmodified-since", ""],
  ["last-modified", ""], ["link", ""], ["location", ""], ["max-forwards", ""], ["proxy-authenticate", ""],
  ["proxy-authorization", ""], ["range", ""], ["referer", ""], ["refresh", ""], ["retry-after", ""],
  ["server", ""], ["set-cookie", ""], ["strict-transport-security", ""], ["transfer-encoding", ""],
  ["user-agent", ""], ["vary", ""], ["via", ""], ["www-authenticate", ""],
];
const STATIC_COUNT = STATIC_TABLE.length;

/**
 * The dynamic table (RFC 7541 §2.3.2, §4) as a ring of names and values, newest first. Entries are
 * at least 32 octets, so a table of `maxSize` never holds more than maxSize / 32 of them and the
 * ring never grows.
 */
class DynamicTable {
  private readonly names: string[];
  private readonly values: string[];
  /** Slot of the newest entry. */
  private newest = 0;
  length = 0;
  /** Sum of entry sizes (RFC 7541 §4.1). */
  size = 0;

  constructor(
    /** Upper bound for `maxSize`, which sizes the ring. */
    capacityBytes: number,
    public maxSize: number,
    /** Told about each evicted entry, oldest first. */
    private readonly onEvict?: (name: string, value: string) => void,
  ) {
    const slots = Math.max(1, Math.floor(capacityBytes / ENTRY_OVERHEAD));
    this.names = new Array<string>(slots).fill("");
    this.values = new Array<string>(slots).fill("");
  }

  /** 0 is the newest entry. The caller checks `index < length`. */
  name(index: number): string {
    return this.names[(this.newest + index) % this.names.length]!;
  }

  value(index: number): string {
    return this.values[(this.newest + index) % this.values.length]!;
  }

  add(name: string, value: string): void {
    const entrySize = name.length + value.length + ENTRY_OVERHEAD;
    // §4.4: an entry larger than the table empties it and is not added.
    this.evictTo(Math.max(0, this.maxSize - entrySize));
    if (entrySize > this.maxSize) return;
    this.newest = (this.newest + this.names.length - 1) % this.names.length;
    this.names[this.newest] = name;
    this.values[this.newest] = value;
    this.length++;
    this.size += entrySize;
  }

  setMaxSize(maxSize: number): void {
    this.maxSize = maxSize;
    this.evictTo(maxSize);
  }

  private evictTo(targetSize: number): void {
    while (this.size > targetSize) {
      const oldest = (this.newest + this.length - 1) % this.names.length;
      const name = this.names[oldest]!;
      const value = this.values[oldest]!;
      this.size -= name.length + value.length + ENTRY_OVERHEAD;
      this.length--;
      this.onEvict?.(name, value);
    }
  }
}

const EMPTY = Buffer.alloc(0);

export interface HpackDecoderOptions {
  /** What we advertise as SETTINGS_HEADER_TABLE_SIZE; the peer may not make the table larger. */
  maxTableSize?: number;
  /** RFC 9113 §6.5.2 size: sum of name and value lengths plus 32 per field. */
  maxHeaderListSize?: number;
}

export class HpackDecoder {
  private readonly table: DynamicTable;
  private readonly maxTableSize: number;
  private readonly maxHeaderListSize: number;
  // Cursor state of the block being decoded; fields rather than locals so the readers stay small.
  private block: Buffer = EMPTY;
  private pos = 0;

  constructor(options: HpackDecoderOptions = {}) {
    this.maxTableSize = options.maxTableSize ?? DEFAULT_TABLE_SIZE;
    this.maxHeaderListSize = options.maxHeaderListSize ?? 64 * 1024;
    this.table = new DynamicTable(this.maxTableSize, this.maxTableSize);
  }

  /** Sum of the dynamic table's entry sizes. */
  get dynamicTableSize(): number {
    return this.table.size;
  }

  /** The dynamic table, newest entry first, as flat fields (for inspection and tests). */
  dynamicTableEntries(): HeaderFields {
    const fields: HeaderFields = [];
    for (let i = 0; i < this.table.length; i++) fields.push(this.table.name(i), this.table.value(i));
    return fields;
  }

  /** Decodes one complete header block. Throws HpackError; after that the decoder is unusable. */
  decode(block: Buffer): HeaderFields {
    this.block = block;
    this.pos = 0;
    const fields: HeaderFields = [];
    let neverIndexed: Set<string> | undefined;
    let listSize = 0;
    while (this.pos < block.length) {
      const first = block[this.pos]!;
      let name: string;
      let value: string;
      if (first & 0x80) {
        // §6.1 indexed field.
        const index = this.readInteger(7);
        name = this.nameAt(index);
        value = index <= STATIC_COUNT ? STATIC_TABLE[index - 1]![1] : this.table.value(index - STATIC_COUNT - 1);
      } else if (first & 0x40) {
        // §6.2.1 literal with incremental indexing.
        name = this.readLiteralName(6);
        value = this.readString();
        this.table.add(name, value);
      } else if (first & 0x20) {
        // §6.3 dynamic table size update: only before the first field (§4.2).
        if (fields.length > 0) throw new HpackError("HPACK_TABLE_SIZE", "a dynamic table size update follows a header field");
        const size = this.readInteger(5);
        if (size > this.maxTableSize) {
          throw new HpackError("HPACK_TABLE_SIZE", `dynamic table size update to ${size} exceeds the advertised ${this.maxTableSize}`);
        }
        this.table.setMaxSize(size);
        continue;
      } else {
        // §6.2.2 without indexing (0000) and §6.2.3 never indexed (0001): same layout.
        name = this.readLiteralName(4);
        value = this.readString();
        if (first & 0x10) (neverIndexed ??= new Set()).add(name);
      }
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      if (listSize > this.maxHeaderListSize) {
        throw new HpackError("HPACK_HEADER_LIST_TOO_LARGE", `the header list exceeds ${this.maxHeaderListSize} octets`);
      }
      fields.push(name, value);
    }
    // Don't keep the caller's buffer (often a slice of a larger socket chunk) alive.
    this.block = EMPTY;
    return withNeverIndexed(fields, neverIndexed);
  }

  private nameAt(index: number): string {
    if (index === 0) throw new HpackError("HPACK_BAD_INDEX", "index 0 is not a table entry");
    if (index <= STATIC_COUNT) return STATIC_TABLE[index - 1]![0];
    if (index - STATIC_COUNT > this.table.length) {
      throw new HpackError("HPACK_BAD_INDEX", `index ${index} is past the ${STATIC_COUNT + this.table.length} table entries`);
    }
    return this.table.name(index - STATIC_COUNT - 1);
  }

  /** A literal's name: an index with the given prefix, or 0 and then a string. */
  private readLiteralName(prefixBits: number): string {
    const index = this.readInteger(prefixBits);
    return index === 0 ? this.readString() : this.nameAt(index);
  }

  /** §5.1 prefixed integer, starting at `pos`. */
  private readInteger(prefixBits: number): number {
    const block = this.block;
    const mask = (1 << prefixBits) - 1;
    let value = block[this.pos++]! & mask;
    if (value < mask) return value;
    // Values here bound string lengths, indexes and table sizes, so 2^31 is far past legitimate;
    // the guard also stops endless zero-valued continuation bytes.
    for (let shift = 0; ; shift += 7) {
      if (this.pos >= block.length) throw new HpackError("HPACK_TRUNCATED", "the block ends inside an integer");
      if (shift > 28) throw new HpackError("HPACK_INTEGER_OVERFLOW", "an integer has too many continuation octets");
      const octet = block[this.pos++]!;
      value += (octet & 0x7f) * 2 ** shift;
      if (value > 0x7fffffff) throw new HpackError("HPACK_INTEGER_OVERFLOW", "an integer exceeds 2^31 - 1");
      if ((octet & 0x80) === 0) return value;
    }
  }

  /** §5.2 string literal: H flag, 7-bit prefixed length, octets. */
  private readString(): string {
    const block = this.block;
    if (this.pos >= block.length) throw new HpackError("HPACK_TRUNCATED", "the block ends before a string literal");
    const huffman = block[this.pos]! & 0x80;
    const length = this.readInteger(7);
    const start = this.pos;
    const end = start + length;
    if (end > block.length) {
      throw new HpackError("HPACK_TRUNCATED", `a string literal of ${length} octets runs past the end of the block`);
    }
    this.pos = end;
    if (!huffman) return block.toString("latin1", start, end);
    try {
      return huffmanDecode(block, start, end);
    } catch (err) {
      if (err instanceof HuffmanError) throw new HpackError("HPACK_BAD_HUFFMAN", `bad Huffman string: ${err.message}`);
      throw err;
    }
  }
}

/** Fields whose values are secrets: never indexed, by us or by intermediaries (§7.1.3). */
const SENSITIVE_NAMES = new Set(["authorization", "proxy-authorization", "cookie", "set-cookie"]);

/** Fields whose values change with nearly every message: indexing them only churns the table. */
const PER_MESSAGE_NAMES = new Set([
  "content-length",
  "grpc-timeout",
  "grpc-message",
  "date",
  "age",
  "etag",
  "last-modified",
  "if-modified-since",
  "if-none-match",
  "location",
  "x-request-id",
  "traceparent",
  "tracestate",
  "grpc-trace-bin",
]);

/** Values longer than this are not indexed: they are rarely repeated and would evict many entries. */
const MAX_INDEXED_VALUE_LENGTH = 256;

interface StaticName {
  index: number;
  indexByValue: Map<string, number>;
}

const STATIC_BY_NAME = new Map<string, StaticName>();
for (const [i, [name, value]] of STATIC_TABLE.entries()) {
  let entry = STATIC_BY_NAME.get(name);
  if (!entry) STATIC_BY_NAME.set(name, (entry = { index: i + 1, indexByValue: new Map() }));
  entry.indexByValue.set(value, i + 1);
}

export interface HpackEncoderOptions {
  /** Largest dynamic table this encoder will use, whatever the peer allows; bounds its memory. */
  maxTableSize?: number;
}

/**
 * Encodes header lists for one connection. Strings are written raw (no Huffman): cheaper per
 * message, and repeated fields cost one or two octets from the dynamic table anyway.
 * Names must already be lowercase (RFC 9113 §8.2.1); values are latin1 strings.
 */
export class HpackEncoder {
  private readonly ownLimit: number;
  private readonly table: DynamicTable;
  /** name → value → insertion number of the entry in the dynamic table. */
  private readonly inserted = new Map<string, Map<string, number>>();
  private insertions = 0;
  /** Smallest table size since the last block, when a size update is owed (§4.2). */
  private pendingMinSize: number | undefined;
  private out = Buffer.allocUnsafe(1024);
  private pos = 0;

  constructor(options: HpackEncoderOptions = {}) {
    this.ownLimit = options.maxTableSize ?? DEFAULT_TABLE_SIZE;
    // The peer's decoder starts at the protocol default, so that is where we start too.
    this.table = new DynamicTable(this.ownLimit, Math.min(this.ownLimit, DEFAULT_TABLE_SIZE), (name, value) =>
      this.forget(name, value),
    );
  }

  /** Sum of the dynamic table's entry sizes, as the peer's decoder also sees it. */
  get dynamicTableSize(): number {
    return this.table.size;
  }

  /**
   * The peer's SETTINGS_HEADER_TABLE_SIZE. We use min(peer, own limit); when that changes, the
   * next block starts with a size update, preceded by one for the smallest size in between.
   */
  setMaxTableSize(peerMaxSize: number): void {
    const size = Math.min(peerMaxSize, this.ownLimit);
    if (size === this.table.maxSize) return;
    this.pendingMinSize = Math.min(this.pendingMinSize ?? size, size);
    this.table.setMaxSize(size);
  }

  encode(fields: HeaderFields): Buffer {
    this.pos = 0;
    if (this.pendingMinSize !== undefined) {
      this.reserve(12);
      if (this.pendingMinSize < this.table.maxSize) this.writeInteger(0x20, 5, this.pendingMinSize);
      this.writeInteger(0x20, 5, this.table.maxSize);
      this.pendingMinSize = undefined;
    }
    const neverIndexed = fields[NEVER_INDEXED];
    for (let i = 0; i + 1 < fields.length; i += 2) this.encodeField(fields[i]!, fields[i + 1]!, neverIndexed?.has(fields[i]!) === true);
    return Buffer.from(this.out.subarray(0, this.pos));
  }

  /** `neverIndexed`: the field came never indexed, so it leaves never indexed (RFC 7541 §7.1.3). */
  private encodeField(name: string, value: string, neverIndexed: boolean): void {
    // At most three integers (≤ 6 octets each below 2^31) plus the raw strings.
    this.reserve(name.length + value.length + 3 * 6);
    const staticName = STATIC_BY_NAME.get(name);
    const nameIndex = staticName?.index ?? 0;
    if (neverIndexed) return this.writeLiteral(0x10, 4, nameIndex, name, value);
    const staticIndex = staticName?.indexByValue.get(value);
    if (staticIndex !== undefined) return this.writeInteger(0x80, 7, staticIndex);
    if (SENSITIVE_NAMES.has(name)) return this.writeLiteral(0x10, 4, nameIndex, name, value);

    const insertion = this.inserted.get(name)?.get(value);
    if (insertion !== undefined) return this.writeInteger(0x80, 7, STATIC_COUNT + this.insertions - insertion);
    if (!this.worthIndexing(name, value)) return this.writeLiteral(0x00, 4, nameIndex, name, value);

    this.writeLiteral(0x40, 6, nameIndex, name, value);
    this.table.add(name, value);
    let byValue = this.inserted.get(name);
    if (!byValue) this.inserted.set(name, (byValue = new Map()));
    byValue.set(value, this.insertions++);
  }

  private worthIndexing(name: string, value: string): boolean {
    if (value.length > MAX_INDEXED_VALUE_LENGTH || PER_MESSAGE_NAMES.has(name)) return false;
    // An entry taking most of the table would flush everything else out of it.
    if ((name.length + value.length + ENTRY_OVERHEAD) * 4 > this.table.maxSize * 3) return false;
    // gRPC paths (/pkg.Service/Method) repeat; paths with a query string seldom do.
    return name !== ":path" || !value.includes("?");
  }

  /** Keeps `inserted` in step with the table as entries are evicted, oldest first. */
  private forget(name: string, value: string): void {
    const byValue = this.inserted.get(name);
    if (!byValue) return;
    // Only the oldest insertion can be evicted; a pair is never inserted twice while present.
    byValue.delete(value);
    if (byValue.size === 0) this.inserted.delete(name);
  }

  private writeLiteral(pattern: number, prefixBits: number, nameIndex: number, name: string, value: string): void {
    this.writeInteger(pattern, prefixBits, nameIndex);
    if (nameIndex === 0) this.writeString(name);
    this.writeString(value);
  }

  private writeString(value: string): void {
    this.writeInteger(0x00, 7, value.length);
    this.pos += this.out.write(value, this.pos, "latin1");
  }

  /** §5.1 prefixed integer; `pattern` holds the representation's bits above the prefix. */
  private writeInteger(pattern: number, prefixBits: number, value: number): void {
    const out = this.out;
    const mask = (1 << prefixBits) - 1;
    if (value < mask) {
      out[this.pos++] = pattern | value;
      return;
    }
    out[this.pos++] = pattern | mask;
    value -= mask;
    while (value >= 0x80) {
      out[this.pos++] = (value & 0x7f) | 0x80;
      value = Math.floor(value / 0x80);
    }
    out[this.pos++] = value;
  }

  private reserve(bytes: number): void {
    if (this.pos + bytes <= this.out.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.pos + bytes));
    this.out.copy(grown, 0, 0, this.pos);
    this.out = grown;
  }
}
