/**
 * `tether destination serve` runs the Destination API (tether-destination);
 * `tether diagnostics endpoints SVC[:PORT]` prints what discovery answers for an address.
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import * as grpc from "@grpc/grpc-js";
import type { Command } from "commander";
import { pino } from "pino";
import { hostPort } from "../api/address.js";
import { DESTINATION_ADMIN_PORT, DESTINATION_PORT } from "../api/mesh.js";
import type { WeightedAddr } from "../api/index.js";
import { createDestinationClient, destinationErrorCode, DestinationState, watchDestination } from "../api/destination-client.js";
import { startControlPlane, type ServingCredentials } from "../controlplane/index.js";
import { UsageError } from "../core/errors.js";
import { formatTable } from "../core/table.js";
import { DestinationPathError } from "../discovery/path.js";
import { DEFAULT_CLUSTER_DOMAIN } from "../discovery/server.js";
import { DEFAULT_TRUST_DOMAIN } from "../identity/names.js";
import { DEFAULT_SETTINGS } from "../policy/compile.js";
import { CommandError, RemoteRefusalError } from "./errors.js";
import { commandGroup, portOption, untilSignal, wholeNumberOption, withClusterSource } from "./options.js";

/**
 * Turns what a user types into a Destination path: `web`, `web.shop`, `web.shop.svc`, a full
 * name, or an IP, each with an optional `:PORT` (default 80).
 */
export function destinationPathFor(arg: string, namespace: string, clusterDomain: string): string {
  let host = arg;
  let port = "80";
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(arg);
  if (bracket) {
    host = bracket[1]!;
    port = bracket[2] ?? port;
  } else if (isIP(arg) !== 6) {
    const at = arg.lastIndexOf(":");
    if (at >= 0) {
      host = arg.slice(0, at);
      port = arg.slice(at + 1);
    }
  }
  if (!/^\d+$/.test(port)) throw new DestinationPathError("DISCOVERY_BAD_PORT", `${JSON.stringify(arg)}: port ${JSON.stringify(port)} is not a number`);
  if (isIP(host)) return hostPort(host, Number(port));
  const labels = host.replace(/\.$/, "").split(".");
  const domain = `svc.${clusterDomain}`;
  if (labels.length === 1) return `${labels[0]}.${namespace}.${domain}:${port}`;
  if (labels.length === 2) return `${host}.${domain}:${port}`;
  if (labels.length === 3 && labels[2] === "svc") return `${host}.${clusterDomain}:${port}`;
  return `${host.replace(/\.$/, "")}:${port}`;
}

export function endpointsTable(endpoints: readonly WeightedAddr[]): string {
  const rows = [["NAMESPACE", "POD", "IP", "PORT", "IDENTITY", "PROTOCOL", "WEIGHT"]];
  for (const e of endpoints) {
    rows.push([
      e.labels.namespace ?? "-",
      e.labels.pod ?? "-",
      e.address,
      String(e.port),
      e.identity || "(not meshed)",
      e.protocolHint || "detect",
      String(e.weight),
    ]);
  }
  return formatTable(rows[0]!, rows.slice(1), 3);
}

function describeEmpty(path: string, exists: boolean): string {
  return exists
    ? `${path}: the Service exists but has no ready endpoints`
    : `${path}: no such Service or pod (check the name, namespace and port)`;
}

function clientCredentials(opts: { caFile?: string; certFile?: string; keyFile?: string }): grpc.ChannelCredentials {
  if (!opts.caFile) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(
    readFileSync(opts.caFile),
    opts.keyFile ? readFileSync(opts.keyFile) : null,
    opts.certFile ? readFileSync(opts.certFile) : null,
  );
}

/** The TLS flags as the control plane's serving credentials. */
function servingCredentials(opts: { tlsCert?: string; tlsKey?: string; clientCa?: string }): ServingCredentials {
  if (!opts.tlsCert && !opts.tlsKey) return { kind: "plaintext" };
  if (!opts.tlsCert || !opts.tlsKey) throw new UsageError("DISCOVERY_TLS_CONFIG", "--tls-cert and --tls-key go together; give both or neither");
  return { kind: "files", certFile: opts.tlsCert, keyFile: opts.tlsKey, ...(opts.clientCa ? { clientCaFile: opts.clientCa } : {}) };
}

interface ServeOptions {
  clusterDir?: string;
  kubeconfig?: string;
  host: string;
  port: number;
  adminPort: number;
  clusterDomain: string;
  trustDomain: string;
  logLevel: string;
  tlsCert?: string;
  tlsKey?: string;
  clientCa?: string;
}

