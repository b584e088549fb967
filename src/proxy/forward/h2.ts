/**
 * Forwards one incoming HTTP/2 stream (a gRPC call or an HTTP/2 request) to an upstream session
 * chosen per request: headers, data and trailers pass unchanged except hop-by-hop headers;
 * backpressure comes from piping (HTTP/2 flow control on both sides); a reset on either side
 * resets the other; `grpc-timeout` is enforced here too, so a stuck upstream cannot hold the
 * client past its deadline. Which endpoint, and how to connect to it (plaintext or mTLS), is the
 * caller's business, through `choose`.
 */
import http2, {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import { systemClock, type Clock } from "../../identity/clock.js";
import { errorMessage } from "../../identity/errors.js";
import { errorReason, httpStatusFor, UpstreamError } from "./errors.js";
import { forwardableHeaders } from "./headers.js";
import { GrpcStatus, grpcStatusOf, isGrpc, parseGrpcTimeout, trailersOnly } from "./grpc.js";

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_INTERNAL_ERROR, NGHTTP2_FLAG_END_STREAM } = http2.constants;

/** One attempt's endpoint: its pooled session, and where the outcome goes (a balancer pick). */
export interface Upstream {
  /** Rejects with a retryable UpstreamError when the connection fails before anything was sent. */
  session(): Promise<ClientHttp2Session>;
  done(outcome: { ok: boolean; latencyMs: number }): void;
  failed(): void;
  cancel(): void;
}

export interface H2ForwardOptions {
  /**
   * Chooses the endpoint for attempt `attempt` (0-based; a new attempt follows a retryable
   * connect failure). Throw UpstreamError("UPSTREAM_NO_ENDPOINTS", …) when there is none.
   */
  choose(headers: IncomingHttpHeaders, attempt: number): Upstream;
  /** Attempts in total, counting the first (default 3). */
  maxAttempts?: number;
  /** Last change to the request headers (e.g. the inbound proxy's tether-client-id). */
  requestHeaders?: (headers: OutgoingHttpHeaders) => OutgoingHttpHeaders;
  clock?: Clock;
}

export interface H2ForwardResult {
  /** HTTP status sent to the client (undefined if the stream was reset before any response). */
  status?: number;
  grpcStatus?: number;
  /** Stable code when the proxy produced the answer or a reset (UPSTREAM_*, DEADLINE_EXCEEDED, CLIENT_CANCELLED). */
  error?: string;
  attempts: number;
  /** Request start to response headers (what the balancer saw), ms. */
  latencyMs?: number;
}

/**
 * Forwards `stream` and resolves when it is over (never rejects: failures become responses or
 * resets, and the result says which).
 */
