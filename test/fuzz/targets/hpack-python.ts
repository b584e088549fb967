/**
 * Differential: our HPACK decoder against python-hpack (an independent implementation) on the
 * header blocks of one connection. Oracle: every block python-hpack accepts, ours accepts with the
 * same header list (same table state); and ours accepts nothing python-hpack refuses.
 */
import { HpackDecoder, HpackError } from "../../../src/proxy/h2/hpack.js";
import { PythonHpack } from "../python-hpack.js";
import { headerBlocks } from "./hpack-blocks.js";
import { expect, target } from "./target.js";

const MAX_LIST = 65536;

export const hpackPythonTarget = target<Buffer[]>({
  name: "hpack-python",
  what: "HPACK decoder against python-hpack: same lists for every block it accepts, nothing more accepted",
  testRuns: 1000,
  shares: { accepted: 0.03 },
  open() {
    const python = new PythonHpack(MAX_LIST);
    return {
      arbitrary: headerBlocks,
      concurrent: true,
      async check(blocks) {
        const theirs = await python.decode(blocks);
        const decoder = new HpackDecoder({ maxHeaderListSize: MAX_LIST });
        for (const [i, block] of blocks.entries()) {
          const want = theirs.lists[i];
          let ours: string[] | undefined;
          let refusal = "";
          try {
            ours = decoder.decode(block);
          } catch (err) {
            if (!(err instanceof HpackError)) throw err;
            refusal = err.message;
          }
          const where = `block ${i} (${block.toString("hex")})`;
          if (want === undefined) {
            expect(ours === undefined, `${where}: we accepted what python-hpack refused (${theirs.error})`);
            return "refused";
          }
          expect(ours !== undefined, `${where}: we refused (${refusal}) what python-hpack accepted`);
          expect(ours.length === want.length && ours.every((v, j) => v === want[j]), `${where}: we decoded ${JSON.stringify(ours)}, python-hpack ${JSON.stringify(want)}`);
        }
        return "accepted";
      },
      close: () => python.close(),
    };
  },
});
