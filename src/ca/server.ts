/**
 * The identity CA process: issuer folder (watched) + token validator + Certifier behind a gRPC
 * server over TLS, plus an admin HTTP server with /metrics, /ready and /live. The CA's own serving
 * certificate is issued from its issuer for its own identity and re-issued when the issuer
 * changes or the certificate reaches 70% of its lifetime.
 */
import { generateKeyPairSync } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { pino, type Logger } from "pino";
import { hostPort } from "../api/address.js";
import { startAdminServer, type AdminServer } from "../api/admin-server.js";
import { bindServer, shutdownServer, type BoundServer } from "../api/grpc-server.js";
import { IdentityService, toTimestamp, type CertifyRequest, type CertifyResponse } from "../api/index.js";
import { IDENTITY_SERVICE_ACCOUNT } from "../api/mesh.js";
import type { Clock, TimerHandle } from "../core/clock.js";
import { errorCode, errorMessage } from "../core/errors.js";
import { CONTROL_PLANE_NAMESPACE, toDnsName, workloadIdentity, type WorkloadIdentity } from "../identity/names.js";
import { pemEncode, readSpki } from "../identity/pkix.js";
import { readOnly } from "../identity/der.js";
import { Certifier } from "./certify.js";
import { CertifyError } from "./errors.js";
import { FolderIssuerSource, type ReloadResult } from "./issuer-folder.js";
import type { Issuer } from "./issuer.js";
import { createCaMetrics, type CaMetrics } from "./metrics.js";
import type { TokenValidator } from "./tokens.js";

/** Requests are a token and a CSR: anything near this size is not a Certify request. */
export const MAX_REQUEST_BYTES = 64 * 1024;

export interface IdentityCaOptions {
  issuerDir: string;
  anchorsPath?: string;
  trustDomain: string;
  lifetimeMs: number;
  clockSkewMs: number;
  tokenValidator: TokenValidator;
  listen: { host: string; port: number };
  /** Admin HTTP port (/metrics, /ready, /live); 0 for ephemeral; omitted for none. */
  adminPort?: number;
  clock: Clock;
  logger?: Logger;
  /** How often to re-read the issuer folder besides fs events (default 5 s). */
  pollMs?: number;
  processMetrics?: boolean;
}

export interface IdentityCa {
  address: string;
  port: number;
  adminPort: number | undefined;
  /** The CA's own identity name (the name clients must verify). */
  serverName: string;
  metrics: CaMetrics;
  registry: CaMetrics["registry"];
  issuer(): Issuer;
  /** Re-reads the issuer folder now (it is also watched). */
  reload(): Promise<ReloadResult>;
  close(): Promise<void>;
}

/** grpc-js certificate provider fed from memory, so the serving certificate can change live. */
class ServingCertificate implements grpc.experimental.CertificateProvider {
  private latest: grpc.experimental.IdentityCertificateUpdate | null = null;
  private listeners = new Set<grpc.experimental.IdentityCertificateUpdateListener>();

  set(update: grpc.experimental.IdentityCertificateUpdate): void {
    this.latest = update;
    for (const l of this.listeners) l(update);
  }

  addCaCertificateListener(): void {}
  removeCaCertificateListener(): void {}
  addIdentityCertificateListener(listener: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.listeners.add(listener);
    // grpc-js registers its own watcher only after this returns, so an immediate call would be lost.
    queueMicrotask(() => {
      if (this.latest && this.listeners.has(listener)) listener(this.latest);
    });
  }
  removeIdentityCertificateListener(listener: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.listeners.delete(listener);
  }
}

const RESULT_OF_STATUS = {
  UNAUTHENTICATED: { result: "unauthenticated", code: grpc.status.UNAUTHENTICATED },
  PERMISSION_DENIED: { result: "permission_denied", code: grpc.status.PERMISSION_DENIED },
  INVALID_ARGUMENT: { result: "invalid_argument", code: grpc.status.INVALID_ARGUMENT },
} as const;

/**
 * The CA's own serving certificate: a fresh key, signed by the issuer in service for the CA's
 * identity; re-issued at 70% of its lifetime and whenever a new issuer comes into service.
 */
function servingCertificate(certifier: Certifier, self: WorkloadIdentity, clock: Clock) {
  const provider = new ServingCertificate();
  let timer: TimerHandle | undefined;
  const issue = (): void => {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const spki = publicKey.export({ format: "der", type: "spki" });
    const issued = certifier.issue(self, spki, readSpki(readOnly(spki)).keyBits);
    provider.set({
      certificate: Buffer.from([issued.leafDer, ...issued.chainDer].map((d) => pemEncode("CERTIFICATE", d)).join("")),
      privateKey: privateKey.export({ format: "pem", type: "pkcs8" }) as Buffer,
    });
    if (timer) clock.clearTimeout(timer);
    // Capped below node's 2^31-1 ms timer limit; an early re-issue is harmless.
    timer = clock.setTimeout(issue, Math.min(2 ** 31 - 1, Math.max(1000, (issued.validUntil - clock.now()) * 0.7)));
  };
  issue();
  return {
    credentials: grpc.experimental.createCertificateProviderServerCredentials(provider, null, false),
    reissue: issue,
    stop: () => timer && clock.clearTimeout(timer),
  };
}

