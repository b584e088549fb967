/**
 * Child of bench/proxy.ts: one tether proxy direction in its own process, so its CPU time and RSS
 * can be read from /proc. Assembled like test/proxy/mesh-loopback.test.ts: a real certificate
 * from the identity CA (CertificateAgent with a service-account token), static discovery (one
 * `add` update) or static policy (all authenticated clients allowed), and an injected original
 * destination (loopback, no iptables).
 *
 * Usage: node dist/bench/proxy-child.mjs '<ChildConfig as JSON>' (built by bench/_proxy-topology.ts
 * with scripts/build.mjs), or node --import tsx bench/_proxy-child.ts '<ChildConfig as JSON>'
 * Prints {"port":N} once listening; SIGTERM/SIGINT (or the parent's stdin closing) exits, which
 * also writes the CPU profile when started with --cpu-prof.
 */
import { once } from "node:events";
import { readFile } from "node:fs/promises";
import { pino } from "pino";
import type { DestinationUpdate, InboundServer } from "../src/api/index.js";
import { createCertifyClient } from "../src/api/identity-client.js";
import { CertificateAgent } from "../src/identity/agent.js";
import { systemClock } from "../src/core/clock.js";
import { workloadIdentity } from "../src/identity/names.js";
import type { Credentials } from "../src/identity/tls.js";
import { DestinationCache } from "../src/proxy/destinations.js";
import { InboundPolicyCache } from "../src/proxy/inbound-policies.js";
import { InboundProxy } from "../src/proxy/inbound.js";
import { createProxyMetrics } from "../src/proxy/metrics.js";
import { OutboundProxy } from "../src/proxy/outbound.js";
import { TlsContexts } from "../src/proxy/tls-contexts.js";

export interface ChildConfig {
  direction: "inbound" | "outbound";
  ca: { address: string; serverName: string; anchorsPath: string };
  tokenFile: string;
  serviceAccount: string;
  namespace: string;
  /** Inbound: the application port behind this proxy. */
  appPort?: number;
  /** Outbound: the address the client dials, and the one endpoint discovery returns for it. */
  service?: { address: string; port: number };
  endpoint?: { port: number; identity: string };
}

const config = JSON.parse(process.argv[2] ?? "{}") as ChildConfig;
const logger = pino({ level: "warn", base: { component: "proxy", direction: config.direction } }, pino.destination(2));
const clock = systemClock;
const backoff = { initialMs: 100, maxMs: 1000 };

const anchorsPem = await readFile(config.ca.anchorsPath, "utf8");
const certify = createCertifyClient({ address: config.ca.address, anchorsPem, serverName: config.ca.serverName });
const agent = new CertificateAgent({
  identity: workloadIdentity(config.serviceAccount, config.namespace),
  tokenFile: config.tokenFile,
  certify: (req) => certify.certify(req),
  clock,
});
const contexts = new TlsContexts(anchorsPem, clock);
agent.on("certificate", (creds: Credentials) => contexts.install(creds));
const first = once(agent, "certificate");
agent.start();
await first;

const metrics = createProxyMetrics({ pod: `bench-${config.direction}` });
const common = { listen: { host: "127.0.0.1", port: 0 }, contexts, metrics, logger, clock, opaquePorts: new Set<number>(), detectTimeoutMs: 1000, controlPlaneWaitMs: 1000 };

let proxy: InboundProxy | OutboundProxy;
let closeControlPlane: () => void;
if (config.direction === "inbound") {
  const appPort = config.appPort!;
  const policy: InboundServer = {
    name: "default:all-authenticated",
    protocol: "unknown",
    authorizations: [{ name: "all-authenticated", networks: [], authentication: "mtls", identities: ["*"] }],
    routes: [],
    defaultPolicy: "all-authenticated",
    audit: false,
  };
  const policies = new InboundPolicyCache({ subscribe: () => (h) => (h.onMessage(policy), () => {}), clock, backoff });
  closeControlPlane = () => policies.close();
  proxy = new InboundProxy({ ...common, policies, appHost: "127.0.0.1", originalDestination: () => ({ address: "127.0.0.1", port: appPort, family: 4 }) });
} else {
  const service = config.service!;
  const endpoint = config.endpoint!;
  const update: DestinationUpdate = {
    update: "add",
    add: { endpoints: [{ address: "127.0.0.1", port: endpoint.port, weight: 1, identity: endpoint.identity, protocolHint: "h2", labels: { pod: "bench-server" } }] },
  };
  const destinations = new DestinationCache({ subscribe: () => (h) => (h.onMessage(update), () => {}), clock, idleMs: 60_000, backoff });
  closeControlPlane = () => destinations.close();
  proxy = new OutboundProxy({ ...common, destinations, balancer: "peak-ewma", originalDestination: () => ({ ...service, family: 4 }) });
}

const port = await proxy.listen();
process.stdout.write(`${JSON.stringify({ port })}\n`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  void proxy
    .drain(0)
    .finally(() => {
      closeControlPlane();
      agent.stop();
      certify.close();
    })
    .finally(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.resume();
