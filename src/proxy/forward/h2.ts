/**
 * Forwards one HTTP/2 request (a gRPC call or any HTTP/2 exchange) from a downstream stream to an
 * upstream stream chosen per request, frame by frame: headers, data and trailers pass unchanged but
 * for hop-by-hop headers; a stream's bytes are credited back to its sender only once written on
 * the other side (backpressure through both flow-control windows); a reset on either side resets
 * the other; `grpc-timeout` is enforced here too. Which endpoint, and how to reach it, is the
 * caller's business, through `choose`.
 *
 * Retries: a connection that fails before anything was sent moves the request to another endpoint;
 * so does a stream the upstream refused unprocessed (REFUSED_STREAM, or above a GOAWAY's last
 * stream: e.g. a pod draining), as long as the request is small enough to have been kept.
 */
import type { Clock, TimerHandle } from "../../core/clock.js";
import { errorMessage } from "../../core/errors.js";
import { errorReason, httpStatusFor, UpstreamError } from "./errors.js";
import { GrpcStatus, grpcStatusOf, isGrpc, parseGrpcTimeout, trailersOnly } from "./grpc.js";
import { H2Connection, type H2Stream, type ResetCause, type StreamHandler } from "../h2/connection.js";
import { fieldValue, forwardableFields, type HeaderFields } from "../h2/fields.js";
import { ErrorCode } from "../h2/frames.js";

/** Request bytes kept for a retry after the upstream refused the stream; larger requests are not retried. */
export const RETRY_BUFFER_LIMIT = 64 * 1024;

/** One attempt's endpoint: its pooled connection, and where the outcome goes (a balancer pick). */
export interface H2Upstream {
  /** The connection: at once when pooled, else a promise; rejects with an UpstreamError (retryable when nothing was sent). */
  connection(): H2Connection | Promise<H2Connection>;
  done(outcome: { ok: boolean; latencyMs: number }): void;
  failed(): void;
  cancel(): void;
}

export interface H2ForwardOptions {
  /**
   * The endpoint for attempt `attempt` (0-based). Throw UpstreamError("UPSTREAM_NO_ENDPOINTS", …)
   * when there is none.
   */
  choose(fields: HeaderFields, attempt: number): H2Upstream;
  /** Attempts in total, counting the first (default 3). */
  maxAttempts?: number;
  /** Last change to the request headers (e.g. the inbound proxy's tether-client-id). */
  requestFields?(fields: HeaderFields): HeaderFields;
  clock: Clock;
  /** Called once, when the downstream stream is over. */
  finished(result: H2ForwardResult): void;
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
  /** Request start to the end of the exchange, ms. */
  durationMs: number;
}

/** Starts forwarding a request stream (the connection already refused malformed ones, RFC 9113 §8.1.1). */
export function forwardH2(downstream: H2Stream, fields: HeaderFields, endStream: boolean, options: H2ForwardOptions): void {
  new ForwardedCall(downstream, fields, endStream, options).start();
}

/**
 * The proxy's own answer on a stream no response has started on: gRPC gets a trailers-only
 * response with grpc-status, HTTP a status with a `tether-error` header naming the stable code.
 */
export function answer(
  stream: H2Stream,
  grpc: boolean,
  o: { grpcStatus: number; httpStatus: number; code: string; message: string },
): { status: number; grpcStatus?: number } {
  if (grpc) {
    stream.sendHeaders(trailersOnly(o.grpcStatus, o.message, ["tether-error", o.code]), true);
  } else {
    stream.sendHeaders([":status", String(o.httpStatus), "content-type", "text/plain; charset=utf-8", "tether-error", o.code], false);
    stream.sendData(Buffer.from(`${o.message}\n`), true);
  }
  // The request body, if any is still coming, is not needed: ask the client to stop sending it.
  if (!stream.remoteEnded && stream.queuedBytes === 0) stream.reset(ErrorCode.NO_ERROR);
  return grpc ? { status: 200, grpcStatus: o.grpcStatus } : { status: o.httpStatus };
}

