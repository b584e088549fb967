/**
 * `tether controller serve`: the tether-destination Deployment's process. It runs discovery
 * (Destination/Get) and policy (InboundPolicies/WatchPort) over one cluster cache, both served
 * with mutual TLS under the controller's own identity, which it obtains from the identity CA like
 * a proxy does. It does not serve before it holds a valid certificate (fail closed).
 */
import { once } from "node:events";
import { readFile } from "node:fs/promises";
import http from "node:http";
import { Command, InvalidArgumentError, Option } from "commander";
import { pino } from "pino";
import { Registry } from "prom-client";
import { createCertifyClient } from "../api/identity-client.js";
import {
  DEFAULT_INBOUND_POLICIES,
  DESTINATION_PORT,
  DESTINATION_SERVICE_ACCOUNT,
  IDENTITY_SERVICE_ACCOUNT,
  CONTROL_PLANE_NAMESPACE_NAME,
  POLICY_PORT,
} from "../api/mesh.js";
import { openCluster } from "../cluster/index.js";
import { RESOURCE_KINDS } from "../cluster/types.js";
import { startDestinationServer } from "../discovery/server.js";
import { CertificateAgent } from "../identity/agent.js";
import { systemClock } from "../core/clock.js";
import { UsageError } from "../core/errors.js";
import { AgentCertificateProvider, mtlsServerCredentials } from "../identity/grpc-credentials.js";
import { DEFAULT_TRUST_DOMAIN, toDnsName, workloadIdentity } from "../identity/names.js";
import type { Credentials } from "../identity/tls.js";
import { DEFAULT_SETTINGS } from "../policy/compile.js";
import { startPolicyServer } from "../policy/server.js";

interface ServeOptions {
  clusterDir?: string;
  kubeconfig?: string;
  host: string;
  destinationPort: number;
  policyPort: number;
  adminPort: number;
  trustDomain: string;
  clusterDomain: string;
  defaultInboundPolicy: (typeof DEFAULT_INBOUND_POLICIES)[number];
  clusterNetworks: string;
  identityAddr?: string;
  tokenFile?: string;
  trustAnchors?: string;
  serviceAccount: string;
  namespace: string;
  logLevel: string;
}

function port(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`${text} is not a port (0-65535)`);
  return n;
}

function required(value: string | undefined, flag: string, env: string): string {
  if (!value) {
    throw new UsageError("CONTROLLER_CONFIG_INVALID", `${flag} (or ${env}) is required: the controller proves its identity to proxies and cannot serve without one`);
  }
  return value;
}

/** Admin endpoints of the controller: /metrics of every part, /ready once serving, /live. */
function startAdmin(host: string, adminPort: number, registries: Registry[], ready: () => boolean): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/metrics") {
      Registry.merge(registries)
        .metrics()
        .then((text) => res.writeHead(200, { "content-type": Registry.PROMETHEUS_CONTENT_TYPE }).end(text))
        .catch((err: Error) => res.writeHead(500).end(err.message));
    } else if (path === "/live") res.writeHead(200).end("live\n");
    else if (path === "/ready") res.writeHead(ready() ? 200 : 503).end(ready() ? "ready\n" : "not ready\n");
    else res.writeHead(404).end("not found: try /metrics, /ready or /live\n");
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(adminPort, host, () => resolve(server));
  });
}

