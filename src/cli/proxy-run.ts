/**
 * `tether proxy`: runs the sidecar proxy. Its settings come from the environment the injector
 * sets (see src/proxy/config.ts and docs/install.md).
 */
import type { Command } from "commander";
import { readProxyConfig } from "../proxy/config.js";
import { startProxy } from "../proxy/main.js";

export function registerProxyRunCommands(program: Command): void {
  program
    .command("proxy")
    .description("run the tether sidecar proxy (inbound :4143, outbound :4140, admin :4191); settings from TETHER_* env")
    .action(async () => {
      const config = readProxyConfig(process.env);
      const proxy = await startProxy(config);
      const stop = () => void proxy.shutdown();
      process.once("SIGTERM", stop);
      process.once("SIGINT", stop);
    });
}
