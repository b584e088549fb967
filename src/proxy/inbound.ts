/**
 * The inbound proxy (:4143): every TCP connection to the pod (but the skipped ports and the admin
 * port) is redirected here. It terminates mTLS when the client asked for our identity (SNI), learns
 * the client's identity from its verified certificate, authorizes the connection and each HTTP
 * request against the port's policy, and forwards what is allowed to the application on
 * localhost. Denials: HTTP 403, gRPC PERMISSION_DENIED, opaque TCP closed; each logged and counted.
 */
import http from "node:http";
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http2";
import net from "node:net";
import tls from "node:tls";
import type { Logger } from "pino";
import { authorize, type ConnectionFacts, type Decision } from "../api/inbound-policy.js";
import type { InboundServer } from "../api/index.js";
import { CLIENT_ID_HEADER } from "../api/mesh.js";
import type { PortSet } from "../api/ports.js";
import type { Clock } from "../core/clock.js";
import { errorMessage } from "../core/errors.js";
import { toDnsName } from "../identity/names.js";
import { peerIdentity } from "../identity/tls.js";
import { recordRequest, recordTcpOpen, type RequestLabels } from "./accounting.js";
import { detectProtocol } from "./detect.js";
import { forwardH1, forwardUpgrade, H1AgentPool, type H1Upstream } from "./forward/h1.js";
import { answer, forwardH2 } from "./forward/h2.js";
import { GrpcStatus, isGrpc } from "./forward/grpc.js";
import { H2ConnectionPool } from "./forward/pool.js";
import type { H2Stream } from "./h2/connection.js";
import { fieldsToObject, fieldValue, withoutField, type HeaderFields } from "./h2/fields.js";
import { forwardTcp } from "./forward/tcp.js";
import type { InboundPolicyCache } from "./inbound-policies.js";
import type { ProxyMetrics } from "./metrics.js";
import type { OriginalDestination } from "./original-dst.js";
import { peekClientHello } from "./tls-sni.js";
import type { TlsContexts } from "./tls-contexts.js";
import { ProxySide } from "./listener.js";

export interface InboundOptions {
  listen: { host: string; port: number };
  policies: InboundPolicyCache;
  contexts: TlsContexts;
  metrics: ProxyMetrics;
  logger: Logger;
  clock: Clock;
  /** Where the application listens (localhost in a pod). */
  appHost: string;
  opaquePorts: PortSet;
  detectTimeoutMs: number;
  controlPlaneWaitMs: number;
  /** Where the client meant to go: SO_ORIGINAL_DST in production, a mapping in loopback tests. */
  originalDestination(socket: net.Socket): OriginalDestination;
}

/** What is known about one accepted connection once TLS (if any) is done. */
interface InboundConnection {
  port: number;
  facts: ConnectionFacts;
  policy: InboundServer;
}

/** Reads the first bytes (without consuming them) until a ClientHello can be judged. */
function peekTls(socket: net.Socket, timeoutMs: number) {
  return new Promise<ReturnType<typeof peekClientHello>>((resolve) => {
    const chunks: Buffer[] = [];
    const finish = (result: ReturnType<typeof peekClientHello>) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.pause();
      if (chunks.length && !socket.destroyed) socket.unshift(Buffer.concat(chunks));
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      const result = peekClientHello(Buffer.concat(chunks));
      if (result.kind !== "incomplete") finish(result);
    };
    const onEnd = () => finish({ kind: "not-tls" });
    // A silent client (server-speaks-first protocol) is not TLS.
    const timer = setTimeout(() => finish({ kind: "not-tls" }), timeoutMs);
    socket.on("data", onData);
    socket.once("end", onEnd);
  });
}

function inboundLabels(connection: InboundConnection): RequestLabels {
  return {
    direction: "inbound",
    authority: `:${connection.port}`,
    peerIdentity: connection.facts.clientIdentity ?? "",
    dstPod: "",
    tls: connection.facts.tls,
  };
}

function handshakeKey(socket: net.Socket): string {
  return `${socket.remoteAddress}:${socket.remotePort}`;
}