async function serve(opts: ServeOptions): Promise<void> {
  const logger = pino({ level: opts.logLevel, base: { component: "controller" } });
  const env = process.env;
  const identityAddr = required(opts.identityAddr ?? env.TETHER_IDENTITY_ADDR, "--identity-addr", "TETHER_IDENTITY_ADDR");
  const tokenFile = required(opts.tokenFile ?? env.TETHER_TOKEN_FILE, "--token-file", "TETHER_TOKEN_FILE");
  const anchorsFile = required(opts.trustAnchors ?? env.TETHER_TRUST_ANCHORS_FILE, "--trust-anchors", "TETHER_TRUST_ANCHORS_FILE");
  const anchorsPem = await readFile(anchorsFile, "utf8");
  const trustDomain = env.TETHER_TRUST_DOMAIN || opts.trustDomain;
  const identity = workloadIdentity(env.TETHER_SERVICE_ACCOUNT || opts.serviceAccount, env.TETHER_POD_NAMESPACE || opts.namespace, trustDomain);

  const certifyClient = createCertifyClient({
    address: identityAddr,
    anchorsPem,
    serverName: toDnsName(workloadIdentity(IDENTITY_SERVICE_ACCOUNT, CONTROL_PLANE_NAMESPACE_NAME, trustDomain)),
  });
  const agent = new CertificateAgent({
    identity,
    tokenFile,
    clock: systemClock,
    logger: logger.child({ part: "identity" }),
    certify: (req) => certifyClient.certify(req),
  });
  const firstCertificate = once(agent, "certificate") as Promise<[Credentials]>;
  agent.start();

  const clusterRegistry = new Registry();
  const cluster = await openCluster({
    ...(opts.clusterDir ? { dir: opts.clusterDir } : opts.kubeconfig ? { kubeconfig: opts.kubeconfig } : { inCluster: true }),
    logger: logger.child({ component: "cluster" }),
    registry: clusterRegistry,
    // Least privilege: the controller is not granted Secrets and has no use for them.
    kinds: RESOURCE_KINDS.filter((k) => k !== "Secret"),
  });
  let serving = false;
  const discoveryRegistry = new Registry();
  const policyRegistry = new Registry();
  const admin = await startAdmin(opts.host, opts.adminPort, [clusterRegistry, discoveryRegistry, policyRegistry], () => serving && agent.isReady());

  await cluster.ready();
  const [creds] = await firstCertificate;
  logger.info({ identity: creds.dnsName }, "controller identity obtained");
  // One credentials object per server: grpc-js hands a provider-backed credential's secure context
  // to the first server that asks, so sharing one leaves the other without certificates until the
  // next rotation.
  const provider = new AgentCertificateProvider(agent, anchorsPem);
  const destination = await startDestinationServer({
    cluster,
    listen: `${opts.host}:${opts.destinationPort}`,
    clusterDomain: opts.clusterDomain,
    trustDomain,
    logger: logger.child({ component: "destination" }),
    serverCredentials: mtlsServerCredentials(provider),
    registry: discoveryRegistry,
  });
  const policy = await startPolicyServer({
    cluster,
    listen: `${opts.host}:${opts.policyPort}`,
    clusterDefault: opts.defaultInboundPolicy,
    clusterNetworks: opts.clusterNetworks.split(",").map((s) => s.trim()).filter(Boolean),
    trustDomain,
    logger: logger.child({ component: "policy" }),
    serverCredentials: mtlsServerCredentials(provider),
    registry: policyRegistry,
  });
  serving = true;
  logger.info({ destination: destination.address, policy: policy.address }, "controller serving (mTLS)");
  console.log(`tether controller: destination on ${destination.address}, policy on ${policy.address}, identity ${creds.dnsName}`);

  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  serving = false;
  await Promise.all([destination.close(), policy.close()]);
  agent.stop();
  certifyClient.close();
  await cluster.close();
  admin.close();
}

export function registerControllerCommands(program: Command): void {
  const controller = program.command("controller").description("the tether-destination control plane (discovery and policy)");
  controller
    .command("serve")
    .description("serve Destination/Get and InboundPolicies/WatchPort over mTLS from one cluster cache")
    .option("--cluster-dir <dir>", "read cluster state from a folder of YAML manifests (local mesh)")
    .option("--kubeconfig <file>", "read cluster state from Kubernetes with this kubeconfig (neither: in-cluster config)")
    .option("--host <host>", "address to listen on", "0.0.0.0")
    .option("--destination-port <port>", "Destination gRPC port", port, DESTINATION_PORT)
    .option("--policy-port <port>", "InboundPolicies gRPC port", port, POLICY_PORT)
    .option("--admin-port <port>", "admin port (/metrics, /ready, /live)", port, 9996)
    .option("--trust-domain <domain>", "identity trust domain", DEFAULT_TRUST_DOMAIN)
    .option("--cluster-domain <domain>", "Kubernetes cluster DNS domain", "cluster.local")
    .addOption(
      new Option("--default-inbound-policy <policy>", "cluster default for ports no Server covers").choices([...DEFAULT_INBOUND_POLICIES]).default(DEFAULT_SETTINGS.clusterDefault),
    )
    .option("--cluster-networks <cidrs>", "comma-separated CIDRs of the cluster's networks", DEFAULT_SETTINGS.clusterNetworks.join(","))
    .option("--identity-addr <host:port>", "the identity CA (env TETHER_IDENTITY_ADDR)")
    .option("--token-file <file>", "projected service-account token (env TETHER_TOKEN_FILE)")
    .option("--trust-anchors <file>", "trust anchor PEM bundle (env TETHER_TRUST_ANCHORS_FILE)")
    .option("--service-account <name>", "the controller's service account (env TETHER_SERVICE_ACCOUNT)", DESTINATION_SERVICE_ACCOUNT)
    .option("--namespace <ns>", "the controller's namespace (env TETHER_POD_NAMESPACE)", CONTROL_PLANE_NAMESPACE_NAME)
    .option("--log-level <level>", "pino log level", "info")
    .action((opts: ServeOptions) => serve(opts));
}
