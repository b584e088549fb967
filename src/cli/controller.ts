/**
 * `tether controller serve`: the tether-destination Deployment's process (src/controlplane/):
 * discovery and policy over one cluster cache, served with mutual TLS under the controller's own
 * identity. This file parses flags.
 */
import { Command, Option } from "commander";
import { pino } from "pino";
import {
  DEFAULT_INBOUND_POLICIES,
  DESTINATION_ADMIN_PORT,
  DESTINATION_PORT,
  DESTINATION_SERVICE_ACCOUNT,
  CONTROL_PLANE_NAMESPACE_NAME,
  POLICY_PORT,
} from "../api/mesh.js";
import { startControlPlane } from "../controlplane/index.js";
import { UsageError } from "../core/errors.js";
import { DEFAULT_TRUST_DOMAIN } from "../identity/names.js";
import { DEFAULT_SETTINGS } from "../policy/compile.js";
import { networksOption, portOption, untilSignal, withClusterSource } from "./options.js";

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
  clusterNetworks: string[];
  identityAddr?: string;
  tokenFile?: string;
  trustAnchors?: string;
  serviceAccount: string;
  namespace: string;
  logLevel: string;
}

function required(value: string | undefined, flag: string, env: string): string {
  if (!value) {
    throw new UsageError("CONTROLLER_CONFIG_INVALID", `${flag} (or ${env}) is required: the controller proves its identity to proxies and cannot serve without one`);
  }
  return value;
}

async function serve(opts: ServeOptions): Promise<void> {
  const env = process.env;
  const controlPlane = await startControlPlane({
    cluster: { dir: opts.clusterDir, kubeconfig: opts.kubeconfig },
    host: opts.host,
    destinationPort: opts.destinationPort,
    policyPort: opts.policyPort,
    adminPort: opts.adminPort,
    trustDomain: env.TETHER_TRUST_DOMAIN || opts.trustDomain,
    clusterDomain: opts.clusterDomain,
    defaultInboundPolicy: opts.defaultInboundPolicy,
    clusterNetworks: opts.clusterNetworks,
    credentials: {
      kind: "identity",
      identityAddr: required(opts.identityAddr ?? env.TETHER_IDENTITY_ADDR, "--identity-addr", "TETHER_IDENTITY_ADDR"),
      tokenFile: required(opts.tokenFile ?? env.TETHER_TOKEN_FILE, "--token-file", "TETHER_TOKEN_FILE"),
      anchorsFile: required(opts.trustAnchors ?? env.TETHER_TRUST_ANCHORS_FILE, "--trust-anchors", "TETHER_TRUST_ANCHORS_FILE"),
      serviceAccount: env.TETHER_SERVICE_ACCOUNT || opts.serviceAccount,
      namespace: env.TETHER_POD_NAMESPACE || opts.namespace,
    },
    logger: pino({ level: opts.logLevel, base: { component: "controller" } }),
  });
  console.log(`tether controller: destination on ${controlPlane.destinationAddress}, policy on ${controlPlane.policyAddress}, identity ${controlPlane.identity}`);
  await untilSignal();
  await controlPlane.close();
}

export function registerControllerCommands(program: Command): void {
  const controller = program.command("controller").description("the tether-destination control plane (discovery and policy)");
  withClusterSource(controller.command("serve").description("serve Destination/Get and InboundPolicies/WatchPort over mTLS from one cluster cache"))
    .option("--host <host>", "address to listen on", "0.0.0.0")
    .option("--destination-port <port>", "Destination gRPC port", portOption, DESTINATION_PORT)
    .option("--policy-port <port>", "InboundPolicies gRPC port", portOption, POLICY_PORT)
    .option("--admin-port <port>", "admin port (/metrics, /ready, /live)", portOption, DESTINATION_ADMIN_PORT)
    .option("--trust-domain <domain>", "identity trust domain", DEFAULT_TRUST_DOMAIN)
    .option("--cluster-domain <domain>", "Kubernetes cluster DNS domain", "cluster.local")
    .addOption(
      new Option("--default-inbound-policy <policy>", "cluster default for ports no Server covers").choices([...DEFAULT_INBOUND_POLICIES]).default(DEFAULT_SETTINGS.clusterDefault),
    )
    .option("--cluster-networks <cidrs>", "comma-separated CIDRs of the cluster's networks", networksOption, DEFAULT_SETTINGS.clusterNetworks)
    .option("--identity-addr <host:port>", "the identity CA (env TETHER_IDENTITY_ADDR)")
    .option("--token-file <file>", "projected service-account token (env TETHER_TOKEN_FILE)")
    .option("--trust-anchors <file>", "trust anchor PEM bundle (env TETHER_TRUST_ANCHORS_FILE)")
    .option("--service-account <name>", "the controller's service account (env TETHER_SERVICE_ACCOUNT)", DESTINATION_SERVICE_ACCOUNT)
    .option("--namespace <ns>", "the controller's namespace (env TETHER_POD_NAMESPACE)", CONTROL_PLANE_NAMESPACE_NAME)
    .option("--log-level <level>", "pino log level", "info")
    .action((opts: ServeOptions) => serve(opts));
}