function clientIp(socket: net.Socket): string {
  const address = socket.remoteAddress ?? "";
  return address.startsWith("::ffff:") ? address.slice(7) : address;
}

export class InboundProxy extends ProxySide<InboundConnection> {
  private readonly tlsTerminator: tls.Server;
  /** Handshakes in progress, by client address:port (the TLS socket reports its parent's). */
  private readonly handshakes = new Map<string, (outcome: { socket?: tls.TLSSocket; err?: Error }) => void>();

  constructor(private readonly options: InboundOptions) {
    super(
      "inbound",
      options.logger,
      options.metrics,
      options.listen,
      new H2ConnectionPool({
        connectTimeoutMs: 3000,
        onProtocolError: (kind) => options.metrics.protocolErrors.inc({ direction: "inbound", kind: `app-${kind}` }),
      }),
      new H1AgentPool(),
    );
    this.tlsTerminator = this.createTlsTerminator();
  }

  private refuse(socket: net.Socket, kind: string, message: string, extra: Record<string, unknown> = {}): void {
    this.options.metrics.protocolErrors.inc({ direction: "inbound", kind });
    this.options.logger.warn({ client: clientIp(socket), ...extra }, message);
    socket.destroy();
  }

  protected async onConnection(raw: net.Socket): Promise<void> {
    const { options } = this;
    raw.setNoDelay(true);
    raw.on("error", () => {});
    let port: number;
    try {
      port = options.originalDestination(raw).port;
    } catch (err) {
      return this.refuse(raw, "no-original-destination", "inbound connection without an original destination: closed", { err: errorMessage(err) });
    }
    const hello = await peekTls(raw, options.detectTimeoutMs);
    const ours = options.contexts.current();
    let socket: net.Socket = raw;
    const facts: ConnectionFacts = { tls: false, clientIp: clientIp(raw) };
    if (hello.kind === "tls" && ours && hello.serverName === ours.dnsName) {
      const terminated = await this.terminateTls(raw);
      if (!terminated) return;
      socket = terminated.socket;
      facts.tls = true;
      if (terminated.identity) facts.clientIdentity = terminated.identity;
    } else if (hello.kind === "tls" && hello.serverName?.includes(".serviceaccount.identity.tether.")) {
      // A mesh client asked for a mesh identity we cannot prove (none yet, or not ours): fail closed.
      return this.refuse(raw, "tls-identity-unavailable", "mTLS client asked for an identity this proxy does not hold: closed", {
        requested: hello.serverName,
      });
    }
    const policy = await options.policies.get(port, options.controlPlaneWaitMs);
    if (!policy) {
      return this.refuse(socket, "policy-unavailable", "no policy known for this port yet: connection refused (fail closed)", { port });
    }
    const connection: InboundConnection = { port, facts, policy };
    const opaque = policy.protocol === "opaque" || options.opaquePorts.has(port);
    // Over mTLS the client's proxy said what it speaks (ALPN); only plaintext needs detection.
    const alpn = socket instanceof tls.TLSSocket ? socket.alpnProtocol : false;
    const detection =
      !opaque && alpn === "h2"
        ? { protocol: "h2" as const, unshifted: true, buffered: Buffer.alloc(0) }
        : !opaque && alpn === "http/1.1"
          ? { protocol: "http1" as const, unshifted: true, buffered: Buffer.alloc(0) }
          : await detectProtocol(socket, { timeoutMs: options.detectTimeoutMs, opaque });
    if (socket.destroyed) return;
    return this.serveDetected(socket, detection, connection);
  }

  /**
   * A TLS server that never listens: accepted sockets are handed to it after the SNI peek. Going
   * through tls.Server (rather than a hand-made TLSSocket) gives Node's own client-certificate
   * verification result (`authorized`) and a socket http2 accepts. The certificate comes from the
   * current context on every handshake (SNICallback), so rotation needs no restart.
   */
  private createTlsTerminator(): tls.Server {
    const server = tls.createServer({
      ca: this.options.contexts.anchors,
      requestCert: true,
      rejectUnauthorized: false,
      ALPNProtocols: ["h2", "http/1.1"],
      minVersion: "TLSv1.3",
      SNICallback: (_name, callback) => {
        const context = this.options.contexts.serverContext();
        callback(context ? null : new Error("no valid certificate"), context);
      },
    });
    server.on("secureConnection", (socket: tls.TLSSocket) => this.handshakes.get(handshakeKey(socket))?.({ socket }));
    server.on("tlsClientError", (err: Error, socket: tls.TLSSocket) => this.handshakes.get(handshakeKey(socket))?.({ socket, err }));
    return server;
  }

