/**
 * One fuzz target's long run, in a worker thread of `npm run bench -- fuzz` (so that a hang can be
 * cut from outside). Runs batches of fast-check runs, seeded `seed`, `seed + 1`, …, until the
 * deadline; every check's outcome is counted, none stops the run. Before each check (shrinking
 * included) it writes the batch seed, the run's index and a heartbeat into shared memory, which the
 * main thread watches: a heartbeat that stops means a hang. Progress goes to the main thread as
 * messages.
 */
import { parentPort, workerData } from "node:worker_threads";
import fc from "fast-check";
import { FUZZ_TARGETS } from "../test/fuzz/targets/index.js";
import { WrongAccept, type FuzzHarness } from "../test/fuzz/targets/target.js";

export interface WorkerData {
  target: string;
  seed: number;
  deadline: number;
  batchSize: number;
  /** [batch seed, index in batch] of the check running now, and a count of checks begun (shrinking too). */
  current: SharedArrayBuffer;
}

export interface Finding {
  kind: "crash" | "wrong accept" | "hang";
  seed: number;
  message: string;
  /** fast-check's shrunk counterexample, and the path to replay it. */
  counterexample?: string;
  path?: string;
}

export interface Progress {
  inputs: number;
  accepted: number;
  refused: number;
  crashes: number;
  wrongAccepts: number;
  hangs: number;
  heapMB: number;
  findings: Finding[];
  /** Batch seed the next run should start from. */
  nextSeed: number;
  done: boolean;
}

const HANG_MS = 1000;
const data = workerData as WorkerData;
const current = new Int32Array(data.current);
const progress: Progress = { inputs: 0, accepted: 0, refused: 0, crashes: 0, wrongAccepts: 0, hangs: 0, heapMB: 0, findings: [], nextSeed: data.seed, done: false };

function report(done = false): void {
  progress.heapMB = process.memoryUsage().heapUsed / 1e6;
  progress.done = done;
  parentPort!.postMessage(progress);
}

let nextReport = Date.now() + 250;
/** Progress four times a second, also from inside a batch (a slow target's batch takes seconds). */
function reportNowAndThen(): void {
  if (Date.now() < nextReport) return;
  report();
  nextReport = Date.now() + 250;
}

/** Shrinks the first failure of a kind with fast-check itself, replaying the batch that found it. */
async function shrink(harness: FuzzHarness<unknown>, seed: number, kind: Finding["kind"], message: string): Promise<void> {
  if (progress.findings.some((f) => f.kind === kind)) return;
  const result = await fc.check(
    fc.asyncProperty(harness.arbitrary, async (input) => {
      Atomics.add(current, 2, 1);
      await harness.check(input);
    }),
    { seed, numRuns: data.batchSize },
  );
  progress.findings.push({
    kind,
    seed,
    message: message.slice(0, 500),
    ...(result.failed ? { counterexample: fc.stringify(result.counterexample).slice(0, 2000), path: result.counterexamplePath ?? undefined } : {}),
  });
}

async function runBatch(harness: FuzzHarness<unknown>, seed: number): Promise<void> {
  const failures: [Finding["kind"], string][] = [];
  let index = 0;
  await fc.check(
    fc.asyncProperty(harness.arbitrary, async (input) => {
      Atomics.store(current, 0, seed);
      Atomics.store(current, 1, index++);
      Atomics.add(current, 2, 1);
      const started = performance.now();
      try {
        const verdict = await harness.check(input);
        if (verdict) progress[verdict]++;
      } catch (err) {
        const wrong = err instanceof WrongAccept;
        if (wrong) progress.wrongAccepts++;
        else progress.crashes++;
        failures.push([wrong ? "wrong accept" : "crash", err instanceof Error ? `${err.name}: ${err.message}` : String(err)]);
      }
      if (performance.now() - started > HANG_MS) {
        progress.hangs++;
        failures.push(["hang", `one input took ${Math.round(performance.now() - started)} ms`]);
      }
      progress.inputs++;
      reportNowAndThen();
      return true;
    }),
    { seed, numRuns: data.batchSize },
  );
  for (const [kind, message] of failures) await shrink(harness, seed, kind, message);
}

const target = FUZZ_TARGETS.find((t) => t.name === data.target)!;
const harness = (await target.open()) as FuzzHarness<unknown>;
// Checks that wait on a child process run as parallel batches, so that their requests batch up.
const parallel = harness.concurrent ? 32 : 1;
let seed = data.seed;
while (Date.now() < data.deadline) {
  const seeds = Array.from({ length: parallel }, (_, i) => seed + i);
  seed += parallel;
  await Promise.all(seeds.map((s) => runBatch(harness, s)));
  progress.nextSeed = seed;
  reportNowAndThen();
}
await harness.close?.();
report(true);