export async function forwardH2(
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  options: H2ForwardOptions,
): Promise<H2ForwardResult> {
  const clock = options.clock ?? systemClock;
  const start = clock.now();
  const grpc = isGrpc(headers);
  const result: H2ForwardResult = { attempts: 0 };
  stream.on("error", () => {}); // a reset client surfaces through 'close'; nothing to crash on
  // Request trailers may arrive while the upstream session is still being chosen.
  let requestTrailers: IncomingHttpHeaders | undefined;
  stream.once("trailers", (t: IncomingHttpHeaders) => (requestTrailers = t));
  const closed = new Promise<void>((resolve) => (stream.closed ? resolve() : stream.once("close", () => resolve())));

  const timeoutMs = grpc ? parseGrpcTimeout(headers["grpc-timeout"]) : undefined;
  const respondDeadline = () => {
    result.error = "DEADLINE_EXCEEDED";
    respondError(stream, grpc, GrpcStatus.DEADLINE_EXCEEDED, 504, "DEADLINE_EXCEEDED", "deadline exceeded in tether proxy", result);
  };
  // Before an upstream stream exists the deadline only answers the client; afterwards it also cancels upstream.
  let onDeadline: (() => void) | undefined;
  const deadline =
    timeoutMs === undefined ? undefined : clock.setTimeout(() => (onDeadline ?? respondDeadline)(), timeoutMs);
  stream.once("close", () => {
    if (deadline) clock.clearTimeout(deadline);
  });

  // Open the upstream stream, moving to another endpoint while failures are retryable (nothing
  // of the request has been sent at any of these points).
  let out = forwardableHeaders(headers);
  if (options.requestHeaders) out = options.requestHeaders(out);
  let chosen: Upstream | undefined;
  let req: ClientHttp2Stream | undefined;
  const maxAttempts = options.maxAttempts ?? 3;
  while (!req) {
    if (stream.closed || result.error) {
      await closed;
      return result;
    }
    result.attempts++;
    let upstream: Upstream;
    try {
      upstream = options.choose(headers, result.attempts - 1);
    } catch (err) {
      fail(stream, grpc, err, result);
      await closed;
      return result;
    }
    let failure: unknown;
    try {
      const session = await upstream.session();
      if (stream.closed || result.error) {
        upstream.cancel();
        continue; // the loop head answers
      }
      req = session.request(out, { waitForTrailers: true });
      chosen = upstream;
      break;
    } catch (err) {
      // session.request throws when the session began closing after the pool handed it out.
      failure = err instanceof UpstreamError ? err : new UpstreamError("UPSTREAM_CONNECT_FAILED", `upstream session unusable: ${errorMessage(err)}`, true, { cause: err });
    }
    const retryable = failure instanceof UpstreamError && failure.retryable;
    // Only a failed connection is the endpoint's fault (backoff); e.g. having no certificate of our own is not.
    if (retryable) upstream.failed();
    else upstream.cancel();
    if (retryable && result.attempts < maxAttempts && !result.error) continue;
    if (!result.error) fail(stream, grpc, failure, result);
    await closed;
    return result;
  }
  const upstreamChosen = chosen!;
  req.on("error", () => {}); // resets surface through 'close' with rstCode

  req.on("wantTrailers", () => req.sendTrailers(requestTrailers ? forwardableHeaders(requestTrailers) : {}));
  stream.pipe(req);

  let settled = false;
  let overrideTrailers: OutgoingHttpHeaders | undefined;
  let responseTrailers: IncomingHttpHeaders | undefined;
  /** Tells the balancer once: at the response headers, or when the stream ends without any. */
  const settle = (ok: boolean) => {
    if (settled) return;
    settled = true;
    result.latencyMs = clock.now() - start;
    upstreamChosen.done({ ok, latencyMs: result.latencyMs });
  };

  req.once("response", (h: IncomingHttpHeaders, flags: number) => {
    const status = Number(h[":status"]);
    const grpcStatus = grpcStatusOf(h);
    settle(status < 500 && grpcStatus !== GrpcStatus.UNAVAILABLE);
    if (stream.closed || stream.headersSent) return;
    result.status = status;
    result.grpcStatus = grpcStatus;
    if (flags & NGHTTP2_FLAG_END_STREAM) {
      stream.respond(forwardableHeaders(h), { endStream: true });
      return;
    }
    stream.respond(forwardableHeaders(h), { waitForTrailers: true });
    req.pipe(stream);
  });
  req.once("trailers", (t: IncomingHttpHeaders) => {
    responseTrailers = t;
    result.grpcStatus = grpcStatusOf(t) ?? result.grpcStatus;
  });
  stream.on("wantTrailers", () => {
    stream.sendTrailers(overrideTrailers ?? (responseTrailers ? forwardableHeaders(responseTrailers) : {}));
  });

  onDeadline = () => {
    req.close(NGHTTP2_CANCEL);
    settle(false);
    if (!stream.headersSent) return respondDeadline();
    // Response already started: end it with a DEADLINE_EXCEEDED status in the trailers.
    result.error = "DEADLINE_EXCEEDED";
    result.grpcStatus = GrpcStatus.DEADLINE_EXCEEDED;
    overrideTrailers = { "grpc-status": String(GrpcStatus.DEADLINE_EXCEEDED), "grpc-message": "deadline exceeded in tether proxy" };
    req.unpipe(stream);
    if (!stream.writableEnded) stream.end();
  };

  req.once("close", () => {
    const code = req.rstCode ?? NGHTTP2_NO_ERROR;
    settle(false);
    if (stream.closed || result.error === "DEADLINE_EXCEEDED") return;
    if (code !== NGHTTP2_NO_ERROR || !req.readableEnded) {
      // The upstream reset (or vanished): tell the client the same way.
      result.error = "UPSTREAM_RESET";
      stream.close(code !== NGHTTP2_NO_ERROR ? code : NGHTTP2_INTERNAL_ERROR);
    }
  });
  stream.once("close", () => {
    if (!req.closed && !req.readableEnded) {
      // The client cancelled (RST_STREAM) or went away: cancel upstream so the server stops work.
      result.error ??= "CLIENT_CANCELLED";
      req.close(NGHTTP2_CANCEL);
    }
  });

  await closed;
  return result;
}

function fail(stream: ServerHttp2Stream, grpc: boolean, err: unknown, result: H2ForwardResult): void {
  const code = errorReason(err);
  result.error = code;
  respondError(stream, grpc, GrpcStatus.UNAVAILABLE, httpStatusFor(err), code, errorMessage(err), result);
}

/**
 * The proxy's own answer: gRPC gets a trailers-only response with grpc-status, HTTP gets a status
 * with a `tether-error` header naming the stable code. A stream already answering is reset.
 */
function respondError(
  stream: ServerHttp2Stream,
  grpc: boolean,
  grpcStatus: number,
  httpStatus: number,
  code: string,
  message: string,
  result: H2ForwardResult,
): void {
  if (stream.closed || stream.destroyed) return;
  if (stream.headersSent) {
    stream.close(NGHTTP2_INTERNAL_ERROR);
    return;
  }
  stream.resume(); // discard any request body still arriving
  if (grpc) {
    result.status = 200;
    result.grpcStatus = grpcStatus;
    stream.respond(trailersOnly(grpcStatus, message, { "tether-error": code }), { endStream: true });
    return;
  }
  result.status = httpStatus;
  stream.respond({ ":status": httpStatus, "content-type": "text/plain; charset=utf-8", "tether-error": code });
  stream.end(`${message}\n`);
}
