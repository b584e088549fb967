/**
 * The `tether` command. Each area registers its own sub-commands from one file in this folder;
 * only the file of the command being run is loaded (src/cli/commands.ts).
 */
import { Command } from "commander";
import { TETHER_VERSION } from "../api/mesh.js";
import { registerCommands } from "./commands.js";

const program = new Command("tether")
  .description("tether: a security-first service mesh for Kubernetes")
  .showHelpAfterError()
  .version(TETHER_VERSION);

try {
  await registerCommands(program, process.argv.slice(2));
  await program.parseAsync(process.argv);
} catch (err) {
  const code = (err as { code?: string }).code;
  console.error(`tether: ${err instanceof Error ? err.message : String(err)}${code ? ` [${code}]` : ""}`);
  process.exit(1);
}
