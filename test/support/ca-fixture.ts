/**
 * Test fixture: a bootstrapped development PKI in a temp dir, a local service-account token
 * issuer, and a real identity CA (gRPC over TLS on 127.0.0.1:0) validating tokens in jwks mode.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { pino, type Logger } from "pino";
import { createCertifyClient, type CertifyClient } from "../../src/api/identity-client.js";
import { bootstrapCa, type BootstrapPaths } from "../../src/ca/bootstrap.js";
import { startIdentityCa, type IdentityCa } from "../../src/ca/server.js";
import { jwksTokenValidator } from "../../src/ca/tokens.js";
import { systemClock, type Clock } from "../../src/core/clock.js";
import { buildCsr } from "../../src/identity/csr.js";
import { toDnsName, toSpiffeId, workloadIdentity, type WorkloadIdentity } from "../../src/identity/names.js";
import { ServiceAccountTokenIssuer } from "../../src/local/service-account-tokens.js";

export interface CaFixture {
  dir: string;
  paths: BootstrapPaths;
  ca: IdentityCa;
  tokens: ServiceAccountTokenIssuer;
  anchorsPem: string;
  client: CertifyClient;
  /** Log lines the CA wrote (parsed JSON). */
  logs: Record<string, unknown>[];
  close(): Promise<void>;
}

export async function startCaFixture(opts: { lifetimeMs?: number; clock?: Clock; pollMs?: number; issuerLifetimeMs?: number } = {}): Promise<CaFixture> {
  const dir = await mkdtemp(join(tmpdir(), "tether-ca-"));
  const paths = await bootstrapCa({ dir, trustDomain: "cluster.local", issuerLifetimeMs: opts.issuerLifetimeMs });
  const tokens = await ServiceAccountTokenIssuer.create();
  const logs: Record<string, unknown>[] = [];
  const logger: Logger = pino({ level: "info" }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const ca = await startIdentityCa({
    issuerDir: paths.issuerDir,
    anchorsPath: paths.anchorsPath,
    trustDomain: "cluster.local",
    lifetimeMs: opts.lifetimeMs ?? 24 * 3600 * 1000,
    clockSkewMs: 20_000,
    tokenValidator: jwksTokenValidator({ jwks: tokens.jwks(), issuer: tokens.issuer }),
    listen: { host: "127.0.0.1", port: 0 },
    adminPort: 0,
    clock: opts.clock ?? systemClock,
    logger,
    pollMs: opts.pollMs ?? 200,
  });
  const anchorsPem = await readFile(paths.anchorsPath, "utf8");
  const client = createCertifyClient({ address: ca.address, anchorsPem, serverName: ca.serverName, timeoutMs: 5000 });
  return {
    dir,
    paths,
    ca,
    tokens,
    anchorsPem,
    client,
    logs,
    async close() {
      client.close();
      await ca.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface Workload {
  identity: WorkloadIdentity;
  dnsName: string;
  spiffeId: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  csr: Buffer;
}

export function workload(sa: string, ns: string): Workload {
  const identity = workloadIdentity(sa, ns);
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const dnsName = toDnsName(identity);
  const spiffeId = toSpiffeId(identity);
  return { identity, dnsName, spiffeId, privateKey, publicKey, csr: buildCsr({ privateKey, publicKey, dnsName, spiffeId }) };
}
