/**
 * `npm run bench -- fuzz [--minutes N] [--seed S] [--target NAME[,NAME]]`: the long runs of the fuzz
 * targets (test/fuzz/targets, the same definitions `npm test` runs a thousand inputs of). The time
 * is shared equally between the targets, run one after the other, each in a worker thread: a
 * worker that makes no progress for 10 s is stopped and counted as a hang (the input it was on is
 * printed), then the target goes on from the next batch. Seeded and reproducible: batch k of a
 * target uses seed S + k, and every finding is printed with its seed, fast-check's shrunk
 * counterexample and the path to replay it.
 */
import { Worker } from "node:worker_threads";
import { pythonHpackMissing } from "../test/fuzz/python-hpack.js";
import { FUZZ_TARGETS } from "../test/fuzz/targets/index.js";
import type { Finding, Progress, WorkerData } from "./_fuzz-worker.js";

const BATCH = 1000;
const STALL_MS = 10_000;

function option(args: string[], name: string): string | undefined {
  const i = args.findIndex((a) => a === name || a.startsWith(`${name}=`));
  if (i < 0) return undefined;
  return args[i]!.includes("=") ? args[i]!.slice(name.length + 1) : args[i + 1];
}

interface Row extends Omit<Progress, "done" | "nextSeed"> {
  name: string;
  seconds: number;
}

/** Runs one target until `deadline`, restarting its worker after a stall. */
async function runTarget(name: string, seed: number, deadline: number): Promise<Row> {
  const row: Row = { name, seconds: 0, inputs: 0, accepted: 0, refused: 0, crashes: 0, wrongAccepts: 0, hangs: 0, heapMB: 0, findings: [] };
  const started = Date.now();
  let nextSeed = seed;
  while (Date.now() < deadline) {
    const current = new SharedArrayBuffer(12);
    const data: WorkerData = { target: name, seed: nextSeed, deadline, batchSize: BATCH, current };
    const base = { ...row };
    const outcome = await new Promise<"done" | "stalled">((resolve, reject) => {
      const worker = new Worker(new URL("./_fuzz-worker.mjs", import.meta.url), { workerData: data });
      // Progress is the checks the worker begins (shared memory), not its messages: a slow target
      // may take longer than STALL_MS for a batch, or for shrinking a finding, and still move on.
      const at = new Int32Array(current);
      let last = Date.now();
      let seen = "";
      const watchdog = setInterval(() => {
        const now = `${Atomics.load(at, 0)}/${Atomics.load(at, 1)}/${Atomics.load(at, 2)}`;
        if (now !== seen) [seen, last] = [now, Date.now()];
        if (Date.now() - last < STALL_MS) return;
        clearInterval(watchdog);
        row.hangs++;
        row.findings.push({ kind: "hang", seed: at[0]!, message: `no progress for ${STALL_MS / 1000} s on input ${at[1]} of the batch seeded ${at[0]}` });
        nextSeed = at[0]! + 1;
        void worker.terminate().then(() => resolve("stalled"));
      }, 500);
      worker.on("message", (p: Progress) => {
        Object.assign(row, { inputs: base.inputs + p.inputs, accepted: base.accepted + p.accepted, refused: base.refused + p.refused, crashes: base.crashes + p.crashes, wrongAccepts: base.wrongAccepts + p.wrongAccepts, hangs: base.hangs + p.hangs, heapMB: p.heapMB, findings: [...base.findings, ...p.findings] });
        nextSeed = p.nextSeed;
        if (p.done) {
          clearInterval(watchdog);
          resolve("done");
        }
      });
      worker.on("error", (err) => {
        clearInterval(watchdog);
        reject(err);
      });
    });
    if (outcome === "done") break;
  }
  row.seconds = (Date.now() - started) / 1000;
  return row;
}

function pad(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
}

export async function run(args: string[]): Promise<void> {
  const minutes = Number(option(args, "--minutes") ?? 10);
  const seed = Number(option(args, "--seed") ?? 1);
  const wanted = option(args, "--target")?.split(",");
  const unknown = wanted?.filter((w) => !FUZZ_TARGETS.some((t) => t.name === w)) ?? [];
  if (unknown.length > 0) throw new Error(`no fuzz target ${unknown.join(", ")}; targets: ${FUZZ_TARGETS.map((t) => t.name).join(", ")}`);
  const targets = FUZZ_TARGETS.filter((t) => !wanted || wanted.includes(t.name)).filter((t) => {
    const missing = t.name === "hpack-python" ? pythonHpackMissing() : undefined;
    if (missing) console.log(`skipping ${t.name}: ${missing}`);
    return !missing;
  });
  console.log(`fuzz: ${targets.length} targets, ${minutes} min in all, seed ${seed}, batches of ${BATCH} inputs`);
  const share = (minutes * 60_000) / targets.length;
  const rows: Row[] = [];
  for (const t of targets) {
    const row = await runTarget(t.name, seed, Date.now() + share);
    rows.push(row);
    console.log(`  ${t.name}: ${row.inputs} inputs, ${row.crashes} crashes, ${row.hangs} hangs, ${row.wrongAccepts} wrong accepts`);
  }
  const widths = [14, 10, 9, 9, 8, 12, 14, 8];
  console.log();
  console.log(pad(["target", "inputs", "inputs/s", "accepted", "crashes", "hangs (>1 s)", "wrong accepts", "heap MB"], widths));
  for (const r of rows) {
    console.log(pad([r.name, String(r.inputs), String(Math.round(r.inputs / r.seconds)), r.accepted + r.refused === 0 ? "-" : `${((100 * r.accepted) / r.inputs).toFixed(1)}%`, String(r.crashes), String(r.hangs), String(r.wrongAccepts), r.heapMB.toFixed(0)], widths));
  }
  const total = rows.reduce((n, r) => n + r.inputs, 0);
  console.log(pad(["all", String(total), String(Math.round(total / (rows.reduce((s, r) => s + r.seconds, 0) || 1))), "", String(rows.reduce((n, r) => n + r.crashes, 0)), String(rows.reduce((n, r) => n + r.hangs, 0)), String(rows.reduce((n, r) => n + r.wrongAccepts, 0)), ""], widths));
  const findings: (Finding & { target: string })[] = rows.flatMap((r) => r.findings.map((f) => ({ ...f, target: r.name })));
  for (const f of findings) {
    console.log(`\n${f.kind} in ${f.target} (batch seed ${f.seed}): ${f.message}`);
    if (f.counterexample) console.log(`  shrunk: ${f.counterexample}\n  replay: FUZZ_SEED=${f.seed} npm test -- test/fuzz   (or fc.assert with { seed: ${f.seed}, path: "${f.path}" })`);
  }
  if (findings.length > 0) process.exitCode = 1;
}
