/**
 * The HPACK decoder (src/proxy/h2/hpack.ts) on the header blocks of one connection: random
 * representations, Huffman strings, mutated and random bytes, decoded in order by one decoder.
 * Oracle: a block decodes or throws HpackError (nothing else), the dynamic table never exceeds the
 * size we allow, a decoded list respects MAX_HEADER_LIST_SIZE, and what was decoded survives
 * decode(encode(x)) == x through a fresh encoder/decoder pair, also with table size changes.
 */
import fc from "fast-check";
import { HpackDecoder, HpackEncoder, HpackError, type HeaderFields } from "../../../src/proxy/h2/hpack.js";
import { headerBlocks } from "./hpack-blocks.js";
import { expect, target } from "./target.js";

const MAX_LIST = 4096;

interface Input {
  blocks: Buffer[];
  /** SETTINGS_HEADER_TABLE_SIZE the re-encoding peer announces. */
  peerTableSize: number;
}

function listSize(fields: HeaderFields): number {
  let n = 0;
  for (let i = 0; i < fields.length; i += 2) n += fields[i]!.length + fields[i + 1]!.length + 32;
  return n;
}

export const hpackTarget = target<Input>({
  name: "hpack",
  what: "HPACK decoder: decodes or HpackError, table and list bounded, decode(encode(x)) == x",
  testRuns: 2000,
  open: () => ({
    arbitrary: fc.record({ blocks: headerBlocks, peerTableSize: fc.constantFrom(4096, 256, 0, 100_000) }),
    check({ blocks, peerTableSize }) {
      const decoder = new HpackDecoder({ maxHeaderListSize: MAX_LIST });
      const decoded: HeaderFields[] = [];
      for (const block of blocks) {
        try {
          const fields = decoder.decode(block);
          expect(fields.length % 2 === 0 && fields.every((s) => typeof s === "string"), "decoded fields are not name/value strings");
          expect(listSize(fields) <= MAX_LIST, `a list of ${listSize(fields)} octets passed MAX_HEADER_LIST_SIZE ${MAX_LIST}`);
          decoded.push(fields);
        } catch (err) {
          if (!(err instanceof HpackError)) throw err;
          break; // the connection ends on a COMPRESSION_ERROR
        }
        expect(decoder.dynamicTableSize <= 4096, `dynamic table grew to ${decoder.dynamicTableSize}`);
      }
      // What was decoded, re-encoded on a new connection, decodes to the same lists.
      const encoder = new HpackEncoder();
      const again = new HpackDecoder({ maxHeaderListSize: 1 << 20, maxTableSize: 4096 });
      encoder.setMaxTableSize(peerTableSize);
      for (const fields of decoded) {
        const back = again.decode(encoder.encode(fields));
        expect(back.length === fields.length && back.every((v, i) => v === fields[i]), "decode(encode(x)) differs from x");
      }
    },
  }),
});
