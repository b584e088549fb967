/**
 * The tether-injector process: HTTPS on :8443 for the API server (POST /inject, POST /validate)
 * and plain HTTP on an admin port (/metrics, /live, /ready). Every request gets an answer: a
 * malformed, oversized or mistyped body gets a 4xx with a message, an unexpected failure a denial.
 */
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { startAdminServer } from "../api/admin-server.js";
import { errorCode, errorMessage, TetherError, type CodeOf } from "../core/errors.js";
import { systemClock, type Clock } from "../core/clock.js";
import { internalError, parseReview, reviewEnvelope, reviewInjection, reviewPolicy, type ClusterLookup, type Reviewed } from "./admission.js";
import { CertReloader } from "./cert-reloader.js";
import { WebhookMetrics } from "./metrics.js";
import type { InjectionSettings } from "./settings.js";

/** kube-apiserver caps objects at about 1.5 MiB; a review carries object and oldObject. */
export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

export interface WebhookServerOptions {
  settings: InjectionSettings;
  lookup: ClusterLookup;
  certFile: string;
  keyFile: string;
  log: Logger;
  host?: string;
  port?: number;
  adminHost?: string;
  /** 0 picks a free port; undefined disables the admin server. */
  adminPort?: number;
  maxBodyBytes?: number;
  clock?: Clock;
  certPollMs?: number;
}

export interface WebhookServer {
  readonly port: number;
  readonly adminPort: number | undefined;
  readonly metrics: WebhookMetrics;
  /** Re-reads the serving certificate now (the watcher does this on its own). */
  reloadCertificate(): boolean;
  /** Injection settings for reviews from now on (the install's config file changed). */
  updateSettings(settings: InjectionSettings): void;
  close(): Promise<void>;
}

type RequestRefusal = CodeOf<"WebhookRequestError">;

/** The HTTP status of each refusal, and its `reason` label on tether_webhook_bad_requests_total. */
const REQUEST_REFUSALS: Readonly<Record<RequestRefusal, { status: number; reason: string }>> = {
  WEBHOOK_BODY_TOO_LARGE: { status: 413, reason: "too-large" },
  WEBHOOK_MALFORMED_JSON: { status: 400, reason: "malformed-json" },
  WEBHOOK_MALFORMED_REVIEW: { status: 400, reason: "malformed-review" },
  WEBHOOK_UNKNOWN_PATH: { status: 404, reason: "unknown-path" },
  WEBHOOK_WRONG_CONTENT_TYPE: { status: 415, reason: "wrong-content-type" },
  WEBHOOK_WRONG_METHOD: { status: 405, reason: "wrong-method" },
};

