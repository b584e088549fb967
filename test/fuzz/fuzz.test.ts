/**
 * Every fuzz target (test/fuzz/targets) as a property test: at least 1,000 generated inputs each,
 * seeded (FUZZ_SEED=n to replay a run; fast-check prints the seed and path of a failure). The long
 * runs are `npm run bench -- fuzz`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { FUZZ_TARGETS } from "./targets/index.js";
import { pythonHpackMissing } from "./python-hpack.js";

const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const needsPython = new Set(["hpack-python"]);

for (const t of FUZZ_TARGETS) {
  const missing = needsPython.has(t.name) ? pythonHpackMissing() : undefined;
  test(`fuzz ${t.name}: ${t.what}`, { timeout: 120_000, ...(missing ? { skip: missing } : {}) }, async () => {
    const harness = await t.open();
    const verdicts = { accepted: 0, refused: 0 };
    try {
      await fc.assert(
        fc.asyncProperty(harness.arbitrary, async (input) => {
          const verdict = await harness.check(input);
          if (verdict) verdicts[verdict]++;
        }),
        { numRuns: t.testRuns, ...(seed === undefined ? {} : { seed }) },
      );
      for (const kind of ["accepted", "refused"] as const) {
        const least = t.shares?.[kind];
        if (least !== undefined) assert.ok(verdicts[kind] >= least * t.testRuns, `only ${verdicts[kind]} of ${t.testRuns} inputs ${kind}: the generator is too narrow`);
      }
    } finally {
      await harness.close?.();
    }
  });
}
