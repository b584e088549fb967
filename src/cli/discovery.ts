import type { Command } from "commander";

/** Registers this area's sub-commands (filled in by the area's work). */
export function registerDiscoveryCommands(_program: Command): void {}
