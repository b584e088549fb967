/**
 * Which file of this folder registers which top-level command, so `tether X` loads only X's
 * modules: the sidecar proxy (`tether proxy`) must not carry the Kubernetes client, the CA, the
 * installer or the dashboard in its memory. Anything else (no command, --help, `help`, an unknown
 * name) loads every file, so help lists everything and commander can suggest a close name.
 *
 * test/cli/commands.test.ts checks that `names` is exactly what each file registers.
 */
import type { Command } from "commander";

type Register = (program: Command) => void;

export interface CommandModule {
  /** The top-level commands the module registers. */
  names: readonly string[];
  load(): Promise<Register>;
}

/** In the order the commands appear in `tether --help`. */
export const COMMAND_MODULES: readonly CommandModule[] = [
  { names: ["ca"], load: async () => (await import("./ca.js")).registerCaCommands },
  { names: ["identity"], load: async () => (await import("./identity.js")).registerIdentityCommands },
  { names: ["controller"], load: async () => (await import("./controller.js")).registerControllerCommands },
  { names: ["policy", "authz"], load: async () => (await import("./policy.js")).registerPolicyCommands },
  { names: ["destination", "diagnostics"], load: async () => (await import("./discovery.js")).registerDiscoveryCommands },
  { names: ["proxy-init"], load: async () => (await import("./proxy.js")).registerProxyCommands },
  { names: ["proxy"], load: async () => (await import("./proxy-run.js")).registerProxyRunCommands },
  { names: ["install", "uninstall", "inject", "check", "injector"], load: async () => (await import("./install.js")).registerInstallCommands },
  { names: ["local"], load: async () => (await import("./local.js")).registerLocalCommands },
  { names: ["local"], load: async () => (await import("./local-mesh.js")).registerLocalMeshCommands },
  { names: ["stat", "top", "edges", "dashboard"], load: async () => (await import("./stat.js")).registerStatCommands },
];

/** The modules `tether ...args` needs: those naming args[0] as a command, else all of them. */
export function modulesFor(args: readonly string[]): readonly CommandModule[] {
  const first = args[0];
  const named = first === undefined ? [] : COMMAND_MODULES.filter((m) => m.names.includes(first));
  return named.length > 0 ? named : COMMAND_MODULES;
}

/** Registers on `program` the commands `args` (the arguments after `tether`) can reach. */
export async function registerCommands(program: Command, args: readonly string[]): Promise<void> {
  const registers = await Promise.all(modulesFor(args).map((m) => m.load()));
  for (const register of registers) register(program);
}
