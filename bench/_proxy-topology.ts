/**
 * The processes bench/proxy.ts measures, started on 127.0.0.1: the gRPC-like server, a tether
 * inbound proxy in front of it and an outbound proxy whose static discovery points at that
 * inbound proxy (certificates from a real identity CA running in this process), and optionally
 * the HAProxy pair (certificates from the same CA). Every process is owned by `children`.
 *
 * The proxies run as the product ships them: bench/_proxy-child.ts compiled by scripts/build.mjs
 * (the same esbuild options as dist/tether.mjs) into dist/bench/, rebuilt whenever a source it
 * includes has changed, and started with the node flags of a proxy outside a container
 * (PROXY_UNCONTAINED_NODE_OPTIONS: the V8 heap of a proxy container with the default memory
 * limit). `tsx: true` runs the TypeScript through tsx with default flags, as development does.
 */
import { execFile } from "node:child_process";
import { once } from "node:events";
import { readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { ensureBuilt, ROOT } from "../scripts/build.mjs";
import { createCertifyClient } from "../src/api/identity-client.js";
import { PROXY_UNCONTAINED_NODE_OPTIONS } from "../src/api/mesh.js";
import { bootstrapCa } from "../src/ca/bootstrap.js";
import { startIdentityCa, type IdentityCa } from "../src/ca/server.js";
import { jwksTokenValidator } from "../src/ca/tokens.js";
import { CertificateAgent } from "../src/identity/agent.js";
import { systemClock } from "../src/core/clock.js";
import { toDnsName, workloadIdentity } from "../src/identity/names.js";
import type { Credentials } from "../src/identity/tls.js";
import { ServiceAccountTokenIssuer } from "../src/local/service-account-tokens.js";
import type { ChildConfig } from "./_proxy-child.js";
import { haproxyAConfig, haproxyBConfig, type HaproxyPair } from "./_proxy-haproxy.js";
import { freePort, waitForPort, type Children, type Started } from "./_proxy-procs.js";

const here = dirname(fileURLToPath(import.meta.url));
const NAMESPACE = "bench";
/** The address the client dials; the outbound proxy's discovery maps it to the inbound proxy. */
const SERVICE = { address: "10.96.0.10", port: 50051 };

export interface Topology {
  server: Started;
  outbound: Started;
  inbound: Started;
  haproxy?: { a: Started; b: Started };
  /** Stops the in-process CA (the children are stopped through `children`). */
  close(): Promise<void>;
}

export interface TopologyOptions {
  /** Temp folder for the CA, tokens, certificates and configs. */
  dir: string;
  children: Children;
  withHaproxy: boolean;
  /** Extra node flags for the tether proxies (e.g. --cpu-prof). */
  nodeFlags?: string[];
  /** Run the proxies' TypeScript through tsx (development) instead of the build (the product). */
  tsx?: boolean;
}

/** Where the bench's proxy child is built (inside the repository, so it finds node_modules). */
export const CHILD_BUILD_DIR = join(ROOT, "dist", "bench");

/** The node argv that runs bench/_proxy-child.ts: compiled like dist/tether.mjs, or through tsx. */
async function proxyChildArgv(tsx: boolean): Promise<string[]> {
  if (tsx) return ["--import", "tsx", join(here, "_proxy-child.ts")];
  const entries = await ensureBuilt({ outdir: CHILD_BUILD_DIR, entryPoints: { "proxy-child": "bench/_proxy-child.ts" } });
  return [...PROXY_UNCONTAINED_NODE_OPTIONS, entries["proxy-child"]!];
}

async function issueCredentials(ca: IdentityCa, anchorsPem: string, tokenFile: string, sa: string): Promise<Credentials> {
  const client = createCertifyClient({ address: ca.address, anchorsPem, serverName: ca.serverName });
  const agent = new CertificateAgent({ identity: workloadIdentity(sa, NAMESPACE), tokenFile, certify: (req) => client.certify(req), clock: systemClock });
  try {
    const got = once(agent, "certificate") as Promise<[Credentials]>;
    agent.start();
    return (await got)[0];
  } finally {
    agent.stop();
    client.close();
  }
}

function checkHaproxyConfig(path: string): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile("haproxy", ["-c", "-q", "-f", path], (err, stdout, stderr) => (err ? reject(new Error(`haproxy rejects ${path}: ${stderr || stdout || err.message}`)) : resolve())),
  );
}