class ForwardedCall {
  private readonly startedAt: number;
  private readonly grpc: boolean;
  private readonly requestFields: HeaderFields;
  private readonly result: H2ForwardResult = { attempts: 0, durationMs: 0 };
  private readonly maxAttempts: number;
  /** Request bytes received: kept until an upstream stream exists, and while a retry is possible. */
  private chunks: Buffer[] = [];
  private bytes = 0;
  /** Received bytes not yet credited back to the client (no upstream stream to pass them to yet). */
  private uncredited = 0;
  private requestTrailers: HeaderFields | undefined;
  private requestEnded: boolean;
  private retainable = true;
  private upstream: H2Stream | undefined;
  private pick: H2Upstream | undefined;
  private responseStarted = false;
  /** The proxy answered (error or deadline): nothing more from upstream reaches the client. */
  private answered = false;
  private settled = false;
  private deadline: TimerHandle | undefined;
  private readonly down: StreamHandler;
  private readonly up: StreamHandler;

  constructor(
    private readonly downstream: H2Stream,
    fields: HeaderFields,
    endStream: boolean,
    private readonly options: H2ForwardOptions,
  ) {
    this.grpc = isGrpc(fields);
    const forwardable = forwardableFields(fields);
    this.requestFields = options.requestFields ? options.requestFields(forwardable) : forwardable;
    this.maxAttempts = options.maxAttempts ?? 3;
    this.startedAt = options.clock.now();
    this.requestEnded = endStream;
    this.down = new RequestSide(this);
    this.up = new ResponseSide(this);
  }

  start(): void {
    this.downstream.handler = this.down;
    const timeoutMs = this.grpc ? parseGrpcTimeout(fieldValue(this.requestFields, "grpc-timeout")) : undefined;
    if (timeoutMs !== undefined) this.deadline = this.options.clock.setTimeout(() => this.onDeadline(), timeoutMs);
    this.attempt();
  }

  // ---- choosing and opening the upstream stream ----

  private attempt(): void {
    if (this.downstream.closed || this.answered) return;
    this.result.attempts++;
    let pick: H2Upstream;
    try {
      pick = this.options.choose(this.requestFields, this.result.attempts - 1);
    } catch (err) {
      return this.fail(err);
    }
    this.connect(pick);
  }

  private connect(pick: H2Upstream): void {
    let got: H2Connection | Promise<H2Connection>;
    try {
      got = pick.connection();
    } catch (err) {
      return this.attemptFailed(pick, err);
    }
    if (got instanceof H2Connection) return this.open(pick, got, false);
    got.then(
      (connection) => this.open(pick, connection, true),
      (err: unknown) => this.attemptFailed(pick, err),
    );
  }

  private attemptFailed(pick: H2Upstream, err: unknown): void {
    const failure =
      err instanceof UpstreamError
        ? err
        : new UpstreamError("UPSTREAM_CONNECT_FAILED", `upstream connection unusable: ${errorMessage(err)}`, true, { cause: err });
    // Only a failed connection is the endpoint's fault (backoff); e.g. having no certificate of our own is not.
    if (failure.retryable) pick.failed();
    else pick.cancel();
    if (this.downstream.closed || this.answered) return;
    if (failure.retryable && this.result.attempts < this.maxAttempts) return this.attempt();
    this.fail(failure);
  }

  private open(pick: H2Upstream, connection: H2Connection, waited: boolean): void {
    if (this.downstream.closed || this.answered) return pick.cancel();
    if (!connection.usable) {
      return this.attemptFailed(pick, new UpstreamError("UPSTREAM_CONNECT_FAILED", "the upstream connection closed before the request was sent", true));
    }
    if (waited && !connection.hasCapacity && connection.openStreams > 0) {
      // Requests that waited for the same new connection can outnumber the streams its server
      // allows: the rest ask again, and the pool opens another connection beside this one.
      return this.connect(pick);
    }
    this.pick = pick;
    const bodyless = this.requestEnded && this.bytes === 0 && !this.requestTrailers;
    const upstream = connection.request(this.requestFields, bodyless, this.up);
    this.upstream = upstream;
    if (!bodyless) {
      const last = this.chunks.length - 1;
      this.chunks.forEach((chunk, i) => upstream.sendData(chunk, i === last && this.requestEnded && !this.requestTrailers));
      if (this.requestTrailers) upstream.sendTrailers(this.requestTrailers);
      else if (this.requestEnded && this.chunks.length === 0) upstream.sendData(Buffer.alloc(0), true);
    }
    // A body over the retry limit that arrived while connecting is not kept for a retry either.
    if (!this.retainable || this.bytes > RETRY_BUFFER_LIMIT) this.stopRetaining();
    const n = this.uncredited;
    this.uncredited = 0;
    connection.creditWhenWritable(this.downstream, n, upstream);
  }