/** Certify: each outcome counted and timed; refusals answered with their gRPC status and code. */
function certifyHandler(certifier: Certifier, metrics: CaMetrics, log: Logger) {
  return (call: grpc.ServerUnaryCall<CertifyRequest, CertifyResponse>, callback: grpc.sendUnaryData<CertifyResponse>) => {
    const started = process.hrtime.bigint();
    const finish = (result: string): void => {
      metrics.issuances.inc({ result });
      metrics.latency.observe({ result }, Number(process.hrtime.bigint() - started) / 1e9);
    };
    const req = call.request;
    certifier
      .certify({ identity: req.identity, token: req.token, csrDer: req.certificateSigningRequest })
      .then((issued) => {
        finish("issued");
        callback(null, { leafCertificate: issued.leafDer, intermediateCertificates: issued.chainDer, validUntil: toTimestamp(issued.validUntil) });
      })
      .catch((err: unknown) => {
        if (err instanceof CertifyError) {
          const { result, code } = RESULT_OF_STATUS[err.status];
          finish(result);
          log.info({ code: err.code, identity: String(req.identity).slice(0, 300), peer: call.getPeer() }, `certify refused: ${err.message}`);
          callback({ code, details: `${err.code}: ${err.message}` });
          return;
        }
        finish("internal");
        log.error({ code: errorCode(err), err: errorMessage(err) }, "certify failed");
        callback({ code: grpc.status.INTERNAL, details: "INTERNAL: the CA failed to issue; see its logs" });
      });
  };
}

/** Reports each issuer reload (metrics, log) and, on a new issuer, calls `inService`. */
function followIssuer(source: FolderIssuerSource, metrics: CaMetrics, log: Logger, issuerDir: string, inService: () => void): void {
  const record = (issuer: Issuer): void => {
    metrics.issuerExpiry.set(issuer.notAfter / 1000);
    metrics.anchorExpiry.set(issuer.anchorsNotAfter / 1000);
  };
  record(source.current());
  source.on("reload", (outcome: ReloadResult) => {
    if (outcome.result === "success") {
      metrics.reloads.inc({ result: "success", reason: "" });
      record(outcome.issuer);
      log.info({ issuer: outcome.issuer.subject, notAfter: new Date(outcome.issuer.notAfter).toISOString() }, "new issuer in service");
      inService();
    } else if (outcome.result === "error") {
      metrics.reloads.inc({ result: "error", reason: outcome.code });
      log.error({ code: outcome.code, reason: outcome.message, issuerDir }, "new issuer refused; the previous issuer stays in service");
    }
  });
}

export async function startIdentityCa(opts: IdentityCaOptions): Promise<IdentityCa> {
  const log = (opts.logger ?? pino({ level: "silent" })).child({ component: "identity" });
  const metrics = createCaMetrics({ processMetrics: opts.processMetrics });
  const source = await FolderIssuerSource.open({ dir: opts.issuerDir, anchorsPath: opts.anchorsPath, clock: opts.clock, pollMs: opts.pollMs });
  const certifier = new Certifier({
    trustDomain: opts.trustDomain,
    lifetimeMs: opts.lifetimeMs,
    clockSkewMs: opts.clockSkewMs,
    tokenValidator: opts.tokenValidator,
    issuer: () => source.current(),
    clock: opts.clock,
  });
  const self = workloadIdentity(IDENTITY_SERVICE_ACCOUNT, CONTROL_PLANE_NAMESPACE, opts.trustDomain);
  const serving = servingCertificate(certifier, self, opts.clock);
  followIssuer(source, metrics, log, opts.issuerDir, serving.reissue);
  log.info({ issuer: source.current().subject, notAfter: new Date(source.current().notAfter).toISOString(), tokenMode: opts.tokenValidator.mode }, "issuer loaded");

  const server = new grpc.Server({ "grpc.max_receive_message_length": MAX_REQUEST_BYTES });
  server.addService(IdentityService.service, { Certify: certifyHandler(certifier, metrics, log) });
  const stopBackground = (): void => {
    source.close();
    serving.stop();
  };
  let bound: BoundServer;
  let admin: AdminServer | undefined;
  try {
    bound = await bindServer(server, hostPort(opts.listen.host, opts.listen.port), serving.credentials);
    if (opts.adminPort !== undefined) {
      admin = await startAdminServer({
        host: opts.listen.host,
        port: opts.adminPort,
        registries: [metrics.registry],
        notReadyReason: () => (opts.clock.now() < source.current().notAfter ? undefined : "the issuer in service has expired"),
      });
    }
  } catch (err) {
    stopBackground();
    server.forceShutdown();
    throw err;
  }
  const serverName = toDnsName(self);
  log.info({ port: bound.port, adminPort: admin?.port, serverName }, "identity CA serving");

  return {
    address: bound.address,
    port: bound.port,
    adminPort: admin?.port,
    serverName,
    metrics,
    registry: metrics.registry,
    issuer: () => source.current(),
    reload: () => source.reload(),
    async close() {
      stopBackground();
      await shutdownServer(server);
      await admin?.close();
    },
  };
}
