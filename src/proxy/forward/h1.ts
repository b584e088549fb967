/**
 * HTTP/1 forwarding with http2-proxy: one request at a time onto keep-alive upstream connections
 * (an http.Agent per endpoint), WebSocket upgrades passed through as raw sockets after the 101.
 * The endpoint is chosen per request through `choose`, like the HTTP/2 forwarder; a connect
 * failure (nothing sent yet) moves on to another endpoint.
 */
import http, { type IncomingMessage, type ServerResponse, type OutgoingHttpHeaders } from "node:http";
import type { Socket } from "node:net";
import proxy from "http2-proxy";
import { systemClock, type Clock } from "../../core/clock.js";
import { errorMessage } from "../../core/errors.js";
import { errorReason, httpStatusFor, UpstreamError } from "./errors.js";

export interface H1Upstream {
  hostname: string;
  port: number;
  /** Keeps connections to this endpoint alive between requests (and may make them TLS). */
  agent: http.Agent;
  done(outcome: { ok: boolean; latencyMs: number }): void;
  failed(): void;
  cancel(): void;
}

export interface H1ForwardOptions {
  /** Chooses the endpoint for an attempt; throw UpstreamError("UPSTREAM_NO_ENDPOINTS", …) if none. */
  choose(req: IncomingMessage, attempt: number): H1Upstream;
  maxAttempts?: number;
  /** Last change to the request headers (e.g. the inbound proxy's tether-client-id). */
  requestHeaders?: (headers: OutgoingHttpHeaders) => OutgoingHttpHeaders;
  /** Fails a request whose upstream stays silent this long (504). */
  proxyTimeoutMs?: number;
  clock?: Clock;
}

export interface H1ForwardResult {
  status?: number;
  error?: string;
  /** What went wrong, for the error response and logs. */
  message?: string;
  attempts: number;
  latencyMs?: number;
}

interface ProxyError extends Error {
  statusCode?: number;
  connectedSocket?: boolean;
  code?: string;
}

/** Forwards one HTTP/1 request; resolves when it is over (failures become 502/503/504 responses). */
export function forwardH1(req: IncomingMessage, res: ServerResponse, options: H1ForwardOptions): Promise<H1ForwardResult> {
  return run(req, options, (upstream, onReq) =>
    proxy.web(req, res, { hostname: upstream.hostname, port: upstream.port, proxyTimeout: options.proxyTimeoutMs, onReq }) as Promise<void>,
  ).then((result) => {
    if (result.error) respondError(res, result);
    else result.status ??= res.statusCode;
    return result;
  });
}

/** Forwards an HTTP/1 upgrade (WebSocket): after the upstream's 101 the two sockets are piped. */
export function forwardUpgrade(req: IncomingMessage, socket: Socket, head: Buffer, options: H1ForwardOptions): Promise<H1ForwardResult> {
  socket.on("error", () => {});
  return run(req, options, (upstream, onReq) =>
    proxy.ws(req, socket, head, { hostname: upstream.hostname, port: upstream.port, onReq }) as Promise<void>,
  ).then((result) => {
    if (result.error && !socket.destroyed) {
      const status = result.status ?? 502;
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ntether-error: ${result.error}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    }
    return result;
  });
}

type OnReq = (req: IncomingMessage, opts: http.RequestOptions) => Promise<http.ClientRequest>;

