import type { Command } from "commander";
import { PROXY_ADMIN_PORT, PROXY_INBOUND_PORT, PROXY_OUTBOUND_PORT, PROXY_UID } from "../api/mesh.js";
import {
  DEFAULT_INIT_CONFIG,
  installPlan,
  parsePorts,
  removePlan,
  renderPlan,
  type InitConfig,
} from "../proxy/init/rules.js";
import { runPlan } from "../proxy/init/run.js";

/** Registers this area's sub-commands. */
export function registerProxyCommands(program: Command): void {
  registerProxyInitCommand(program);
}

function int(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new Error(`"${value}" is not an integer`);
  return n;
}

/** `tether proxy-init`: the init container that installs (or removes) the interception rules. */
function registerProxyInitCommand(program: Command): void {
  program
    .command("proxy-init")
    .description("install the iptables NAT rules that send the pod's TCP traffic through the proxy (init container)")
    .option("--inbound-port <port>", "proxy inbound port", int, PROXY_INBOUND_PORT)
    .option("--outbound-port <port>", "proxy outbound port", int, PROXY_OUTBOUND_PORT)
    .option("--admin-port <port>", "proxy admin port (never redirected)", int, PROXY_ADMIN_PORT)
    .option("--proxy-uid <uid>", "uid of the proxy, whose traffic is not redirected", int, PROXY_UID)
    .option("--skip-inbound-ports <ports>", "inbound ports that bypass the proxy, e.g. 22,8000-8100", "")
    .option("--skip-outbound-ports <ports>", "outbound ports that bypass the proxy, e.g. 3306,5432", "")
    .option("--iptables <binary>", "iptables, iptables-legacy or iptables-nft (match the node)", "iptables")
    .option("--ipv6", "also install the rules with ip6tables", false)
    .option("--dry-run", "print the commands instead of running them", false)
    .option("--remove", "remove the rules and chains instead of installing them", false)
    .action((opts) => {
      const base: InitConfig = {
        ...DEFAULT_INIT_CONFIG,
        inboundPort: opts.inboundPort,
        outboundPort: opts.outboundPort,
        adminPort: opts.adminPort,
        proxyUid: opts.proxyUid,
        skipInboundPorts: parsePorts(opts.skipInboundPorts),
        skipOutboundPorts: parsePorts(opts.skipOutboundPorts),
        iptables: opts.iptables,
      };
      const configs: InitConfig[] = [base];
      if (opts.ipv6) configs.push({ ...base, family: 6, iptables: base.iptables.replace(/^iptables/, "ip6tables") });
      for (const config of configs) {
        const plan = opts.remove ? removePlan(config) : installPlan(config);
        if (opts.dryRun) console.log(renderPlan(plan));
        else runPlan(plan);
      }
      if (!opts.dryRun) console.log(`tether proxy-init: rules ${opts.remove ? "removed" : "installed"}`);
    });
}