async function serve(opts: ServeOptions): Promise<void> {
  const controlPlane = await startControlPlane({
    cluster: { dir: opts.clusterDir, kubeconfig: opts.kubeconfig },
    host: opts.host,
    destinationPort: opts.port,
    adminPort: opts.adminPort,
    trustDomain: opts.trustDomain,
    clusterDomain: opts.clusterDomain,
    defaultInboundPolicy: DEFAULT_SETTINGS.clusterDefault,
    clusterNetworks: DEFAULT_SETTINGS.clusterNetworks,
    credentials: servingCredentials(opts),
    logger: pino({ level: opts.logLevel }),
  });
  console.log(`tether-destination listening on ${controlPlane.destinationAddress} (admin :${controlPlane.adminPort})`);
  await untilSignal();
  await controlPlane.close();
}

interface EndpointsOptions {
  destination: string;
  namespace: string;
  clusterDomain: string;
  timeout: number;
  watch?: boolean;
  json?: boolean;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

async function endpoints(arg: string, opts: EndpointsOptions): Promise<void> {
  const path = destinationPathFor(arg, opts.namespace, opts.clusterDomain);
  const client = createDestinationClient(opts.destination, clientCredentials(opts));
  const state = new DestinationState();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      watch.close();
      reject(new CommandError("DISCOVERY_TIMEOUT", `no answer from ${opts.destination} within ${opts.timeout} ms; is tether-destination running there?`));
    }, opts.timeout);
    const print = () => {
      if (opts.json) console.log(JSON.stringify({ path, exists: state.exists, endpoints: state.list() }));
      else if (state.endpoints.size === 0) console.log(describeEmpty(path, state.exists ?? false));
      else console.log(endpointsTable(state.list()));
    };
    const watch = watchDestination(
      client,
      path,
      (update, first) => {
        const before = new Set(state.endpoints.keys());
        state.apply(update, first);
        if (first) {
          clearTimeout(timer);
          print();
          if (!opts.watch) {
            watch.close();
            if (state.exists === false) process.exitCode = 1;
            resolve();
          }
          return;
        }
        // --watch: one line per change.
        for (const key of before) if (!state.endpoints.has(key)) console.log(`- ${key}`);
        for (const e of update.update === "add" ? update.add.endpoints : []) {
          const key = hostPort(e.address, e.port);
          console.log(`${before.has(key) ? "~" : "+"} ${key} ${e.labels.pod ?? ""} ${e.identity || "(not meshed)"}`);
        }
        if (update.update === "noEndpoints") console.log(describeEmpty(path, update.noEndpoints.exists));
      },
      {
        contextToken: "tether-cli",
        onError: (err) => {
          clearTimeout(timer);
          const code = destinationErrorCode(err);
          const message = `${opts.destination} refused ${path}: ${(err as grpc.ServiceError).details ?? err.message}`;
          reject(code ? new RemoteRefusalError(code, message) : new CommandError("DISCOVERY_UNAVAILABLE", message));
        },
      },
    );
  }).finally(() => client.close());
}

export function registerDiscoveryCommands(program: Command): void {
  withClusterSource(commandGroup(program, "destination", "the Destination API (tether-destination)").command("serve").description("serve tether.destination.v1.Destination/Get from cluster state"))
    .option("--host <host>", "address to listen on", "0.0.0.0")
    .option("--port <port>", "gRPC port", portOption, DESTINATION_PORT)
    .option("--admin-port <port>", "admin port (/metrics, /ready, /live)", portOption, DESTINATION_ADMIN_PORT)
    .option("--cluster-domain <domain>", "the cluster's DNS domain", DEFAULT_CLUSTER_DOMAIN)
    .option("--trust-domain <domain>", "the mesh's trust domain (in endpoint identities)", DEFAULT_TRUST_DOMAIN)
    .option("--tls-cert <file>", "serve TLS with this certificate chain (PEM)")
    .option("--tls-key <file>", "and this key (PEM)")
    .option("--client-ca <file>", "require client certificates chaining to these anchors (mTLS)")
    .option("--log-level <level>", "pino log level", "info")
    .action((opts: ServeOptions) => serve(opts));

  commandGroup(program, "diagnostics", "look inside a running mesh")
    .command("endpoints")
    .argument("<svc>", "SERVICE[.NAMESPACE[.svc[.DOMAIN]]][:PORT] or IP[:PORT] (port default 80)")
    .description("print what discovery returns for an address, with each endpoint's identity")
    .option("--destination <addr>", "tether-destination address", `127.0.0.1:${DESTINATION_PORT}`)
    .option("-n, --namespace <ns>", "namespace of a short Service name", "default")
    .option("--cluster-domain <domain>", "the cluster's DNS domain", DEFAULT_CLUSTER_DOMAIN)
    .option("--timeout <ms>", "give up after this long without an answer", wholeNumberOption(), 5000)
    .option("-w, --watch", "keep printing changes")
    .option("--json", "print JSON instead of a table")
    .option("--ca-file <file>", "connect with TLS, trusting these anchors")
    .option("--cert-file <file>", "client certificate for mTLS")
    .option("--key-file <file>", "client key for mTLS")
    .action((svc: string, opts: EndpointsOptions) => endpoints(svc, opts));
}