/** A request that is not an AdmissionReview this webhook serves. */
export class WebhookRequestError extends TetherError<RequestRefusal> {}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? NaN);
    if (declared > limit) {
      reject(new WebhookRequestError("WEBHOOK_BODY_TOO_LARGE", `the body (${declared} bytes) exceeds the webhook's limit of ${limit} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners("data");
        req.resume();
        reject(new WebhookRequestError("WEBHOOK_BODY_TOO_LARGE", `the body exceeds the webhook's limit of ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, { "content-type": typeof body === "string" ? "text/plain; charset=utf-8" : "application/json" });
  res.end(text);
}

export async function startWebhookServer(options: WebhookServerOptions): Promise<WebhookServer> {
  const log = options.log;
  const clock = options.clock ?? systemClock;
  const metrics = new WebhookMetrics();
  const limit = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  let settings = options.settings;

  let server: HttpsServer | undefined;
  const reloader = new CertReloader({
    certFile: options.certFile,
    keyFile: options.keyFile,
    clock,
    log,
    pollMs: options.certPollMs,
    onChange: (pair) => {
      // New handshakes use the new pair; established connections keep theirs.
      server?.setSecureContext({ cert: pair.cert, key: pair.key });
      metrics.certReloads.inc({ result: "ok" });
      metrics.certExpiry.set(pair.notAfter.getTime() / 1000);
    },
    onRefused: () => metrics.certReloads.inc({ result: "refused" }),
  });
  metrics.certExpiry.set(reloader.pair.notAfter.getTime() / 1000);

  const handlers: Record<string, (body: unknown) => Promise<Reviewed>> = {
    "/inject": async (body) => {
      const parsed = parseReview(body);
      if (!parsed.ok) throw new WebhookRequestError("WEBHOOK_MALFORMED_REVIEW", parsed.message);
      return reviewInjection(parsed.request, settings, options.lookup).catch((err) => internalError(parsed.request.uid, err));
    },
    "/validate": async (body) => {
      const parsed = parseReview(body);
      if (!parsed.ok) throw new WebhookRequestError("WEBHOOK_MALFORMED_REVIEW", parsed.message);
      return reviewPolicy(parsed.request, options.lookup).catch((err) => internalError(parsed.request.uid, err));
    },
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0]!;
    try {
      // A TLS check for the serving certificate; the probes use the admin port.
      if (req.method === "GET" && path === "/live") return send(res, 200, "ok\n");
      const handler = handlers[path];
      if (!handler) throw new WebhookRequestError("WEBHOOK_UNKNOWN_PATH", `no webhook at ${path}; use /inject or /validate`);
      if (req.method !== "POST") throw new WebhookRequestError("WEBHOOK_WRONG_METHOD", `${req.method} is not allowed; the API server POSTs AdmissionReviews`);
      const type = String(req.headers["content-type"] ?? "");
      if (!/^application\/json\b/i.test(type)) throw new WebhookRequestError("WEBHOOK_WRONG_CONTENT_TYPE", `content-type ${JSON.stringify(type)} is not application/json`);
      const raw = await readBody(req, limit);
      let body: unknown;
      try {
        body = JSON.parse(raw.toString("utf8"));
      } catch (err) {
        throw new WebhookRequestError("WEBHOOK_MALFORMED_JSON", `the body is not JSON: ${errorMessage(err)}`);
      }
      const webhook = path.slice(1);
      const started = performance.now();
      const reviewed = await handler(body);
      metrics.duration.observe({ webhook }, (performance.now() - started) / 1000);
      metrics.admissions.inc({ webhook, outcome: reviewed.outcome, reason: reviewed.reason });
      if (reviewed.outcome === "denied") {
        log.warn({ webhook, uid: reviewed.response.uid, reason: reviewed.reason, message: reviewed.response.status?.message }, "admission denied");
      } else {
        log.debug({ webhook, uid: reviewed.response.uid, outcome: reviewed.outcome, reason: reviewed.reason }, "admission reviewed");
      }
      send(res, 200, reviewEnvelope(reviewed.response));
    } catch (err) {
      const { status, reason } = err instanceof WebhookRequestError ? REQUEST_REFUSALS[err.code] : { status: 500, reason: "internal" };
      const message = err instanceof WebhookRequestError ? err.message : `internal error: ${errorMessage(err)}`;
      metrics.badRequests.inc({ reason });
      log.warn({ path, status, reason, code: errorCode(err), message }, "webhook request refused");
      if (!res.headersSent) {
        // An oversized body is not read to the end; close instead of keeping a half-read connection.
        if (status === 413) res.setHeader("connection", "close");
        send(res, status, message + "\n");
      }
    }
  };

  server = createHttpsServer({ cert: reloader.pair.cert, key: reloader.pair.key, minVersion: "TLSv1.2" }, (req, res) => void handle(req, res));
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  server.on("tlsClientError", () => metrics.badRequests.inc({ reason: "tls" }));
  await new Promise<void>((resolve, reject) => {
    server!.once("error", reject);
    server!.listen(options.port ?? 8443, options.host ?? "0.0.0.0", () => resolve());
  });

  // Ready while the certificate the API server sees is valid (an expired one fails every review).
  const notReadyReason = () => {
    const notAfter = reloader.pair.notAfter;
    return clock.now() < notAfter.getTime() ? undefined : `the serving certificate expired at ${notAfter.toISOString()}`;
  };
  const admin =
    options.adminPort === undefined
      ? undefined
      : await startAdminServer({ host: options.adminHost ?? "0.0.0.0", port: options.adminPort, registries: [metrics.registry], notReadyReason });
  reloader.start();

  return {
    port: (server.address() as AddressInfo).port,
    adminPort: admin?.port,
    metrics,
    reloadCertificate: () => reloader.check(),
    updateSettings: (next) => {
      settings = next;
    },
    close: async () => {
      reloader.stop();
      const https = new Promise<void>((resolve) => {
        server!.close(() => resolve());
        server!.closeAllConnections();
      });
      await Promise.all([https, admin?.close()]);
    },
  };
}