export async function startTopology(o: TopologyOptions): Promise<Topology> {
  const { dir, children } = o;
  // A real identity CA; every certificate below (tether's and HAProxy's) comes from it.
  const paths = await bootstrapCa({ dir: join(dir, "ca"), trustDomain: "cluster.local" });
  const anchorsPem = await readFile(paths.anchorsPath, "utf8");
  const tokens = await ServiceAccountTokenIssuer.create();
  const ca = await startIdentityCa({
    issuerDir: paths.issuerDir,
    anchorsPath: paths.anchorsPath,
    trustDomain: "cluster.local",
    lifetimeMs: 24 * 3600 * 1000,
    clockSkewMs: 20_000,
    tokenValidator: jwksTokenValidator({ jwks: tokens.jwks(), issuer: tokens.issuer }),
    listen: { host: "127.0.0.1", port: 0 },
    clock: systemClock,
    logger: pino({ level: "silent" }),
  });
  try {
    const tokenFor = async (sa: string) => {
      const tokenFile = join(dir, `token-${sa}`);
      await writeFile(tokenFile, await tokens.mint({ namespace: NAMESPACE, serviceAccount: sa }));
      return tokenFile;
    };
    const server = await children.start("server", process.execPath, ["--import", "tsx", join(here, "_proxy-server.ts")], { announcesPort: true });
    const childArgv = await proxyChildArgv(o.tsx ?? false);

    const proxy = async (name: string, config: Omit<ChildConfig, "tokenFile" | "ca" | "namespace">): Promise<Started> => {
      const full: ChildConfig = {
        ...config,
        tokenFile: await tokenFor(config.serviceAccount),
        ca: { address: ca.address, serverName: ca.serverName, anchorsPath: paths.anchorsPath },
        namespace: NAMESPACE,
      };
      return children.start(name, process.execPath, [...(o.nodeFlags ?? []), ...childArgv, JSON.stringify(full)], { announcesPort: true });
    };
    const inbound = await proxy("tether-inbound", { direction: "inbound", serviceAccount: "echo", appPort: server.port });
    const outbound = await proxy("tether-outbound", {
      direction: "outbound",
      serviceAccount: "client",
      service: SERVICE,
      endpoint: { port: inbound.port, identity: toDnsName(workloadIdentity("echo", NAMESPACE)) },
    });
    const topology: Topology = { server, outbound, inbound, close: () => ca.close() };
    if (!o.withHaproxy) return topology;

    // HAProxy: B's identity name plays the role of tether's SNI and verified server identity.
    const aCreds = await issueCredentials(ca, anchorsPem, await tokenFor("haproxy-a"), "haproxy-a");
    const bCreds = await issueCredentials(ca, anchorsPem, await tokenFor("haproxy-b"), "haproxy-b");
    const pair: HaproxyPair = {
      aPort: await freePort(),
      bPort: await freePort(),
      serverPort: server.port,
      anchorsPath: paths.anchorsPath,
      aPemPath: join(dir, "haproxy-a.pem"),
      bPemPath: join(dir, "haproxy-b.pem"),
      bName: bCreds.dnsName,
    };
    await writeFile(pair.aPemPath, aCreds.certChainPem + aCreds.keyPem, { mode: 0o600 });
    await writeFile(pair.bPemPath, bCreds.certChainPem + bCreds.keyPem, { mode: 0o600 });
    const startHaproxy = async (name: string, config: string, port: number): Promise<Started> => {
      const cfg = join(dir, `${name}.cfg`);
      await writeFile(cfg, config);
      await checkHaproxyConfig(cfg);
      const started = await children.start(name, "haproxy", ["-db", "-f", cfg], { announcesPort: false });
      await waitForPort(port, 5000, children.process(name)).catch((err: Error) => {
        throw new Error(`${name}: ${err.message}; stderr: ${children.stderrOf(name)}`);
      });
      return { ...started, port };
    };
    const b = await startHaproxy("haproxy-b", haproxyBConfig(pair), pair.bPort);
    const a = await startHaproxy("haproxy-a", haproxyAConfig(pair), pair.aPort);
    return { ...topology, haproxy: { a, b } };
  } catch (err) {
    await ca.close();
    throw err;
  }
}
