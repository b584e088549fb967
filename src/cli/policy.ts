import type { Command } from "commander";

/** Registers this area's sub-commands (filled in by the area's work). */
export function registerPolicyCommands(_program: Command): void {}