  /**
   * Completes the TLS handshake; a presented but untrusted certificate closes the connection.
   * Once the TLS layer owns the raw socket, only the TLS socket is destroyed: destroying the raw
   * socket under a live TLS wrap crashes Node.
   */
  private terminateTls(raw: net.Socket): Promise<{ socket: tls.TLSSocket; identity: string | undefined } | undefined> {
    if (!this.options.contexts.serverContext()) {
      this.refuse(raw, "tls-no-identity", "no valid certificate to terminate mTLS with: closed (fail closed)");
      return Promise.resolve(undefined);
    }
    const key = handshakeKey(raw);
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish({ err: new Error("handshake timeout") }), 10_000);
      const finish = ({ socket, err }: { socket?: tls.TLSSocket; err?: Error }) => {
        clearTimeout(timer);
        this.handshakes.delete(key);
        socket?.on("error", () => {});
        if (!socket || err) {
          this.refuse(socket ?? raw, "tls-handshake", "mTLS handshake failed: closed", { err: errorMessage(err) });
          return resolve(undefined);
        }
        if (socket.getPeerX509Certificate() !== undefined && !socket.authorized) {
          this.refuse(socket, "tls-untrusted-client", "client certificate does not chain to our trust anchors: closed", {
            why: String(socket.authorizationError),
          });
          return resolve(undefined);
        }
        const identity = peerIdentity(socket);
        resolve({ socket, identity: identity ? toDnsName(identity) : undefined });
      };
      this.handshakes.set(key, finish);
      this.tlsTerminator.emit("connection", raw);
    });
  }

  private decide(connection: InboundConnection, request?: { method: string; path: string; headers: IncomingHttpHeaders }): Decision {
    const decision = authorize(connection.policy, connection.facts, request);
    const { metrics, logger } = this.options;
    const labels = {
      port: String(connection.port),
      decision: decision.allowed ? (decision.audited ? "audit-allow" : "allow") : "deny",
      authorization: decision.authorization ?? "",
      route: decision.route ?? "",
      reason: decision.reason,
      client_identity: connection.facts.clientIdentity ?? "",
    };
    metrics.authorizations.inc(labels);
    if (!decision.allowed || decision.audited) {
      logger.warn(
        {
          port: connection.port,
          client: connection.facts.clientIp,
          clientIdentity: connection.facts.clientIdentity ?? null,
          tls: connection.facts.tls,
          path: request?.path,
          server: connection.policy.name,
          reason: decision.reason,
          audited: decision.audited,
        },
        decision.allowed ? "audit: request would be denied" : "request denied by policy",
      );
    }
    return decision;
  }

  /** Request headers as the app sees them: our verified client identity, never one from outside. */
  private withClientId(connection: InboundConnection) {
    return (headers: OutgoingHttpHeaders): OutgoingHttpHeaders => {
      delete headers[CLIENT_ID_HEADER];
      if (connection.facts.clientIdentity) headers[CLIENT_ID_HEADER] = connection.facts.clientIdentity;
      return headers;
    };
  }

  /** The same for HTTP/2 header lists. */
  private withClientIdField(connection: InboundConnection) {
    const identity = connection.facts.clientIdentity;
    return (fields: HeaderFields): HeaderFields => {
      const out = withoutField(fields, CLIENT_ID_HEADER);
      if (identity) out.push(CLIENT_ID_HEADER, identity);
      return out;
    };
  }

  protected onH2Stream(stream: H2Stream, fields: HeaderFields, endStream: boolean, connection: InboundConnection): void {
    const { clock, metrics, appHost } = this.options;
    const start = clock.now();
    const labels = inboundLabels(connection);
    const decision = this.decide(connection, {
      method: fieldValue(fields, ":method") ?? "",
      path: fieldValue(fields, ":path") ?? "",
      headers: fieldsToObject(fields),
    });
    if (!decision.allowed) {
      const answered = answer(stream, isGrpc(fields), {
        grpcStatus: GrpcStatus.PERMISSION_DENIED,
        httpStatus: 403,
        code: `POLICY_${decision.reason.toUpperCase()}`,
        message: `forbidden by tether policy: ${decision.reason}`,
      });
      recordRequest(metrics, labels, { ...answered, latencyMs: clock.now() - start });
      return;
    }
    const port = connection.port;
    forwardH2(stream, fields, endStream, {
      clock,
      maxAttempts: 1,
      requestFields: this.withClientIdField(connection),
      choose: () => ({
        connection: () => this.h2Pool.connection(`app:${port}`, () => net.connect({ host: appHost, port })),
        done: () => {},
        failed: () => {},
        cancel: () => {},
      }),
      finished: (result) =>
        recordRequest(metrics, labels, { status: result.status, grpcStatus: result.grpcStatus, error: result.error, latencyMs: result.durationMs }),
    });
  }

  private appUpstream(port: number): H1Upstream {
    return {
      hostname: this.options.appHost,
      port,
      agent: this.h1Agents.agent(`app:${port}`),
      done: () => {},
      failed: () => {},
      cancel: () => {},
    };
  }

  protected async onH1Request(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const connection = this.h1Contexts.get(req.socket);
    if (!connection) return void res.writeHead(500).end();
    const { clock, metrics } = this.options;
    const start = clock.now();
    const labels = inboundLabels(connection);
    const decision = this.decide(connection, { method: req.method ?? "", path: req.url ?? "", headers: req.headers });
    if (!decision.allowed) {
      res.writeHead(403, { "content-type": "text/plain", "tether-error": `POLICY_${decision.reason.toUpperCase()}` });
      res.end(`forbidden by tether policy: ${decision.reason}\n`);
      recordRequest(metrics, labels, { status: 403, latencyMs: clock.now() - start });
      return;
    }
    const result = await forwardH1(req, res, {
      clock,
      maxAttempts: 1,
      requestHeaders: this.withClientId(connection),
      choose: () => this.appUpstream(connection.port),
    });
    recordRequest(metrics, labels, { status: result.status, error: result.error, latencyMs: clock.now() - start });
  }

  protected async onH1Upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): Promise<void> {
    const connection = this.h1Contexts.get(req.socket) ?? this.h1Contexts.get(socket);
    if (!connection) return void socket.destroy();
    const decision = this.decide(connection, { method: req.method ?? "", path: req.url ?? "", headers: req.headers });
    if (!decision.allowed) {
      socket.end(`HTTP/1.1 403 Forbidden\r\ntether-error: POLICY_${decision.reason.toUpperCase()}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      return;
    }
    await forwardUpgrade(req, socket, head, {
      clock: this.options.clock,
      maxAttempts: 1,
      requestHeaders: this.withClientId(connection),
      choose: () => this.appUpstream(connection.port),
    });
  }

  protected async forwardOpaque(socket: net.Socket, connection: InboundConnection, replay: Buffer | undefined): Promise<void> {
    const decision = this.decide(connection);
    if (!decision.allowed) {
      socket.destroy();
      return;
    }
    const { appHost, metrics } = this.options;
    const close = recordTcpOpen(metrics, { direction: "inbound", peer: connection.facts.clientIdentity ?? "", tls: connection.facts.tls });
    const result = await forwardTcp(socket, {
      maxAttempts: 1,
      clock: this.options.clock,
      ...(replay ? { replay } : {}),
      choose: () => ({
        connect: () => net.connect({ host: appHost, port: connection.port, allowHalfOpen: true }),
        done: () => {},
        failed: () => {},
        cancel: () => {},
      }),
    });
    close({ bytesIn: result.bytesFromClient, bytesOut: result.bytesToClient, ...(result.error ? { error: result.error } : {}) });
  }
}