  // ---- the request, client to upstream ----

  onRequestData(chunk: Buffer, end: boolean): void {
    const n = chunk.length;
    if (end) this.requestEnded = true;
    if (this.answered) return this.downstream.consumed(n);
    const upstream = this.upstream;
    if (!upstream || this.retainable) {
      this.chunks.push(chunk);
      this.bytes += n;
      if (upstream && this.bytes > RETRY_BUFFER_LIMIT) this.stopRetaining();
    }
    if (!upstream) {
      this.uncredited += n;
      return;
    }
    upstream.sendData(chunk, end);
    upstream.connection.creditWhenWritable(this.downstream, n, upstream);
  }

  onRequestTrailers(fields: HeaderFields): void {
    this.requestEnded = true;
    this.requestTrailers = forwardableFields(fields);
    if (this.upstream && !this.answered) this.upstream.sendTrailers(this.requestTrailers);
  }

  private stopRetaining(): void {
    this.retainable = false;
    this.chunks = [];
  }

  onClientReset(): void {
    // The client cancelled (RST_STREAM) or went away: cancel upstream so the server stops work.
    if (this.upstream && !this.upstream.closed) {
      this.result.error ??= "CLIENT_CANCELLED";
      this.upstream.reset(ErrorCode.CANCEL);
    }
  }

  // ---- the response, upstream to client ----

  onResponseHeaders(fields: HeaderFields, end: boolean): void {
    const status = fields[0] === ":status" ? fields[1]! : "";
    if (status.length === 3 && status[0] === "1") {
      if (!this.answered) this.downstream.sendHeaders(forwardableFields(fields), false); // informational
      return;
    }
    this.responseStarted = true;
    if (this.retainable) this.stopRetaining();
    const grpcStatus = grpcStatusOf(fields);
    this.settle(Number(status) < 500 && grpcStatus !== GrpcStatus.UNAVAILABLE);
    if (this.answered) return;
    this.result.status = Number(status);
    if (grpcStatus !== undefined) this.result.grpcStatus = grpcStatus;
    this.downstream.sendHeaders(forwardableFields(fields), end);
  }

  onResponseData(chunk: Buffer, end: boolean): void {
    const upstream = this.upstream!;
    const n = chunk.length;
    if (this.answered) return upstream.consumed(n);
    this.downstream.sendData(chunk, end);
    this.downstream.connection.creditWhenWritable(upstream, n, this.downstream);
  }

  onResponseTrailers(fields: HeaderFields): void {
    const grpcStatus = grpcStatusOf(fields);
    if (this.answered) return;
    if (grpcStatus !== undefined) this.result.grpcStatus = grpcStatus;
    this.downstream.sendTrailers(forwardableFields(fields));
  }

  onUpstreamReset(code: number, cause: ResetCause): void {
    if (this.downstream.closed || this.answered) return this.settle(false);
    if (cause === "refused" && !this.responseStarted && this.retainable && this.result.attempts < this.maxAttempts) {
      // The upstream never processed it (e.g. it is draining): the same request goes elsewhere.
      this.pick?.cancel();
      this.settled = false;
      this.pick = undefined;
      this.upstream = undefined;
      return this.attempt();
    }
    this.settle(false);
    if (cause === "malformed") {
      // We reset it: the upstream's response broke HTTP/2 (§8.1.1), and is not forwarded.
      if (!this.responseStarted) return this.fail(new UpstreamError("UPSTREAM_PROTOCOL", "the upstream sent a malformed HTTP/2 response", false));
      this.result.error = "UPSTREAM_PROTOCOL";
      return this.downstream.reset(ErrorCode.INTERNAL_ERROR);
    }
    if (!this.responseStarted && cause === "peer") {
      // The upstream reset it: the client gets the same code, which says e.g. whether it was processed.
      this.result.error = "UPSTREAM_RESET";
      return this.downstream.reset(code !== ErrorCode.NO_ERROR ? code : ErrorCode.INTERNAL_ERROR);
    }
    if (!this.responseStarted) {
      const why = cause === "lost" ? "the upstream connection was lost" : cause === "refused" ? "the upstream refused the request" : `the upstream reset the stream (code ${code})`;
      return this.fail(new UpstreamError(cause === "lost" ? "UPSTREAM_CONNECTION_LOST" : "UPSTREAM_RESET", `${why} before responding`, false));
    }
    if (code === ErrorCode.NO_ERROR && this.downstream.localEnded) {
      // A complete response, then "stop sending the request body": tell the client the same.
      return this.downstream.reset(ErrorCode.NO_ERROR);
    }
    this.result.error = "UPSTREAM_RESET";
    this.downstream.reset(code !== ErrorCode.NO_ERROR ? code : ErrorCode.INTERNAL_ERROR);
  }