async function run(
  req: IncomingMessage,
  options: H1ForwardOptions,
  send: (upstream: H1Upstream, onReq: OnReq) => Promise<void>,
): Promise<H1ForwardResult> {
  const clock = options.clock ?? systemClock;
  const start = clock.now();
  const result: H1ForwardResult = { attempts: 0 };
  const maxAttempts = options.maxAttempts ?? 3;
  for (;;) {
    result.attempts++;
    let upstream: H1Upstream;
    try {
      upstream = options.choose(req, result.attempts - 1);
    } catch (err) {
      result.error = errorReason(err);
      result.message = errorMessage(err);
      result.status = httpStatusFor(err);
      return result;
    }
    let responded = false;
    const onReq: OnReq = async (incoming, opts) => {
      // http2-proxy drops Host and adds Forwarded; a transparent proxy keeps the client's headers.
      let headers: OutgoingHttpHeaders = { ...(opts.headers as OutgoingHttpHeaders), host: incoming.headers.host };
      if (incoming.headers.forwarded === undefined) delete headers.forwarded;
      else headers.forwarded = incoming.headers.forwarded;
      if (options.requestHeaders) headers = options.requestHeaders(headers);
      const upstreamReq = http.request({ ...opts, headers, agent: upstream.agent });
      const settle = (status: number) => {
        responded = true;
        result.latencyMs = clock.now() - start;
        upstream.done({ ok: status < 500, latencyMs: result.latencyMs });
      };
      upstreamReq.once("response", (r: IncomingMessage) => settle(r.statusCode ?? 0));
      upstreamReq.once("upgrade", (r: IncomingMessage) => settle(r.statusCode ?? 101));
      return upstreamReq;
    };
    try {
      await send(upstream, onReq);
      if (!responded) upstream.cancel();
      return result;
    } catch (e) {
      result.message = errorMessage(e);
      // Our own refusal to connect (e.g. no certificate for a meshed endpoint): not the endpoint's fault.
      if (e instanceof UpstreamError && !e.retryable) {
        upstream.cancel();
        result.error = e.code;
        result.status = httpStatusFor(e);
        return result;
      }
      const err = e as ProxyError;
      // Not connected: no byte of the request was sent, so another endpoint may take it.
      const connectFailed = err.connectedSocket === false && !responded;
      if (connectFailed) upstream.failed();
      else if (!responded) upstream.done({ ok: false, latencyMs: clock.now() - start });
      if (connectFailed && result.attempts < maxAttempts && !req.destroyed) continue;
      result.status = connectFailed ? 502 : (err.statusCode ?? 502);
      result.error = connectFailed
        ? "UPSTREAM_CONNECT_FAILED"
        : err.code === "ETIMEDOUT"
          ? "UPSTREAM_TIMEOUT"
          : err.code === "ECONNRESET" || responded
            ? "UPSTREAM_RESET"
            : "UPSTREAM_PROTOCOL";
      return result;
    }
  }
}

function respondError(res: ServerResponse, result: H1ForwardResult): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = `${result.error}: ${result.message ?? "upstream failed"}\n`;
  res.writeHead(result.status ?? 502, { "content-type": "text/plain; charset=utf-8", "tether-error": result.error! });
  res.end(body);
}

/**
 * Hands a detected socket to an HTTP/1 server. Node's HTTP server normally reads straight from
 * the socket's kernel handle, which would skip the bytes detection read and unshifted back; marking
 * the handle as already consumed makes it read through the stream, replayed bytes first. (Node 20
 * internals: test/proxy/forward-h1.test.ts fails if a Node upgrade changes this.)
 */
export function serveHttp1Connection(server: http.Server, socket: Socket): void {
  const handle = (socket as unknown as { _handle?: { _consumed?: boolean } })._handle;
  if (handle) handle._consumed = true;
  server.emit("connection", socket);
  socket.resume();
}

/** Keep-alive agents per endpoint key; agents of endpoints that left the set are destroyed. */
export class H1AgentPool {
  private readonly agents = new Map<string, http.Agent>();

  constructor(private readonly create: (key: string) => http.Agent = () => new http.Agent({ keepAlive: true })) {}

  agent(key: string): http.Agent {
    let agent = this.agents.get(key);
    if (!agent) {
      agent = this.create(key);
      this.agents.set(key, agent);
    }
    return agent;
  }

  retain(keys: ReadonlySet<string>): void {
    for (const [key, agent] of this.agents) {
      if (keys.has(key)) continue;
      this.agents.delete(key);
      agent.destroy();
    }
  }

  close(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }
}
