/** Executes an init plan with the iptables binaries (the I/O half of rules.ts). */
import { spawnSync } from "node:child_process";
import { TetherError, type CodeOf } from "../../core/errors.js";
import type { Step } from "./rules.js";

export class InitRunError extends TetherError<CodeOf<"InitRunError">> {}

/** Guards `remove` loops against a check that never stops succeeding. */
const MAX_REMOVALS = 64;

function exec(argv: string[], input?: string): { ok: boolean; detail: string } {
  const [bin, ...args] = argv;
  const r = spawnSync(bin!, args, { input, encoding: "utf8", timeout: 30_000 });
  if (r.error) return { ok: false, detail: r.error.message };
  return { ok: r.status === 0, detail: (r.stderr || r.stdout || `exit ${r.status}`).trim() };
}

function must(argv: string[], input?: string): void {
  const r = exec(argv, input);
  if (!r.ok) {
    throw new InitRunError(
      "INIT_IPTABLES_FAILED",
      `${argv.join(" ")} failed: ${r.detail} (needs NET_ADMIN and NET_RAW, and the iptables mode of the node: try --iptables iptables-legacy or iptables-nft)`,
    );
  }
}

export function runPlan(steps: Step[]): void {
  for (const step of steps) {
    switch (step.op) {
      case "restore":
        must(step.argv, step.input);
        break;
      case "ensure":
        if (!exec(step.check).ok) must(step.apply);
        break;
      case "remove":
        for (let i = 0; i < MAX_REMOVALS && exec(step.check).ok; i++) must(step.apply);
        break;
      case "run":
        if (step.ignoreFailure) exec(step.argv);
        else must(step.argv);
        break;
    }
  }
}
