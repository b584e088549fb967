import type { Command } from "commander";
import { commandGroup, LOCAL_DESCRIPTION, wholeNumberOption } from "./options.js";
import { requireRoot } from "../local/command.js";
import { down } from "../local/down.js";
import { localLogger } from "../local/log.js";
import { DEFAULT_STATE_DIR } from "../local/names.js";
import { netCheck } from "../local/net-check.js";

const wholeNumber = wholeNumberOption(1);

/** Registers `tether local down` and `tether local net-check` (the runner adds up/demo). */
export function registerLocalCommands(program: Command): void {
  const local = commandGroup(program, "local", LOCAL_DESCRIPTION);

  local
    .command("down")
    .description("remove every namespace, link, bridge, iptables rule and process a local mesh created, also after a crash")
    .option("--state-dir <dir>", "state folder of the local mesh", DEFAULT_STATE_DIR)
    .option("--instance <name>", "also sweep this instance's names (the bridge name; default tether0 when no state is found)")
    .option("--grace-ms <ms>", "time between SIGTERM and SIGKILL for processes", wholeNumber, 3000)
    .action(async (opts: { stateDir: string; instance?: string; graceMs: number }) => {
      requireRoot("tether local down");
      const report = await down({
        stateDir: opts.stateDir,
        graceMs: opts.graceMs,
        logger: localLogger(),
        ...(opts.instance ? { instance: opts.instance } : {}),
      });
      const stopped = report.stoppedRunner ? `stopped runner ${report.stoppedRunner}; ` : "";
      console.log(
        `${stopped}removed ${report.processes} processes, ${report.rules} iptables rules, ${report.namespaces.length} namespaces, ${report.links.length} links (instances: ${report.instances.join(", ")})`,
      );
    });

  local
    .command("net-check")
    .description("prove the local network substrate works: pods on a fresh bridge, pod-to-pod TCP, a Service VIP, cleanup")
    .option("--state-dir <dir>", "state folder (default: a temporary one, removed afterwards)")
    .option("--subnet <cidr>", "pod subnet for the check (default: a free /24 in 10.246.0.0/16)")
    .option("--connections <n>", "connections through the Service VIP", wholeNumber, 40)
    .action(async (opts: { stateDir?: string; subnet?: string; connections: number }) => {
      requireRoot("tether local net-check");
      const results = await netCheck({
        connections: opts.connections,
        logger: localLogger(),
        ...(opts.stateDir ? { stateDir: opts.stateDir } : {}),
        ...(opts.subnet ? { subnet: opts.subnet } : {}),
      });
      const width = Math.max(...results.map((r) => r.name.length));
      for (const r of results) console.log(`${r.ok ? "ok  " : "FAIL"}  ${r.name.padEnd(width)}  ${r.detail}`);
      if (results.some((r) => !r.ok)) process.exitCode = 1;
    });
}
