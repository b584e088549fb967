/**
 * `tether stat`, `tether top`, `tether edges` and `tether dashboard`: traffic visibility read from
 * the proxies' /metrics (local mesh targets file, Kubernetes pod proxy) or from Prometheus.
 * The work is in src/viz/; this file only parses flags.
 */
import type { Command } from "commander";
import { pino } from "pino";
import { DEFAULT_STATE_DIR, targetsFile } from "../local/names.js";
import { startDashboard } from "../viz/dashboard.js";
import { measure, openSource, parseDirection, parseDuration, parseGroup, printEdges, printStat, printTop, type SourceFlags } from "../viz/commands.js";

/** The flags commander parses: the source flags, with the window still as text. */
type CommonOpts = Omit<SourceFlags, "windowMs"> & { window: string; json?: boolean };

function withSourceFlags(cmd: Command, defaultWindow = "10s"): Command {
  return cmd
    .option("--targets <file>", `JSON list of proxies to scrape (tether local up writes ${targetsFile(DEFAULT_STATE_DIR)})`)
    .option("--kubeconfig <path>", "scrape meshed pods through this cluster's API server (pod proxy)")
    .option("--kubernetes", "scrape meshed pods through the API server of $KUBECONFIG, ~/.kube/config or in-cluster")
    .option("--prometheus <url>", "query this Prometheus (which scrapes the proxies) instead of scraping")
    .option("-n, --namespace <ns>", "only this namespace")
    .option("--trust-domain <domain>", "trust domain of pod identities (Kubernetes source)", "cluster.local")
    .option("--window <duration>", "measurement window, e.g. 10s, 1m", defaultWindow);
}

function sourceFlags(opts: CommonOpts): SourceFlags {
  return {
    windowMs: parseDuration(opts.window),
    localTargets: targetsFile(DEFAULT_STATE_DIR),
    ...(opts.targets ? { targets: opts.targets } : {}),
    ...(opts.kubeconfig ? { kubeconfig: opts.kubeconfig } : {}),
    ...(opts.kubernetes ? { kubernetes: true } : {}),
    ...(opts.prometheus ? { prometheus: opts.prometheus } : {}),
    ...(opts.namespace ? { namespace: opts.namespace } : {}),
    ...(opts.trustDomain ? { trustDomain: opts.trustDomain } : {}),
  };
}

const write = (text: string) => process.stdout.write(text);

export function registerStatCommands(program: Command): void {
  withSourceFlags(
    program
      .command("stat")
      .argument("[resource]", "deploy, pod or ns", "deploy")
      .description("success rate, request rate, p50/p95/p99 latency, TCP connections and mTLS share per workload, pod or namespace"),
  )
    .option("--direction <dir>", "inbound (traffic the pods serve) or outbound (traffic they send)", "inbound")
    .option("-o, --json", "print JSON rows")
    .action(async (resource: string, opts: CommonOpts & { direction: string }) => {
      const flags = sourceFlags(opts);
      const group = parseGroup(resource);
      const direction = parseDirection(opts.direction);
      const windows = await measure(openSource(flags), flags.windowMs);
      printStat(windows, { group, direction, ...(opts.namespace ? { namespace: opts.namespace } : {}), ...(opts.json ? { json: true } : {}) }, write);
    });

  withSourceFlags(program.command("top").description("the busiest authorities per pod, refreshed live"), "2s")
    .option("--once", "print one window and exit")
    .option("--limit <n>", "rows to show", "20")
    .option("-o, --json", "print JSON rows (implies --once)")
    .action(async (opts: CommonOpts & { once?: boolean; limit: string }) => {
      const flags = sourceFlags(opts);
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit <= 0) throw new Error(`--limit "${opts.limit}" is not a positive integer`);
      const source = openSource(flags);
      const print = { limit, ...(opts.namespace ? { namespace: opts.namespace } : {}), ...(opts.json ? { json: true } : {}) };
      let windows = await measure(source, flags.windowMs);
      if (opts.once || opts.json) return printTop(windows, print, write);
      for (;;) {
        // Clear the screen and redraw, as top(1) does.
        write(`\x1b[2J\x1b[H${new Date().toISOString()}  ${source.describe()}  (every ${opts.window}, Ctrl-C to stop)\n\n`);
        printTop(windows, print, write);
        await new Promise((r) => setTimeout(r, flags.windowMs));
        windows = await source.poll();
      }
    });

  withSourceFlags(program.command("edges").description("who talks to whom: source and destination workloads, their identities, and whether the edge is mTLS"))
    .option("-o, --json", "print JSON rows")
    .action(async (opts: CommonOpts) => {
      const flags = sourceFlags(opts);
      const windows = await measure(openSource(flags), flags.windowMs);
      printEdges(windows, { ...(opts.namespace ? { namespace: opts.namespace } : {}), ...(opts.json ? { json: true } : {}) }, write);
    });

  withSourceFlags(program.command("dashboard").description("serve the live traffic dashboard (success rate, request rate, latency, edges, certificates, denials)"), "2s")
    .option("--port <port>", "port to listen on", "50750")
    .option("--host <host>", "address to listen on (loopback by default: the page has no authentication)", "127.0.0.1")
    .action(async (opts: CommonOpts & { port: string; host: string }) => {
      const flags = sourceFlags(opts);
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port "${opts.port}" is not a port number`);
      const logger = pino({ level: "info" }, pino.destination(2));
      const dashboard = await startDashboard({ source: openSource(flags), host: opts.host, port, intervalMs: flags.windowMs, logger });
      console.log(`tether dashboard: ${dashboard.url} (Ctrl-C to stop)`);
      const stop = () => void dashboard.close().then(() => process.exit(0));
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
}
