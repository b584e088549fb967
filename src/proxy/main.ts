/**
 * Assembles a running proxy from its configuration: the identity agent and TLS contexts, the
 * control-plane streams (discovery, policy) over mTLS with the proxy's own identity, the inbound
 * and outbound listeners, and the admin server. SIGTERM and POST /shutdown drain the same way.
 */
import { readFile } from "node:fs/promises";
import type net from "node:net";
import * as grpc from "@grpc/grpc-js";
import { pino, type Logger } from "pino";
import { DestinationService, InboundPoliciesService, type DestinationUpdate, type InboundServer } from "../api/index.js";
import { createCertifyClient } from "../api/identity-client.js";
import { CertificateAgent } from "../identity/agent.js";
import { systemClock, type Clock } from "../core/clock.js";
import { errorMessage } from "../core/errors.js";
import { AgentCertificateProvider, mtlsChannelCredentials, mtlsChannelOptions } from "../identity/grpc-credentials.js";
import { toDnsName } from "../identity/names.js";
import type { Credentials } from "../identity/tls.js";
import { startProxyAdmin, type AdminServer } from "./admin.js";
import type { ProxyConfig } from "./config.js";
import { DestinationCache } from "./destinations.js";
import { InboundPolicyCache } from "./inbound-policies.js";
import { InboundProxy } from "./inbound.js";
import { createProxyMetrics, type ProxyMetrics } from "./metrics.js";
import { originalDestination, type OriginalDestination } from "./original-dst.js";
import { OutboundProxy } from "./outbound.js";
import { TlsContexts } from "./tls-contexts.js";
import type { StreamHandlers, Subscribe } from "./watch-stream.js";

export interface ProxyDeps {
  clock?: Clock;
  logger?: Logger;
  /** Defaults to SO_ORIGINAL_DST; loopback tests map connections themselves. */
  originalDestination?: (socket: net.Socket) => OriginalDestination;
  /** Called once the proxy has drained after a shutdown request (default: process.exit(0)). */
  onDrained?: () => void;
}

export interface RunningProxy {
  inboundPort: number;
  outboundPort: number;
  adminPort: number;
  metrics: ProxyMetrics;
  contexts: TlsContexts;
  agent: CertificateAgent;
  shutdown(): Promise<void>;
}

const CONTROL_PLANE_BACKOFF = { initialMs: 250, maxMs: 10_000 };
const DRAIN_GRACE_MS = 10_000;

/** Adapts a gRPC server stream to the WatchStream contract. */
function grpcSubscribe<T>(open: () => grpc.ClientReadableStream<T>): Subscribe<T> {
  return (handlers: StreamHandlers<T>) => {
    const call = open();
    call.on("data", (message: T) => handlers.onMessage(message));
    call.on("error", (err: Error) => handlers.onError(err));
    call.on("end", () => handlers.onEnd());
    return () => call.cancel();
  };
}

/** The proxy's identity: a CertificateAgent certified by the CA, installing each certificate. */
function startIdentity(config: ProxyConfig, anchorsPem: string, clock: Clock, metrics: ProxyMetrics, contexts: TlsContexts, logger: Logger) {
  const certifyClient = createCertifyClient({ address: config.identityAddr, anchorsPem, serverName: toDnsName(config.identityServerName) });
  const agent = new CertificateAgent({
    identity: config.identity,
    tokenFile: config.tokenFile,
    clock,
    logger: logger.child({ part: "identity" }),
    certify: async (req) => {
      try {
        const result = await certifyClient.certify(req);
        metrics.certRefreshes.inc({ result: "ok" });
        return result;
      } catch (err) {
        metrics.certRefreshes.inc({ result: "error" });
        throw err;
      }
    },
  });
  agent.on("certificate", (creds: Credentials) => {
    contexts.install(creds);
    metrics.certExpiry.set(creds.notAfter / 1000);
    logger.info({ identity: creds.dnsName, notAfter: new Date(creds.notAfter).toISOString() }, "new certificate installed");
  });
  agent.on("expired", () => logger.error("certificate expired and no new one could be obtained: meshed traffic refused until the CA answers"));
  return { agent, stop: () => (agent.stop(), certifyClient.close()) };
}

