/**
 * The HPACK Huffman decoder (src/proxy/h2/huffman.ts). Oracle: the code is prefix-free and padding
 * must be the EOS prefix of at most 7 bits (RFC 7541 §5.2), so every byte string decodes to at most
 * one string whose encoding is those exact bytes: decode(b) = s implies encode(s) = b, and
 * decode(encode(s)) = s for any s. Anything else is a HuffmanError.
 */
import fc from "fast-check";
import { HuffmanError, huffmanDecode, huffmanEncode } from "../../../src/proxy/h2/huffman.js";
import { expect, target } from "./target.js";

const latin1 = fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 64 }).map((codes) => String.fromCharCode(...codes));
const ascii = fc.string({ maxLength: 64 });

type Input = { kind: "bytes"; bytes: Uint8Array } | { kind: "string"; value: string } | { kind: "mutated"; value: string; at: number; xor: number };

const arbitrary: fc.Arbitrary<Input> = fc.oneof(
  fc.uint8Array({ maxLength: 64 }).map((bytes) => ({ kind: "bytes" as const, bytes })),
  fc.oneof(latin1, ascii).map((value) => ({ kind: "string" as const, value })),
  fc.tuple(ascii, fc.nat(), fc.integer({ min: 1, max: 255 })).map(([value, at, xor]) => ({ kind: "mutated" as const, value, at, xor })),
);

export const huffmanTarget = target<Input>({
  name: "huffman",
  what: "Huffman decoder: decode(b) = s implies encode(s) = b; decode(encode(s)) = s; else HuffmanError",
  testRuns: 3000,
  open: () => ({
    arbitrary,
    check(input) {
      if (input.kind === "string") {
        const encoded = huffmanEncode(input.value);
        expect(huffmanDecode(encoded, 0, encoded.length) === input.value, "decode(encode(s)) differs from s");
        return;
      }
      let bytes: Buffer;
      if (input.kind === "mutated") {
        bytes = Buffer.from(huffmanEncode(input.value));
        if (bytes.length > 0) bytes[input.at % bytes.length]! ^= input.xor;
      } else bytes = Buffer.from(input.bytes);
      let decoded: string;
      try {
        decoded = huffmanDecode(bytes, 0, bytes.length);
      } catch (err) {
        if (err instanceof HuffmanError) return;
        throw err;
      }
      expect(huffmanEncode(decoded).equals(bytes), `accepted ${bytes.toString("hex")}, which is not the encoding of what it decoded to`);
    },
  }),
});
