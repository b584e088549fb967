/**
 * `tether local up` and `tether local demo` (the local mesh and its experiments), and
 * `tether local app …`, the demo workload the pods run.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { commandGroup, LOCAL_DESCRIPTION, wholeNumberOption } from "./options.js";
import { requireRoot } from "../local/command.js";
import { runEchoClient, startEchoServer } from "../local/demo/echo.js";
import { runDemo, startDemoMesh } from "../local/demo/scenario.js";
import { followLogs, logsDir, runnerLogger } from "../local/log.js";
import { startLocalUp } from "../local/up.js";
import { DEFAULT_INSTANCE, DEFAULT_STATE_DIR } from "../local/names.js";

const wholeNumber = wholeNumberOption(0);

export function registerLocalMeshCommands(program: Command): void {
  const local = commandGroup(program, "local", LOCAL_DESCRIPTION);

  const app = local.command("app").description("the demo workload run inside local pods (knows nothing of the mesh)");
  app
    .command("echo-server")
    .description("gRPC server answering with its replica name; delay in ms read live from a file")
    .option("--port <port>", "port to listen on", wholeNumber, 50051)
    .option("--name <name>", "replica name (default: $TETHER_LOCAL_POD)")
    .option("--delay-file <file>", "file holding the delay in ms (default: $TETHER_LOCAL_POD_DIR/delay)")
    .action(async (opts: { port: number; name?: string; delayFile?: string }) => {
      const replica = opts.name ?? process.env.TETHER_LOCAL_POD ?? "echo";
      const podDir = process.env.TETHER_LOCAL_POD_DIR;
      const delayFile = opts.delayFile ?? (podDir ? join(podDir, "delay") : undefined);
      const server = await startEchoServer({ replica, host: "0.0.0.0", port: opts.port, ...(delayFile ? { delayFile } : {}) });
      console.log(`echo server ${replica} on :${server.port}`);
      const stop = () => void server.close().then(() => process.exit(0));
      process.once("SIGTERM", stop);
      process.once("SIGINT", stop);
    });
  app
    .command("echo-client")
    .description("make gRPC calls and print one JSON record per call")
    .requiredOption("--target <host:port>", "where to call (a Service VIP and port)")
    .option("--calls <n>", "number of calls", wholeNumber, 100)
    .option("--concurrency <n>", "calls in flight", wholeNumber, 1)
    .option("--interval-ms <ms>", "pause between one worker's calls", wholeNumber, 0)
    .option("--deadline-ms <ms>", "per-call deadline", wholeNumber, 5000)
    .option("--method <name>", "say or shout", "say")
    .option("--tls-dir <dir>", "call over TLS with tls.crt, tls.key and ca.crt from this folder (as a client bringing its own certificate)")
    .option("--server-name <name>", "with --tls-dir: the server identity to expect (SNI)")
    .action(async (opts: { target: string; calls: number; concurrency: number; intervalMs: number; deadlineMs: number; method: string; tlsDir?: string; serverName?: string }) => {
      if (opts.method !== "say" && opts.method !== "shout") throw new Error(`--method must be say or shout, not ${opts.method}`);
      const tls = opts.tlsDir
        ? {
            caPem: readFileSync(join(opts.tlsDir, "ca.crt"), "utf8"),
            certPem: readFileSync(join(opts.tlsDir, "tls.crt"), "utf8"),
            keyPem: readFileSync(join(opts.tlsDir, "tls.key"), "utf8"),
            serverName: opts.serverName ?? "",
          }
        : undefined;
      const records = await runEchoClient({ ...opts, method: opts.method, ...(tls ? { tls } : {}) });
      process.stdout.write(records.map((r) => JSON.stringify(r)).join("\n") + "\n");
    });

  local
    .command("demo")
    .description("bring up the local mesh with a small gRPC app, run experiments 1-5 and print what was measured")
    .option("--state-dir <dir>", "state folder", DEFAULT_STATE_DIR)
    .option("--instance <name>", "bridge name and prefix of everything created", DEFAULT_INSTANCE)
    .option("--calls <n>", "calls per experiment", wholeNumber, 3000)
    .option("--keep", "leave the mesh running afterwards (stop with: tether local down)")
    .option("--verbose", "also print every process's log here, as it is written")
    .action(async (opts: { stateDir: string; instance: string; calls: number; keep?: boolean; verbose?: boolean }) => {
      requireRoot("tether local demo");
      const stopFollowing = opts.verbose ? followLogs(opts.stateDir, (line) => console.error(line)) : () => {};
      const ok = await runDemo({ stateDir: opts.stateDir, instance: opts.instance, calls: opts.calls, keep: opts.keep === true, logger: runnerLogger(opts.stateDir) });
      stopFollowing();
      process.exitCode = ok ? 0 : 1;
    });

  local
    .command("up")
    .description("run the local mesh until interrupted: the pods and Services of a folder of manifests (--dir; edits are reconciled), or the demo app with live traffic; serves the dashboard")
    .option("--dir <folder>", "folder of manifests (Namespaces, Deployments, Pods, Services, policy); see deploy/local-example")
    .option("--state-dir <dir>", "state folder", DEFAULT_STATE_DIR)
    .option("--instance <name>", "bridge name and prefix of everything created", DEFAULT_INSTANCE)
    .option("--dashboard-port <port>", "dashboard port on 127.0.0.1", wholeNumber, 50750)
    .option("--verbose", "also print every process's log here, as it is written")
    .action(async (opts: { dir?: string; stateDir: string; instance: string; dashboardPort: number; verbose?: boolean }) => {
      requireRoot("tether local up");
      const logger = runnerLogger(opts.stateDir);
      if (opts.verbose) followLogs(opts.stateDir, (line) => console.error(line));
      const running = opts.dir
        ? await startLocalUp({ stateDir: opts.stateDir, instance: opts.instance, dir: opts.dir, logger, dashboardPort: opts.dashboardPort })
        : await startDemoMesh({ stateDir: opts.stateDir, instance: opts.instance, logger, dashboardPort: opts.dashboardPort, traffic: true });
      console.log(`local mesh up: ${running.mesh.pods.size} pods; dashboard ${running.dashboardUrl}; logs in ${logsDir(opts.stateDir)}/; stop with Ctrl-C (or: tether local down)`);
      const stop = () => void running.stop().then(() => process.exit(0));
      process.once("SIGTERM", stop);
      process.once("SIGINT", stop);
    });
}
