/**
 * Flag parsers the commands share (commander calls them; a bad value becomes commander's own
 * "error: option ... argument ... is invalid" line), and the wait of every `serve` command.
 */
import { Command, InvalidArgumentError } from "commander";
import { checkCidr } from "../cluster/policy-validation.js";
import { validateTrustDomain } from "../identity/names.js";

/** A TCP port to listen on: 0 (a free one) to 65535. */
export function portOption(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 65535) throw new InvalidArgumentError(`${text} is not a port (0-65535)`);
  return n;
}

/** A count or a number of milliseconds: a whole number, at least `min` (1 by default). */
export function wholeNumberOption(min = 1): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < min) throw new InvalidArgumentError(`${text} is not a whole number of at least ${min}`);
    return n;
  };
}

/** Comma-separated CIDRs, each checked. */
export function networksOption(text: string): string[] {
  const cidrs = text.split(",").map((s) => s.trim()).filter(Boolean);
  for (const c of cidrs) {
    const problem = checkCidr(c);
    if (typeof problem === "string") throw new InvalidArgumentError(problem);
  }
  return cidrs;
}

export function trustDomainOption(text: string): string {
  try {
    validateTrustDomain(text);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return text;
}

export const LOCAL_DESCRIPTION = "run the mesh on this Linux machine, pods as network namespaces (needs root)";

/** The cluster-state source of a controller: a manifest folder, a kubeconfig, or in-cluster. */
export function withClusterSource(cmd: Command): Command {
  return cmd
    .option("--cluster-dir <dir>", "read cluster state from a folder of YAML manifests (local mesh)")
    .option("--kubeconfig <file>", "read cluster state from Kubernetes with this kubeconfig (neither: in-cluster config)");
}

/** `name` under `parent`, created once however many files add sub-commands to it. */
export function commandGroup(parent: Command, name: string, description: string): Command {
  return parent.commands.find((c) => c.name() === name) ?? parent.command(name).description(description);
}

/** Resolves on the first SIGTERM or SIGINT: what a `serve` command waits for before closing. */
export function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once("SIGTERM", () => resolve());
    process.once("SIGINT", () => resolve());
  });
}
