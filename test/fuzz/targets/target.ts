/**
 * What a fuzz target is, shared by the property tests (test/fuzz/fuzz.test.ts, in `npm test`) and
 * the long runs (`npm run bench -- fuzz`): a generator of inputs and a check of one input against
 * an oracle. A check that throws WrongAccept found a wrong accept (the oracle says the input should
 * have been refused, or was answered wrongly); any other exception escaping it is a crash.
 */
import type fc from "fast-check";

/** The oracle disagrees with what the code under test did with the input. */
export class WrongAccept extends Error {
  override readonly name = "WrongAccept";
}

export function expect(condition: unknown, message: string): asserts condition {
  if (!condition) throw new WrongAccept(message);
}

/** What a check may say of an input it passed: whether the code under test accepted it (for the tables). */
export type Verdict = "accepted" | "refused" | void;

/** One opened target: `check` may be called many times, concurrently when `concurrent`. */
export interface FuzzHarness<T> {
  arbitrary: fc.Arbitrary<T>;
  check(input: T): Verdict | Promise<Verdict>;
  /** Checks may run concurrently (e.g. they batch requests to a child process). */
  concurrent?: boolean;
  close?(): void | Promise<void>;
}

export interface FuzzTarget<T = unknown> {
  name: string;
  /** What is fuzzed and what the oracle is, for the tables. */
  what: string;
  /** Inputs in `npm test` (at least 1,000). */
  testRuns: number;
  /**
   * Least shares of the inputs the code under test must accept / refuse in `npm test`: a generator
   * that only makes inputs refused at the first check would prove nothing of the checks after it.
   */
  shares?: { accepted?: number; refused?: number };
  open(): FuzzHarness<T> | Promise<FuzzHarness<T>>;
}

export function target<T>(t: FuzzTarget<T>): FuzzTarget<T> {
  return t;
}
