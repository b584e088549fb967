/**
 * The control plane's assembly: the tether-destination process. It opens one cluster cache and
 * serves discovery (Destination/Get) and policy (InboundPolicies/WatchPort) from it, with one admin
 * server. `tether controller serve` runs both over mTLS under the controller's own identity, which
 * it obtains from the identity CA like a proxy does, and serves nothing before it holds a valid
 * certificate (fail closed). `tether destination serve` and `tether policy serve` run one of the
 * two, for development, through the same assembly.
 *
 * The CLI parses flags into `ControlPlaneOptions`; everything else happens here.
 */
import { once } from "node:events";
import { readFile } from "node:fs/promises";
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import { Registry } from "prom-client";
import { hostPort } from "../api/address.js";
import { startAdminServer } from "../api/admin-server.js";
import { createCertifyClient } from "../api/identity-client.js";
import { CONTROL_PLANE_NAMESPACE_NAME, IDENTITY_SERVICE_ACCOUNT, type DefaultInboundPolicy } from "../api/mesh.js";
import { openCluster } from "../cluster/index.js";
import { RESOURCE_KINDS } from "../cluster/types.js";
import { systemClock } from "../core/clock.js";
import { startDestinationServer } from "../discovery/server.js";
import { CertificateAgent } from "../identity/agent.js";
import { AgentCertificateProvider, mtlsServerCredentials } from "../identity/grpc-credentials.js";
import { toDnsName, workloadIdentity } from "../identity/names.js";
import type { Credentials } from "../identity/tls.js";
import { startPolicyServer } from "../policy/server.js";

/** How the gRPC servers authenticate themselves (and their clients). */
export type ServingCredentials =
  /** mTLS under the controller's identity, certified by the identity CA (production). */
  | { kind: "identity"; identityAddr: string; tokenFile: string; anchorsFile: string; serviceAccount: string; namespace: string }
  /** TLS from PEM files; with a client CA, clients must present certificates chaining to it. */
  | { kind: "files"; certFile: string; keyFile: string; clientCaFile?: string }
  /** No TLS: development and tests only (a warning is logged). */
  | { kind: "plaintext" };

export interface ControlPlaneOptions {
  /** A folder of YAML manifests, or a kubeconfig; neither: the in-cluster configuration. */
  cluster: { dir?: string; kubeconfig?: string };
  host: string;
  /** Serve Destination/Get on this port (0: a free one); omitted: not served. */
  destinationPort?: number;
  /** Serve InboundPolicies/WatchPort on this port (0: a free one); omitted: not served. */
  policyPort?: number;
  /** The admin server (/metrics, /ready, /live); 0: a free port. */
  adminPort: number;
  trustDomain: string;
  clusterDomain: string;
  defaultInboundPolicy: DefaultInboundPolicy;
  clusterNetworks: readonly string[];
  credentials: ServingCredentials;
  logger: Logger;
}

export interface ControlPlane {
  destinationAddress: string | undefined;
  policyAddress: string | undefined;
  adminPort: number;
  /** The identity it serves under (identity credentials only). */
  identity: string | undefined;
  close(): Promise<void>;
}

/** The controller's own certificate, kept fresh by a CertificateAgent talking to the identity CA. */
async function controllerIdentity(c: Extract<ServingCredentials, { kind: "identity" }>, trustDomain: string, logger: Logger) {
  const anchorsPem = await readFile(c.anchorsFile, "utf8");
  const certifyClient = createCertifyClient({
    address: c.identityAddr,
    anchorsPem,
    serverName: toDnsName(workloadIdentity(IDENTITY_SERVICE_ACCOUNT, CONTROL_PLANE_NAMESPACE_NAME, trustDomain)),
  });
  const agent = new CertificateAgent({
    identity: workloadIdentity(c.serviceAccount, c.namespace, trustDomain),
    tokenFile: c.tokenFile,
    clock: systemClock,
    logger: logger.child({ part: "identity" }),
    certify: (req) => certifyClient.certify(req),
  });
  const firstCertificate = once(agent, "certificate") as Promise<[Credentials]>;
  agent.start();
  return {
    agent,
    anchorsPem,
    firstCertificate: firstCertificate.then(([creds]) => creds),
    stop() {
      agent.stop();
      certifyClient.close();
    },
  };
}

