/**
 * Header blocks for the HPACK targets, written by a small encoder of its own (RFC 7541 §5, §6) so
 * that they do not depend on the encoder under test: random representations (indexed, literal with
 * or without indexing, never indexed, size updates), Huffman or raw strings, valid or not, and
 * random or mutated bytes.
 */
import fc from "fast-check";
import { huffmanEncode } from "../../../src/proxy/h2/huffman.js";

type Representation =
  | { kind: "indexed"; index: number }
  | { kind: "literal"; prefix: 0x40 | 0x00 | 0x10; nameIndex: number; name: string; value: string; huffmanName: boolean; huffmanValue: boolean }
  | { kind: "size"; size: number };

function integer(pattern: number, prefixBits: number, value: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [pattern | value];
  const out = [pattern | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) | 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return out;
}

function string(value: string, huffman: boolean): number[] {
  const bytes = huffman ? [...huffmanEncode(value)] : [...Buffer.from(value, "latin1")];
  return [...integer(huffman ? 0x80 : 0, 7, bytes.length), ...bytes];
}

function encode(reps: Representation[]): Buffer {
  const out: number[] = [];
  for (const r of reps) {
    if (r.kind === "indexed") out.push(...integer(0x80, 7, r.index));
    else if (r.kind === "size") out.push(...integer(0x20, 5, r.size));
    else {
      out.push(...integer(r.prefix, r.prefix === 0x40 ? 6 : 4, r.nameIndex));
      if (r.nameIndex === 0) out.push(...string(r.name, r.huffmanName));
      out.push(...string(r.value, r.huffmanValue));
    }
  }
  return Buffer.from(out);
}

const text = fc.oneof(
  fc.constantFrom("", "a", "content-type", "application/grpc", "x-custom", "/pkg.Svc/Method", "GET"),
  fc.stringMatching(/^[a-z0-9-]{1,20}$/),
  fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 40 }).map((c) => String.fromCharCode(...c)),
);

const representation: fc.Arbitrary<Representation> = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 75 }).map((index) => ({ kind: "indexed" as const, index })) },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("literal" as const),
      prefix: fc.constantFrom(0x40 as const, 0x00 as const, 0x10 as const),
      nameIndex: fc.oneof({ weight: 2, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 75 }) }),
      name: text,
      value: text,
      huffmanName: fc.boolean(),
      huffmanValue: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.oneof(fc.integer({ min: 0, max: 4096 }), fc.integer({ min: 0, max: 70000 })).map((size) => ({ kind: "size" as const, size })) },
);

/** A block mutated: bytes changed, cut or added. */
const mutation = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 });

function mutate(block: Buffer, edits: [number, number, number][]): Buffer {
  let out = Buffer.from(block);
  for (const [at, op, byte] of edits) {
    const i = at % Math.max(1, out.length);
    if (op === 0 && out.length > 0) out[i] = byte;
    else if (op === 1) out = out.subarray(0, i);
    else out = Buffer.concat([out.subarray(0, i), Buffer.from([byte]), out.subarray(i)]);
  }
  return out;
}

const block: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 4, arbitrary: fc.array(representation, { maxLength: 12 }).map(encode) },
  { weight: 2, arbitrary: fc.tuple(fc.array(representation, { minLength: 1, maxLength: 12 }), mutation).map(([reps, edits]) => mutate(encode(reps), edits)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b)) },
);

/** The header blocks of one connection, decoded in order by one decoder. */
export const headerBlocks: fc.Arbitrary<Buffer[]> = fc.array(block, { minLength: 1, maxLength: 5 });