/** Discovery and policy streams to the controller, over mTLS with the proxy's identity. */
function controlPlaneCaches(config: ProxyConfig, agent: CertificateAgent, anchorsPem: string, clock: Clock, logger: Logger) {
  const controllerName = toDnsName(config.controllerServerName);
  const channelCredentials = mtlsChannelCredentials(new AgentCertificateProvider(agent, anchorsPem), controllerName);
  const destinationClient = new DestinationService(config.destinationAddr, channelCredentials, mtlsChannelOptions(controllerName));
  const policyClient = new InboundPoliciesService(config.policyAddr, channelCredentials, mtlsChannelOptions(controllerName));
  const contextToken = `${config.podNamespace}/${config.podName}`;
  // Readiness needs discovery reached once (over mTLS, so also our certificate accepted by it).
  let discoveryReached = false;
  whenChannelReady(destinationClient, () => (discoveryReached = true));
  const destinations = new DestinationCache({
    subscribe: (path) =>
      grpcSubscribe<DestinationUpdate>(() => (destinationClient as any).Get({ path, contextToken })),
    clock,
    idleMs: 60_000,
    backoff: CONTROL_PLANE_BACKOFF,
    onDisconnect: (path, err) => logger.warn({ path, err: err ? errorMessage(err) : "stream ended" }, "discovery stream lost: serving the last known endpoints"),
  });
  const policies = new InboundPolicyCache({
    subscribe: (port) =>
      grpcSubscribe<InboundServer>(() => (policyClient as any).WatchPort({ workload: contextToken, port })),
    clock,
    backoff: CONTROL_PLANE_BACKOFF,
    onUpdate: (port, server) => logger.info({ port, server: server.name }, "inbound policy updated"),
    onDisconnect: (port, err) => logger.warn({ port, err: err ? errorMessage(err) : "stream ended" }, "policy stream lost: keeping the last policy"),
  });
  for (const port of config.inboundPorts) policies.watch(port);
  return {
    destinations,
    policies,
    discoveryReached: () => discoveryReached,
    close() {
      destinations.close();
      policies.close();
      destinationClient.close();
      policyClient.close();
    },
  };
}

export async function startProxy(config: ProxyConfig, deps: ProxyDeps = {}): Promise<RunningProxy> {
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger ?? pino({ level: config.logLevel, base: { component: "proxy", pod: `${config.podNamespace}/${config.podName}` } });
  const anchorsPem = await readFile(config.trustAnchorsFile, "utf8");
  const metrics = createProxyMetrics({ pod: config.podName, namespace: config.podNamespace, workload: config.workload });
  const contexts = new TlsContexts(anchorsPem, clock);
  const identity = startIdentity(config, anchorsPem, clock, metrics, contexts, logger);
  const controlPlane = controlPlaneCaches(config, identity.agent, anchorsPem, clock, logger);

  const common = {
    contexts,
    metrics,
    clock,
    opaquePorts: config.opaquePorts,
    detectTimeoutMs: config.detectTimeoutMs,
    controlPlaneWaitMs: config.controlPlaneWaitMs,
    originalDestination: deps.originalDestination ?? originalDestination,
  };
  const inbound = new InboundProxy({
    ...common,
    listen: { host: "0.0.0.0", port: config.inboundPort },
    policies: controlPlane.policies,
    logger: logger.child({ direction: "inbound" }),
    appHost: "127.0.0.1",
  });
  const outbound = new OutboundProxy({
    ...common,
    listen: { host: "127.0.0.1", port: config.outboundPort },
    destinations: controlPlane.destinations,
    balancer: config.balancer,
    logger: logger.child({ direction: "outbound" }),
  });
  const inboundPort = await inbound.listen();
  const outboundPort = await outbound.listen();

  let draining: Promise<void> | undefined;
  let admin: AdminServer | undefined;
  const shutdown = (): Promise<void> => {
    draining ??= (async () => {
      logger.info("draining: no new connections; finishing in-flight requests");
      await Promise.all([inbound.drain(DRAIN_GRACE_MS), outbound.drain(DRAIN_GRACE_MS)]);
      identity.stop();
      controlPlane.close();
      await admin?.close();
      logger.info("drained");
      (deps.onDrained ?? (() => process.exit(0)))();
    })();
    return draining;
  };
  admin = await startProxyAdmin({
    host: config.adminHost,
    port: config.adminPort,
    registry: metrics.registry,
    notReadyReason: () => {
      if (draining) return "draining";
      if (!contexts.current()) return "no valid certificate yet";
      if (!controlPlane.policies.allReceived()) return "waiting for inbound policy from the control plane";
      if (!controlPlane.discoveryReached()) return "waiting to reach the destination service";
      return undefined;
    },
    shutdown: () => void shutdown(),
  });
  identity.agent.start();
  logger.info({ inboundPort, outboundPort, adminPort: admin.port, identity: toDnsName(config.identity) }, "proxy started");
  return { inboundPort, outboundPort, adminPort: admin.port, metrics, contexts, agent: identity.agent, shutdown };
}

/**
 * Calls `onReady` once the client's channel has been READY (connected, TLS done) at least once;
 * keeps trying until then, and stops when the client is closed.
 */
function whenChannelReady(client: grpc.Client, onReady: () => void): void {
  const attempt = () =>
    client.waitForReady(Date.now() + 5_000, (err) => {
      if (!err) return onReady();
      if (client.getChannel().getConnectivityState(false) !== grpc.connectivityState.SHUTDOWN) attempt();
    });
  attempt();
}