function fileCredentials(c: Extract<ServingCredentials, { kind: "files" }>): Promise<grpc.ServerCredentials> {
  return Promise.all([readFile(c.certFile), readFile(c.keyFile), c.clientCaFile ? readFile(c.clientCaFile) : null]).then(([cert, key, ca]) =>
    grpc.ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], ca !== null),
  );
}

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const { logger, credentials } = options;
  const registries = { cluster: new Registry(), destination: new Registry(), policy: new Registry() };
  const identity = credentials.kind === "identity" ? await controllerIdentity(credentials, options.trustDomain, logger) : undefined;
  const cleanups: (() => Promise<void> | void)[] = [() => identity?.stop()];
  const closeAll = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  };
  try {
    const cluster = await openCluster({
      ...(options.cluster.dir ? { dir: options.cluster.dir } : options.cluster.kubeconfig ? { kubeconfig: options.cluster.kubeconfig } : { inCluster: true }),
      logger: logger.child({ component: "cluster" }),
      registry: registries.cluster,
      // Least privilege: the controller is not granted Secrets and has no use for them.
      kinds: RESOURCE_KINDS.filter((k) => k !== "Secret"),
    });
    cleanups.push(() => cluster.close());

    let synced = false;
    let serving = false;
    const notReadyReason = (): string | undefined => {
      if (!synced) return "the cluster cache has not synced";
      if (identity && !identity.agent.isReady()) return "no valid certificate from the identity CA";
      return serving ? undefined : "the gRPC servers are starting";
    };
    const admin = await startAdminServer({ host: options.host, port: options.adminPort, registries: Object.values(registries), notReadyReason });
    cleanups.push(() => admin.close());

    await cluster.ready();
    synced = true;
    let serverCredentials: () => grpc.ServerCredentials | undefined;
    if (identity) {
      const creds = await identity.firstCertificate;
      logger.info({ identity: creds.dnsName }, "controller identity obtained");
      // One credentials object per server: grpc-js hands a provider-backed credential's secure
      // context to the first server that asks, so sharing one leaves the other without
      // certificates until the next rotation.
      const provider = new AgentCertificateProvider(identity.agent, identity.anchorsPem);
      serverCredentials = () => mtlsServerCredentials(provider);
    } else if (credentials.kind === "files") {
      const files = await fileCredentials(credentials);
      serverCredentials = () => files;
    } else {
      logger.warn("serving without TLS: development only; production runs `tether controller serve` (mTLS)");
      serverCredentials = () => undefined;
    }

    const destination =
      options.destinationPort === undefined
        ? undefined
        : await startDestinationServer({
            cluster,
            listen: hostPort(options.host, options.destinationPort),
            clusterDomain: options.clusterDomain,
            trustDomain: options.trustDomain,
            logger,
            serverCredentials: serverCredentials(),
            registry: registries.destination,
          });
    if (destination) cleanups.push(() => destination.close());
    const policy =
      options.policyPort === undefined
        ? undefined
        : await startPolicyServer({
            cluster,
            listen: hostPort(options.host, options.policyPort),
            clusterDefault: options.defaultInboundPolicy,
            clusterNetworks: [...options.clusterNetworks],
            trustDomain: options.trustDomain,
            logger,
            serverCredentials: serverCredentials(),
            registry: registries.policy,
          });
    if (policy) cleanups.push(() => policy.close());
    serving = true;
    const identityName = identity ? (await identity.firstCertificate).dnsName : undefined;
    logger.info({ destination: destination?.address, policy: policy?.address, identity: identityName }, "control plane serving");
    return {
      destinationAddress: destination?.address,
      policyAddress: policy?.address,
      adminPort: admin.port,
      identity: identityName,
      close: async () => {
        serving = false;
        await closeAll();
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
