/**
 * The `tether` command. Each area registers its own sub-commands from one file in this folder.
 */
import "reflect-metadata";
import { Command } from "commander";
import { registerCaCommands } from "./ca.js";
import { registerIdentityCommands } from "./identity.js";
import { registerControllerCommands } from "./controller.js";
import { registerPolicyCommands } from "./policy.js";
import { registerDiscoveryCommands } from "./discovery.js";
import { registerProxyCommands } from "./proxy.js";
import { registerProxyRunCommands } from "./proxy-run.js";
import { registerInstallCommands } from "./install.js";
import { registerLocalCommands } from "./local.js";
import { registerLocalMeshCommands } from "./local-mesh.js";
import { registerStatCommands } from "./stat.js";

const program = new Command("tether")
  .description("tether: a security-first service mesh for Kubernetes")
  .showHelpAfterError()
  .version("0.1.0");

registerCaCommands(program);
registerIdentityCommands(program);
registerControllerCommands(program);
registerPolicyCommands(program);
registerDiscoveryCommands(program);
registerProxyCommands(program);
registerProxyRunCommands(program);
registerInstallCommands(program);
registerLocalCommands(program);
registerLocalMeshCommands(program);
registerStatCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const code = (err as { code?: string }).code;
  console.error(`tether: ${err instanceof Error ? err.message : String(err)}${code ? ` [${code}]` : ""}`);
  process.exit(1);
}
