/**
 * python-hpack (Debian's python3-hpack, run by /usr/bin/python3) in a long-lived child process
 * speaking JSON lines: the independent HPACK decoder of the differential target. Requests made in
 * the same event-loop turn go out as one line and come back as one, so that thousands of cases
 * cost a few pipe round trips.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const SYSTEM_PYTHON = "/usr/bin/python3";
const SCRIPT = fileURLToPath(new URL("./hpack_oracle.py", import.meta.url));

export interface PythonDecoding {
  /** The decoded lists of the blocks accepted, in order. */
  lists: string[][];
  /** Why the next block was refused (exception class and message), or null if all were accepted. */
  error: string | null;
}

/** Why python-hpack cannot be used here, or undefined when it can. */
export function pythonHpackMissing(): string | undefined {
  if (!existsSync(SYSTEM_PYTHON)) return `${SYSTEM_PYTHON} is missing (apt-get install python3-hpack)`;
  return undefined;
}

interface Waiter {
  blocks: string[];
  resolve(d: PythonDecoding): void;
  reject(err: Error): void;
}

export class PythonHpack {
  private readonly child: ChildProcessWithoutNullStreams;
  private queued: Waiter[] = [];
  private readonly inFlight: Waiter[][] = [];
  private scheduled = false;
  private failure: Error | undefined;

  constructor(private readonly maxHeaderListSize: number) {
    this.child = spawn(SYSTEM_PYTHON, [SCRIPT], { stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    this.child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    this.child.on("exit", (code) => this.fail(new Error(`python-hpack exited (${code}): ${stderr.slice(-500)}`)));
    createInterface({ input: this.child.stdout }).on("line", (line) => {
      const batch = this.inFlight.shift();
      if (!batch) return;
      const { results } = JSON.parse(line) as { results: PythonDecoding[] };
      batch.forEach((waiter, i) => waiter.resolve(results[i]!));
    });
  }

  /** Decodes the blocks of one connection in order. */
  decode(blocks: Buffer[]): Promise<PythonDecoding> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.queued.push({ blocks: blocks.map((b) => b.toString("latin1")), resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.send());
      }
    });
  }

  private send(): void {
    this.scheduled = false;
    const batch = this.queued;
    this.queued = [];
    if (batch.length === 0) return;
    this.inFlight.push(batch);
    this.child.stdin.write(JSON.stringify({ cases: batch.map((c) => c.blocks), maxHeaderListSize: this.maxHeaderListSize }) + "\n");
  }

  private fail(err: Error): void {
    this.failure = err;
    for (const waiter of [...this.inFlight.splice(0).flat(), ...this.queued.splice(0)]) waiter.reject(err);
  }

  close(): void {
    this.child.stdin.end();
    this.child.kill();
  }
}
