/**
 * Every fuzz target (test/fuzz/targets) as a property test: at least 1,000 generated inputs each,
 * seeded (FUZZ_SEED=n to replay a run; fast-check prints the seed and path of a failure). The long
 * runs are `npm run bench -- fuzz`.
 */
import { test } from "node:test";
import fc from "fast-check";
import { FUZZ_TARGETS } from "./targets/index.js";
import { pythonHpackMissing } from "./python-hpack.js";

const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const needsPython = new Set(["hpack-python"]);

for (const t of FUZZ_TARGETS) {
  const missing = needsPython.has(t.name) ? pythonHpackMissing() : undefined;
  test(`fuzz ${t.name}: ${t.what}`, { timeout: 120_000, ...(missing ? { skip: missing } : {}) }, async () => {
    const harness = await t.open();
    try {
      await fc.assert(
        fc.asyncProperty(harness.arbitrary, async (input) => {
          await harness.check(input);
        }),
        { numRuns: t.testRuns, ...(seed === undefined ? {} : { seed }) },
      );
    } finally {
      await harness.close?.();
    }
  });
}