  /** Tells the balancer once: at the final response headers, or when the stream ends without any. */
  private settle(ok: boolean): void {
    if (this.settled || !this.pick) return;
    this.settled = true;
    this.result.latencyMs = this.options.clock.now() - this.startedAt;
    this.pick.done({ ok, latencyMs: this.result.latencyMs });
  }

  // ---- the proxy's own answers ----

  private onDeadline(): void {
    this.deadline = undefined;
    if (this.downstream.closed) return;
    this.result.error = "DEADLINE_EXCEEDED";
    this.settle(false);
    if (this.upstream && !this.upstream.closed) this.upstream.reset(ErrorCode.CANCEL);
    if (!this.responseStarted) {
      return this.respond({ grpcStatus: GrpcStatus.DEADLINE_EXCEEDED, httpStatus: 504, code: "DEADLINE_EXCEEDED", message: "deadline exceeded in tether proxy" });
    }
    // The response already started: end it with DEADLINE_EXCEEDED in the trailers.
    this.answered = true;
    this.result.grpcStatus = GrpcStatus.DEADLINE_EXCEEDED;
    this.downstream.sendTrailers(["grpc-status", String(GrpcStatus.DEADLINE_EXCEEDED), "grpc-message", "deadline exceeded in tether proxy"]);
  }

  private fail(err: unknown): void {
    const code = errorReason(err);
    this.result.error = code;
    this.respond({ grpcStatus: GrpcStatus.UNAVAILABLE, httpStatus: httpStatusFor(err), code, message: errorMessage(err) });
  }

  private respond(o: { grpcStatus: number; httpStatus: number; code: string; message: string }): void {
    this.answered = true;
    if (this.downstream.closed) return;
    if (this.responseStarted) return this.downstream.reset(ErrorCode.INTERNAL_ERROR);
    // Request bytes still held are dropped; the client may send them again.
    if (this.uncredited > 0) this.downstream.consumed(this.uncredited);
    this.uncredited = 0;
    this.chunks = [];
    Object.assign(this.result, answer(this.downstream, this.grpc, o));
  }

  finish(): void {
    if (this.deadline !== undefined) this.options.clock.clearTimeout(this.deadline);
    // The client's stream is over before the response was: cancel upstream so the server stops work.
    if (this.upstream && !this.upstream.closed && !this.upstream.remoteEnded) {
      this.result.error ??= "CLIENT_CANCELLED";
      this.upstream.reset(ErrorCode.CANCEL);
    }
    if (!this.settled) this.pick?.cancel();
    this.settled = true;
    this.result.durationMs = this.options.clock.now() - this.startedAt;
    this.options.finished(this.result);
  }
}

/** The client's stream, as the call sees it (a class, not closures: one small object per request). */
class RequestSide implements StreamHandler {
  constructor(private readonly call: ForwardedCall) {}
  headers(): void {}
  data(chunk: Buffer, end: boolean): void {
    this.call.onRequestData(chunk, end);
  }
  trailers(fields: HeaderFields): void {
    this.call.onRequestTrailers(fields);
  }
  reset(): void {
    this.call.onClientReset();
  }
  closed(): void {
    this.call.finish();
  }
}

/** The upstream stream, as the call sees it. */
class ResponseSide implements StreamHandler {
  constructor(private readonly call: ForwardedCall) {}
  headers(fields: HeaderFields, end: boolean): void {
    this.call.onResponseHeaders(fields, end);
  }
  data(chunk: Buffer, end: boolean): void {
    this.call.onResponseData(chunk, end);
  }
  trailers(fields: HeaderFields): void {
    this.call.onResponseTrailers(fields);
  }
  reset(code: number, cause: ResetCause): void {
    this.call.onUpstreamReset(code, cause);
  }
  closed(): void {}
}
