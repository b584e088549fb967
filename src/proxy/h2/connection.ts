/**
 * One HTTP/2 connection (RFC 9113) over any byte stream (TCP or TLS socket), server or client role,
 * written for a proxy: streams are small objects with a handler, not Node streams, so a forwarded
 * request costs a few frame parses and writes instead of two Duplex streams. What the proxy needs
 * of the protocol is here: SETTINGS, PING, GOAWAY, both levels of flow control (the receive
 * window is credited back only when the caller says the bytes were passed on, which is how
 * backpressure crosses the proxy), header blocks with CONTINUATION, and the limits that keep a
 * hostile peer from exhausting the process (concurrent streams, header block size, rapid reset,
 * control-frame floods). Outgoing frames of one tick go out in one socket write.
 */
import type { Duplex } from "node:stream";
import {
  CLIENT_PREFACE,
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW,
  ErrorCode,
  Flags,
  FrameError,
  FrameReader,
  FrameType,
  MAX_WINDOW,
  Setting,
  frame,
  FrameWriter,
  goawayFrame,
  parseSettings,
  rstStreamFrame,
  settingsFrame,
  unpad,
  windowUpdateFrame,
  type Frame,
} from "./frames.js";
import { fieldValue } from "./fields.js";
import { HpackDecoder, HpackEncoder, HpackError, type HeaderFields } from "./hpack.js";
import { declaredContentLength, requestProblem, responseProblem, trailersProblem } from "./message.js";

export interface H2Limits {
  /** Streams the peer may have open on a server connection; more are refused (REFUSED_STREAM). */
  maxConcurrentStreams: number;
  /** Decoded size of one header list (RFC 9113 SETTINGS_MAX_HEADER_LIST_SIZE). */
  maxHeaderListSize: number;
  /** Encoded bytes of one header block across HEADERS and CONTINUATION (CONTINUATION flood bound). */
  maxHeaderBlockBytes: number;
  /** Receive window per stream, advertised in SETTINGS_INITIAL_WINDOW_SIZE. */
  initialWindowSize: number;
  /** Receive window of the whole connection. */
  connectionWindowSize: number;
  /** Streams refused (over the concurrency limit) before the connection is closed. */
  maxRefusedStreams: number;
  /** Streams the peer may reset per `floodWindowMs` (rapid reset, CVE-2023-44487). */
  maxResetsPerWindow: number;
  /**
   * PING, SETTINGS, PRIORITY, empty DATA frames, WINDOW_UPDATEs that return no window we used, and
   * frames on streams the peer reset, that the peer may send per `floodWindowMs`.
   */
  maxControlFramesPerWindow: number;
  floodWindowMs: number;
  /**
   * Replies (SETTINGS and PING ACKs, RST_STREAM) we may queue while the socket is backed up: a peer
   * that provokes them and does not read is cut before they pile up in memory.
   */
  maxPendingReplies: number;
}

export const DEFAULT_H2_LIMITS: H2Limits = {
  maxConcurrentStreams: 256,
  maxHeaderListSize: 64 * 1024,
  maxHeaderBlockBytes: 80 * 1024,
  initialWindowSize: 1024 * 1024,
  connectionWindowSize: 16 * 1024 * 1024,
  maxRefusedStreams: 100,
  maxResetsPerWindow: 200,
  maxControlFramesPerWindow: 1000,
  floodWindowMs: 1000,
  maxPendingReplies: 1000,
};

/** How a stream ended, as far as frames the peer sends on it later are concerned (RFC 9113 §5.1). */
type ClosedHow = "ended" | "reset-by-us" | "reset-by-peer";

/** Closed streams remembered per connection to answer late frames on them; older ones are ignored. */
const CLOSED_STREAMS_KEPT = 128;

/** What happens on one stream, as the peer sends it. */
export interface StreamHandler {
  /** Response headers (client role; may be 1xx informational first) or, on the server role, never (see onStream). */
  headers(fields: HeaderFields, endStream: boolean): void;
  data(chunk: Buffer, endStream: boolean): void;
  trailers(fields: HeaderFields): void;
  /**
   * The stream ended abnormally, not by our own reset: the peer reset it (or broke the protocol on
   * it), the connection was lost, or (client role) the peer refused it unprocessed (REFUSED_STREAM
   * or above a GOAWAY's last stream id), in which case it is safe to send it elsewhere, or we reset
   * it because the peer's message on it was malformed (RFC 9113 §8.1.1).
   */
  reset(code: number, cause: ResetCause): void;
  /** The stream is over (both sides ended, or reset either way); called last. */
  closed(): void;
}

export type ResetCause = "peer" | "refused" | "lost" | "malformed";

const IGNORE: StreamHandler = { headers() {}, data() {}, trailers() {}, reset() {}, closed() {} };

export class H2Stream {
  handler: StreamHandler = IGNORE;
  /** We sent END_STREAM (or reset). */
  localEnded = false;
  /** The peer sent END_STREAM (or reset). */
  remoteEnded = false;
  closed = false;
  /** Client role: final (non-1xx) response headers arrived; server role: request headers arrived. */
  headersReceived = false;
  /** Client role: the request was HEAD, so the response has no content whatever its content-length says. */
  headRequest = false;
  sendWindow: number;
  /** What the peer may still send before we credit more. */
  recvWindow: number;
  /** Received bytes passed on but not yet credited back to the peer. */
  unacked = 0;
  /** DATA frames we sent that no WINDOW_UPDATE answered yet (each may be credited by one); the first update is free. */
  unansweredData = 1;
  /** The content-length of the message we receive (RFC 9113 §8.1.1), and the DATA received so far. */
  expectedLength: number | undefined;
  receivedLength = 0;
  readonly queue: Buffer[] = [];
  queuedBytes = 0;
  queuedEnd = false;
  queuedTrailers: HeaderFields | undefined;
  /** Credits owed to streams of other connections once this queue is written: [stream, n, …] (see creditWhenWritable). */
  owed: Array<H2Stream | number> | undefined;

  constructor(
    readonly id: number,
    readonly connection: H2Connection,
    sendWindow: number,
    recvWindow: number,
  ) {
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  sendHeaders(fields: HeaderFields, endStream: boolean): void {
    this.connection.sendHeaders(this, fields, endStream);
  }

  sendData(chunk: Buffer, endStream: boolean): void {
    this.connection.sendData(this, chunk, endStream);
  }

  /** Ends the stream with trailers, after any data still waiting for window. */
  sendTrailers(fields: HeaderFields): void {
    this.connection.sendTrailers(this, fields);
  }

  reset(code: number): void {
    this.connection.resetStream(this, code);
  }

  /** `n` received bytes were passed on: the peer may send that many more. */
  consumed(n: number): void {
    this.connection.credit(this, n);
  }
}

export interface ConnectionEvents {
  /** Server role: a new request stream. Set `stream.handler` synchronously. */
  stream?(stream: H2Stream, fields: HeaderFields, endStream: boolean): void;
  /** Client role: the peer's first SETTINGS arrived (the connection is usable). */
  ready?(): void;
  /** The peer sent GOAWAY: no new streams here. */
  goaway?(lastStreamId: number, code: number): void;
  /** Malformed or abusive input from the peer (for metrics; the connection handles it). */
  protocolError?(kind: string, message: string): void;
  /** The connection is gone; every stream has been told. */
  close?(): void;
  /** The number of open streams changed (pool accounting, drain). */
  streamCountChanged?(open: number): void;
}

export interface ConnectionOptions {
  role: "server" | "client";
  limits?: Partial<H2Limits>;
  events: ConnectionEvents;
  /** Time source for the flood counters. */
  now?: () => number;
}

type CountedKind = "resets" | "control";

export class H2Connection {
  readonly role: "server" | "client";
  private readonly limits: H2Limits;
  private readonly events: ConnectionEvents;
  private readonly now: () => number;
  private readonly reader: FrameReader;
  private readonly decoder: HpackDecoder;
  private readonly encoder = new HpackEncoder();
  private readonly streams = new Map<number, H2Stream>();
  /** Streams with data waiting for flow-control window. */
  private readonly blocked = new Set<H2Stream>();
  private prefaceLeft: number;
  private readonly out = new FrameWriter();
  private flushScheduled = false;
  /** Credits owed to streams of other connections once this socket drains: [stream, bytes, …]. */
  private afterDrain: Array<H2Stream | number> = [];

  private peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  private peerMaxConcurrentStreams = Infinity;
  private connSendWindow = DEFAULT_WINDOW;
  private connRecvWindow = DEFAULT_WINDOW;
  private connUnacked = 0;
  /** DATA frames we sent on this connection that no connection-level WINDOW_UPDATE answered yet. */
  private connUnansweredData = 0;
  /** Replies queued since the socket last drained, while it is backed up. */
  private pendingReplies = 0;
  /** Recently closed streams, oldest first; every stream above `forgottenBelow` opened so far is open or in here. */
  private readonly closedStreams = new Map<number, ClosedHow>();
  private forgottenBelow = 0;
  /** Highest stream id the peer opened (server role) or we opened (client role). */
  private lastPeerStreamId = 0;
  private nextStreamId = 1;
  private continuation: { streamId: number; flags: number; chunks: Buffer[]; size: number; selfDependent: boolean } | undefined;
  private refusedStreams = 0;
  private readonly counters: Record<CountedKind, { start: number; count: number }> = {
    resets: { start: 0, count: 0 },
    control: { start: 0, count: 0 },
  };
  private settingsReceived = false;
  /** We sent GOAWAY: no new streams accepted (server) or opened (client). */
  private goingAway = false;
  /** The peer sent GOAWAY. */
  private peerGoingAway = false;
  private closedFlag = false;
  /** The peer ended its side of the socket (it can still read). */
  private peerEnded = false;

  constructor(
    readonly socket: Duplex,
    options: ConnectionOptions,
  ) {
    this.role = options.role;
    this.limits = { ...DEFAULT_H2_LIMITS, ...options.limits };
    this.events = options.events;
    this.now = options.now ?? Date.now;
    this.reader = new FrameReader(DEFAULT_MAX_FRAME_SIZE);
    this.decoder = new HpackDecoder({ maxHeaderListSize: this.limits.maxHeaderListSize });
    this.prefaceLeft = this.role === "server" ? CLIENT_PREFACE.length : 0;
    socket.on("data", (chunk: Buffer) => this.onBytes(chunk));
    socket.on("drain", () => this.onDrain());
    socket.once("close", () => this.onSocketClose());
    socket.on("error", () => {});
    socket.once("end", () => {
      // The peer sends nothing more: no new streams; answer what is open, then end our side.
      this.goingAway = true;
      this.peerEnded = true;
      this.dropBlocked();
      this.endIfIdle();
    });

    const settings: Array<[number, number]> = [
      [Setting.INITIAL_WINDOW_SIZE, this.limits.initialWindowSize],
      [Setting.MAX_HEADER_LIST_SIZE, this.limits.maxHeaderListSize],
    ];
    if (this.role === "server") settings.push([Setting.MAX_CONCURRENT_STREAMS, this.limits.maxConcurrentStreams]);
    else settings.push([Setting.ENABLE_PUSH, 0]);
    if (this.role === "client") this.write(CLIENT_PREFACE);
    this.write(settingsFrame(settings));
    const extra = this.limits.connectionWindowSize - DEFAULT_WINDOW;
    if (extra > 0) {
      this.connRecvWindow += extra;
      this.write(windowUpdateFrame(0, extra));
    }
    socket.resume();
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Whether a new stream may be opened here (client role). */
  get usable(): boolean {
    return !this.closedFlag && !this.goingAway && !this.peerGoingAway && this.settingsReceived;
  }

  get openStreams(): number {
    return this.streams.size;
  }

  /** Whether the peer's concurrency limit leaves room for another stream. */
  get hasCapacity(): boolean {
    return this.streams.size < this.peerMaxConcurrentStreams;
  }

  /** Client role: opens a stream with request headers. The caller checks `usable` and `hasCapacity`. */
  request(fields: HeaderFields, endStream: boolean, handler: StreamHandler): H2Stream {
    if (this.role !== "client") throw new Error("request() is for client connections");
    const stream = new H2Stream(this.nextStreamId, this, this.peerInitialWindow, this.limits.initialWindowSize);
    this.nextStreamId += 2;
    stream.handler = handler;
    stream.headRequest = fieldValue(fields, ":method") === "HEAD";
    this.streams.set(stream.id, stream);
    this.lastPeerStreamId = stream.id;
    this.events.streamCountChanged?.(this.streams.size);
    this.sendHeaders(stream, fields, endStream);
    return stream;
  }

  /**
   * Graceful close: GOAWAY now (server role: naming the last stream we will process), then the
   * socket ends once every open stream has finished.
   */
  close(): void {
    if (this.closedFlag) return;
    if (!this.goingAway) {
      this.goingAway = true;
      this.write(goawayFrame(this.role === "server" ? this.lastPeerStreamId : 0, ErrorCode.NO_ERROR));
    }
    this.endIfIdle();
  }

  /** Ends the connection now with GOAWAY(code); open streams are reset. */
  destroy(code: number = ErrorCode.INTERNAL_ERROR, debug = ""): void {
    if (this.closedFlag) return;
    this.goingAway = true;
    this.write(goawayFrame(this.lastPeerStreamId, code, debug));
    this.flush();
    this.socket.end();
    this.closeAll(code);
    // A peer that does not close its side after our GOAWAY is cut.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  // ---- sending ----

  /**
   * Queues bytes; everything queued until the event loop has handled the pending I/O goes out in
   * one write (under load, the frames of many requests share one TLS record and one syscall).
   */
  private write(buf: Buffer): void {
    this.out.raw(buf);
    this.scheduleFlush();
  }

  /**
   * A frame the peer provoked (an ACK, a stream error). While the socket is backed up they are
   * counted: a peer that keeps provoking them without reading would make them pile up.
   */
  private reply(buf: Buffer): void {
    if (this.socket.writableNeedDrain && ++this.pendingReplies > this.limits.maxPendingReplies) {
      throw new FrameError(ErrorCode.ENHANCE_YOUR_CALM, `more than ${this.limits.maxPendingReplies} replies queued for a peer that does not read`);
    }
    this.write(buf);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flushBound);
  }

  private readonly flushBound = () => this.flush();

  private flush(): void {
    this.flushScheduled = false;
    if (this.out.empty) return;
    const bytes = this.out.take();
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /**
   * `n` bytes of `source` (a stream on another connection) were queued here: credit them back to
   * its sender now, or once this socket drains if it is backed up. This is how backpressure
   * crosses the proxy without unbounded buffering. `via`: the stream here they were sent on; while
   * it holds data waiting for the peer's flow-control window, the credit waits too.
   */
  creditWhenWritable(source: H2Stream, n: number, via?: H2Stream): void {
    if (n <= 0) return;
    if (via && via.queuedBytes > 0 && !via.closed) {
      // They wait in `via`'s queue for the peer's window: credit only once written, or a peer
      // that withholds window would make the queue grow as fast as the source can send.
      (via.owed ??= []).push(source, n);
      return;
    }
    if (!this.socket.writableNeedDrain || this.socket.destroyed) return source.consumed(n);
    this.afterDrain.push(source, n);
  }

  /** `stream`'s queue was written (or dropped, when `closed`): what waited on it is credited. */
  private payOwed(stream: H2Stream, closed: boolean): void {
    const owed = stream.owed!;
    stream.owed = undefined;
    for (let i = 0; i < owed.length; i += 2) {
      const source = owed[i] as H2Stream;
      const n = owed[i + 1] as number;
      if (closed) source.consumed(n);
      else this.creditWhenWritable(source, n);
    }
  }

  private onDrain(): void {
    this.pendingReplies = 0;
    const owed = this.afterDrain;
    this.afterDrain = [];
    for (let i = 0; i < owed.length; i += 2) (owed[i] as H2Stream).consumed(owed[i + 1] as number);
  }

  sendHeaders(stream: H2Stream, fields: HeaderFields, endStream: boolean): void {
    if (stream.localEnded || this.closedFlag) return;
    const block = this.encoder.encode(fields);
    this.out.headers(stream.id, block, endStream, this.peerMaxFrameSize);
    this.scheduleFlush();
    if (endStream) this.endLocal(stream);
  }

  sendTrailers(stream: H2Stream, fields: HeaderFields): void {
    if (stream.localEnded || stream.queuedEnd || this.closedFlag) return;
    if (stream.queuedBytes > 0) {
      stream.queuedTrailers = fields;
      stream.queuedEnd = true;
      return;
    }
    this.sendHeaders(stream, fields, true);
  }

  sendData(stream: H2Stream, chunk: Buffer, endStream: boolean): void {
    if (stream.localEnded || stream.queuedEnd || this.closedFlag) return;
    if (stream.queuedBytes > 0) {
      if (chunk.length > 0) {
        stream.queue.push(chunk);
        stream.queuedBytes += chunk.length;
      }
      stream.queuedEnd = endStream;
      return;
    }
    const rest = this.sendAllowed(stream, chunk, endStream);
    if (rest.length === 0) {
      if (endStream) {
        // The last DATA frame above carried END_STREAM; an empty chunk needs its own frame.
        if (chunk.length === 0) this.write(frame(FrameType.DATA, Flags.END_STREAM, stream.id));
        this.endLocal(stream);
      }
      return;
    }
    stream.queue.push(rest);
    stream.queuedBytes = rest.length;
    stream.queuedEnd = endStream;
    this.blocked.add(stream);
    if (this.peerEnded) this.dropBlocked();
  }

  /**
   * After the peer ended its side no WINDOW_UPDATE can come: streams waiting for window would
   * wait (and hold their data, and their upstream) for ever, so they are reset.
   */
  private dropBlocked(): void {
    for (const stream of [...this.blocked]) this.resetStream(stream, ErrorCode.CANCEL, "lost");
  }

  /**
   * Sends as much of `chunk` as the windows allow; returns what is left. With `endStream`, the
   * frame that sends the last byte carries END_STREAM.
   */
  private sendAllowed(stream: H2Stream, chunk: Buffer, endStream = false): Buffer {
    let offset = 0;
    while (offset < chunk.length) {
      const n = Math.min(chunk.length - offset, stream.sendWindow, this.connSendWindow, this.peerMaxFrameSize);
      if (n <= 0) break;
      const last = endStream && offset + n === chunk.length;
      this.out.frame(FrameType.DATA, last ? Flags.END_STREAM : 0, stream.id, chunk, offset, offset + n);
      this.scheduleFlush();
      offset += n;
      stream.sendWindow -= n;
      this.connSendWindow -= n;
      stream.unansweredData++;
      this.connUnansweredData++;
    }
    return offset === 0 ? chunk : chunk.subarray(offset);
  }

  /** Sends queued data of blocked streams as far as the windows now allow. */
  private flushBlocked(only?: H2Stream): void {
    const streams = only ? [only] : [...this.blocked];
    for (const stream of streams) {
      if (!this.blocked.has(stream)) continue;
      while (stream.queue.length > 0) {
        const head = stream.queue[0]!;
        const rest = this.sendAllowed(stream, head);
        stream.queuedBytes -= head.length - rest.length;
        if (rest.length > 0) {
          stream.queue[0] = rest;
          break;
        }
        stream.queue.shift();
      }
      if (stream.queue.length > 0) continue;
      this.blocked.delete(stream);
      if (stream.owed) this.payOwed(stream, false);
      if (!stream.queuedEnd) continue;
      const trailers = stream.queuedTrailers;
      stream.queuedEnd = false;
      stream.queuedTrailers = undefined;
      if (trailers) this.sendHeaders(stream, trailers, true);
      else {
        this.write(frame(FrameType.DATA, Flags.END_STREAM, stream.id));
        this.endLocal(stream);
      }
    }
  }

  /** Sends RST_STREAM; the handler hears of it only when `cause` says the peer provoked it. */
  resetStream(stream: H2Stream, code: number, cause?: ResetCause): void {
    if (stream.closed) return;
    if (!this.closedFlag) {
      if (cause === "peer" || cause === "malformed") {
        // A stream error the peer caused (RFC 9113 §5.4.2): counted, and the reply is bounded.
        this.events.protocolError?.("h2-stream", `stream ${stream.id} reset with code ${code}`);
        this.reply(rstStreamFrame(stream.id, code));
      } else this.write(rstStreamFrame(stream.id, code));
    }
    this.closeStream(stream, cause ? { code, cause } : undefined, "reset-by-us");
  }

  credit(stream: H2Stream, n: number): void {
    if (n <= 0 || this.closedFlag) return;
    this.creditConnection(n);
    if (stream.closed || stream.remoteEnded) return;
    stream.unacked += n;
    if (stream.unacked >= this.limits.initialWindowSize / 2) {
      this.write(windowUpdateFrame(stream.id, stream.unacked));
      stream.recvWindow += stream.unacked;
      stream.unacked = 0;
    }
  }

  private endLocal(stream: H2Stream): void {
    stream.localEnded = true;
    if (stream.remoteEnded) this.closeStream(stream);
  }

  private closeStream(stream: H2Stream, reset?: { code: number; cause: ResetCause }, how: ClosedHow = "ended"): void {
    if (stream.closed) return;
    this.rememberClosed(stream.id, how);
    stream.closed = true;
    stream.localEnded = true;
    stream.remoteEnded = true;
    this.blocked.delete(stream);
    stream.queue.length = 0;
    stream.queuedBytes = 0;
    // Credits waiting on this stream's queue are paid now (the other connection's window too).
    if (stream.owed) this.payOwed(stream, true);
    this.streams.delete(stream.id);
    this.events.streamCountChanged?.(this.streams.size);
    if (reset) stream.handler.reset(reset.code, reset.cause);
    stream.handler.closed();
    this.endIfIdle();
  }

  private rememberClosed(id: number, how: ClosedHow): void {
    this.closedStreams.set(id, how);
    if (this.closedStreams.size <= CLOSED_STREAMS_KEPT) return;
    const [oldest] = this.closedStreams.keys() as unknown as [number];
    this.closedStreams.delete(oldest);
    this.forgottenBelow = Math.max(this.forgottenBelow, oldest);
  }

  /** Neither open nor ever opened: a stream id the peer may not send frames on yet (RFC 9113 §5.1, §5.1.1). */
  private isIdle(id: number): boolean {
    if (id % 2 === 0 || id > this.lastPeerStreamId) return true; // even: push is disabled both ways
    // Server role: the client may skip ids, and every id it opened above `forgottenBelow` is known.
    return this.role === "server" && id > this.forgottenBelow && !this.closedStreams.has(id);
  }

  /**
   * A DATA or HEADERS frame on a stream that is not open (RFC 9113 §5.1): ignored after our reset
   * (the peer may not have seen it yet), a stream error after the peer's own reset, a connection
   * error after both sides ended it or on a stream never opened.
   */
  private onNotOpen(id: number, what: string): void {
    const how = this.closedStreams.get(id);
    if (how === "reset-by-us") return;
    if (how === "reset-by-peer") {
      this.count("control", this.limits.maxControlFramesPerWindow, "frames on reset streams");
      this.events.protocolError?.("h2-stream", `${what} on stream ${id} after its RST_STREAM`);
      return this.reply(rstStreamFrame(id, ErrorCode.STREAM_CLOSED));
    }
    if (how === "ended") throw new FrameError(ErrorCode.STREAM_CLOSED, `${what} on closed stream ${id}`);
    if (this.isIdle(id)) throw new FrameError(ErrorCode.PROTOCOL_ERROR, `${what} on idle stream ${id}`);
    // Closed too long ago to be remembered: ignored.
  }

  private endIfIdle(): void {
    if (this.goingAway && this.streams.size === 0 && !this.closedFlag) {
      this.flush();
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 1000).unref();
    }
  }

  // ---- receiving ----

  private onBytes(chunk: Buffer): void {
    if (this.closedFlag) return;
    try {
      if (this.prefaceLeft > 0) {
        const n = Math.min(this.prefaceLeft, chunk.length);
        const offset = CLIENT_PREFACE.length - this.prefaceLeft;
        if (!chunk.subarray(0, n).equals(CLIENT_PREFACE.subarray(offset, offset + n))) {
          throw new FrameError(ErrorCode.PROTOCOL_ERROR, "the connection did not start with the HTTP/2 client preface");
        }
        this.prefaceLeft -= n;
        chunk = chunk.subarray(n);
        if (chunk.length === 0) return;
      }
      this.reader.push(chunk, (f) => this.onFrame(f));
    } catch (err) {
      this.protocolFailure(err);
    }
  }

  private protocolFailure(err: unknown): void {
    // Anything but a frame or HPACK error was thrown by our own code (e.g. a stream handler): not the peer's fault.
    const code = err instanceof FrameError ? err.h2Code : err instanceof HpackError ? ErrorCode.COMPRESSION_ERROR : ErrorCode.INTERNAL_ERROR;
    const message = err instanceof Error ? err.message : String(err);
    const kind = code === ErrorCode.ENHANCE_YOUR_CALM ? "h2-flood" : code === ErrorCode.INTERNAL_ERROR ? "h2-internal" : "h2-protocol";
    this.events.protocolError?.(kind, message);
    // The peer is told what it did wrong, not our internals.
    this.destroy(code, kind === "h2-internal" ? "" : message.slice(0, 200));
  }

  private onFrame(f: Frame): void {
    if (this.closedFlag) return;
    if (this.continuation && f.type !== FrameType.CONTINUATION) {
      throw new FrameError(ErrorCode.PROTOCOL_ERROR, "a header block was interrupted by another frame");
    }
    if (!this.settingsReceived && f.type !== FrameType.SETTINGS) {
      throw new FrameError(ErrorCode.PROTOCOL_ERROR, "the first frame was not SETTINGS");
    }
    switch (f.type) {
      case FrameType.DATA:
        return this.onData(f);
      case FrameType.HEADERS:
        return this.onHeaders(f);
      case FrameType.CONTINUATION:
        return this.onContinuation(f);
      case FrameType.RST_STREAM:
        return this.onReset(f);
      case FrameType.SETTINGS:
        return this.onSettings(f);
      case FrameType.PING:
        return this.onPing(f);
      case FrameType.GOAWAY:
        return this.onGoaway(f);
      case FrameType.WINDOW_UPDATE:
        return this.onWindowUpdate(f);
      case FrameType.PRIORITY:
        return this.onPriority(f);
      case FrameType.PUSH_PROMISE:
        throw new FrameError(ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE is not allowed (push is disabled)");
      default:
        return; // unknown frame types are ignored (RFC 9113 §4.1)
    }
  }

  /** Counts a kind of peer-initiated event; too many per window is a flood. */
  private count(kind: CountedKind, limit: number, what: string): void {
    const c = this.counters[kind];
    const now = this.now();
    if (now - c.start >= this.limits.floodWindowMs) {
      c.start = now;
      c.count = 0;
    }
    if (++c.count > limit) throw new FrameError(ErrorCode.ENHANCE_YOUR_CALM, `${what}: more than ${limit} in ${this.limits.floodWindowMs} ms`);
  }

  private onData(f: Frame): void {
    if (f.streamId === 0) throw new FrameError(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0");
    const length = f.payload.length;
    this.connRecvWindow -= length;
    if (this.connRecvWindow < 0) throw new FrameError(ErrorCode.FLOW_CONTROL_ERROR, "DATA beyond the connection window");
    const endStream = (f.flags & Flags.END_STREAM) !== 0;
    if (length === 0 && !endStream) this.count("control", this.limits.maxControlFramesPerWindow, "empty DATA frames");
    const stream = this.streams.get(f.streamId);
    if (!stream || stream.remoteEnded) {
      // The bytes still count against the connection window.
      this.creditConnection(length);
      if (stream) return this.resetStream(stream, ErrorCode.STREAM_CLOSED, "peer"); // half-closed (remote)
      return this.onNotOpen(f.streamId, "DATA");
    }
    stream.recvWindow -= length;
    if (stream.recvWindow < 0) {
      // The peer ignored our window: a stream error.
      this.creditConnection(length);
      this.resetStream(stream, ErrorCode.FLOW_CONTROL_ERROR, "peer");
      return;
    }
    const body = unpad(f);
    const padding = length - body.length;
    if (padding > 0) this.credit(stream, padding);
    if (stream.expectedLength !== undefined) {
      stream.receivedLength += body.length;
      if (stream.receivedLength > stream.expectedLength || (endStream && stream.receivedLength !== stream.expectedLength)) {
        // §8.1.1: DATA that does not add up to the content-length makes the request malformed.
        this.creditConnection(body.length);
        return this.resetStream(stream, ErrorCode.PROTOCOL_ERROR, "malformed");
      }
    }
    if (endStream) stream.remoteEnded = true;
    stream.handler.data(body, endStream);
    if (endStream && stream.localEnded) this.closeStream(stream);
  }

  /** Connection-level credit, sent in batches of half the window. */
  private creditConnection(n: number): void {
    if (n === 0) return;
    this.connUnacked += n;
    if (this.connUnacked >= this.limits.connectionWindowSize / 2) {
      this.write(windowUpdateFrame(0, this.connUnacked));
      this.connRecvWindow += this.connUnacked;
      this.connUnacked = 0;
    }
  }

  private onHeaders(f: Frame): void {
    if (f.streamId === 0) throw new FrameError(ErrorCode.PROTOCOL_ERROR, "HEADERS on stream 0");
    let block = unpad(f);
    let selfDependent = false;
    if (f.flags & Flags.PRIORITY) {
      if (block.length < 5) throw new FrameError(ErrorCode.FRAME_SIZE_ERROR, "HEADERS priority fields truncated");
      selfDependent = (block.readUInt32BE(0) & 0x7fffffff) === f.streamId;
      block = block.subarray(5);
    }
    if (f.flags & Flags.END_HEADERS) return this.onHeaderBlock(f.streamId, f.flags, block, selfDependent);
    if (block.length > this.limits.maxHeaderBlockBytes) this.headerBlockTooLarge();
    // Copy: the frame's bytes belong to a chunk the reader may reuse.
    this.continuation = { streamId: f.streamId, flags: f.flags, chunks: [Buffer.from(block)], size: block.length, selfDependent };
  }

  private headerBlockTooLarge(): never {
    throw new FrameError(ErrorCode.ENHANCE_YOUR_CALM, `header block larger than ${this.limits.maxHeaderBlockBytes} bytes`);
  }

  private onContinuation(f: Frame): void {
    const c = this.continuation;
    if (!c || c.streamId !== f.streamId) throw new FrameError(ErrorCode.PROTOCOL_ERROR, "CONTINUATION without a header block in progress");
    c.size += f.payload.length;
    if (c.size > this.limits.maxHeaderBlockBytes) this.headerBlockTooLarge();
    c.chunks.push(Buffer.from(f.payload));
    if (!(f.flags & Flags.END_HEADERS)) return;
    this.continuation = undefined;
    this.onHeaderBlock(c.streamId, c.flags, Buffer.concat(c.chunks, c.size), c.selfDependent);
  }

  /** A complete header block. `selfDependent`: its priority names its own stream (§5.3.1: a stream error). */
  private onHeaderBlock(streamId: number, flags: number, block: Buffer, selfDependent: boolean): void {
    // Always decode: the HPACK table is shared by every stream, even ones we refuse.
    const fields = this.decoder.decode(block);
    const endStream = (flags & Flags.END_STREAM) !== 0;
    const stream = this.streams.get(streamId);
    if (!stream) {
      if (this.role === "server" && streamId % 2 === 1 && streamId > this.lastPeerStreamId) return this.onRequest(streamId, fields, endStream, selfDependent);
      return this.onNotOpen(streamId, "HEADERS");
    }
    if (stream.remoteEnded) return this.resetStream(stream, ErrorCode.STREAM_CLOSED, "peer"); // half-closed (remote)
    if (selfDependent) return this.resetStream(stream, ErrorCode.PROTOCOL_ERROR, "peer");
    if (this.role === "server" || stream.headersReceived) {
      // A second header block on a request, or after the final response headers: trailers, which end the stream (§8.1).
      if (!endStream || trailersProblem(fields) !== undefined) return this.resetStream(stream, ErrorCode.PROTOCOL_ERROR, "malformed");
      if (stream.expectedLength !== undefined && stream.receivedLength !== stream.expectedLength) return this.resetStream(stream, ErrorCode.PROTOCOL_ERROR, "malformed");
      stream.remoteEnded = true;
      stream.handler.trailers(fields);
      if (stream.localEnded) this.closeStream(stream);
      return;
    }
    const status = fields[0] === ":status" ? fields[1]! : "";
    const informational = status.length === 3 && status[0] === "1";
    // §8.1: an informational response cannot end the stream.
    if (responseProblem(fields) !== undefined || (informational && endStream)) return this.resetStream(stream, ErrorCode.PROTOCOL_ERROR, "malformed");
    if (!informational) {
      // §8.1.1: the content must add up to the content-length, unless the response has none (RFC 9110 §6.4.1).
      const declared = declaredContentLength(fields);
      const noContent = stream.headRequest || status === "204" || status === "304";
      if (Number.isNaN(declared) || (!noContent && endStream && declared)) return this.resetStream(stream, ErrorCode.PROTOCOL_ERROR, "malformed");
      if (!noContent) stream.expectedLength = declared;
      stream.headersReceived = true;
    }
    if (endStream) stream.remoteEnded = true;
    stream.handler.headers(fields, endStream);
    if (endStream && stream.localEnded) this.closeStream(stream);
  }

  /** Server role: the header block that opens stream `streamId`. */
  private onRequest(streamId: number, fields: HeaderFields, endStream: boolean, selfDependent: boolean): void {
    this.lastPeerStreamId = streamId;
    if (this.goingAway) return this.rememberClosed(streamId, "reset-by-us"); // above the GOAWAY's last stream: not processed
    if (this.streams.size >= this.limits.maxConcurrentStreams) {
      this.rememberClosed(streamId, "reset-by-us");
      this.write(rstStreamFrame(streamId, ErrorCode.REFUSED_STREAM));
      if (++this.refusedStreams > this.limits.maxRefusedStreams) {
        throw new FrameError(ErrorCode.ENHANCE_YOUR_CALM, `more than ${this.limits.maxRefusedStreams} streams refused for exceeding the concurrency limit`);
      }
      return;
    }
    const expectedLength = declaredContentLength(fields);
    const problem = selfDependent
      ? "the stream depends on itself"
      : (requestProblem(fields) ?? (Number.isNaN(expectedLength) ? "the content-length is not a number" : endStream && expectedLength ? "the content-length does not match the body" : undefined));
    if (problem) {
      // §8.1.1: a malformed request is a stream error and is not forwarded.
      this.rememberClosed(streamId, "reset-by-us");
      this.events.protocolError?.("h2-malformed", `stream ${streamId}: ${problem}`);
      return this.reply(rstStreamFrame(streamId, ErrorCode.PROTOCOL_ERROR));
    }
    const created = new H2Stream(streamId, this, this.peerInitialWindow, this.limits.initialWindowSize);
    created.headersReceived = true;
    created.remoteEnded = endStream;
    created.expectedLength = expectedLength;
    this.streams.set(streamId, created);
    this.events.streamCountChanged?.(this.streams.size);
    this.events.stream?.(created, fields, endStream);
  }

  private onReset(f: Frame): void {
    if (f.streamId === 0) throw new FrameError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on stream 0");
    if (f.payload.length !== 4) throw new FrameError(ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM payload is not 4 bytes");
    if (this.role === "server") this.count("resets", this.limits.maxResetsPerWindow, "streams reset by the client");
    const stream = this.streams.get(f.streamId);
    if (!stream) {
      if (this.isIdle(f.streamId)) throw new FrameError(ErrorCode.PROTOCOL_ERROR, `RST_STREAM on idle stream ${f.streamId}`);
      return;
    }
    const code = f.payload.readUInt32BE(0);
    const refused = this.role === "client" && code === ErrorCode.REFUSED_STREAM && !stream.headersReceived;
    this.closeStream(stream, { code, cause: refused ? "refused" : "peer" }, "reset-by-peer");
  }

  private onPriority(f: Frame): void {
    if (f.streamId === 0) throw new FrameError(ErrorCode.PROTOCOL_ERROR, "PRIORITY on stream 0");
    if (f.payload.length !== 5) throw new FrameError(ErrorCode.FRAME_SIZE_ERROR, "PRIORITY payload is not 5 bytes");
    // Advisory (the proxy does not reorder), but each costs a parse: a flood is cut like PINGs.
    this.count("control", this.limits.maxControlFramesPerWindow, "PRIORITY frames");
    if ((f.payload.readUInt32BE(0) & 0x7fffffff) !== f.streamId) return;
    // §5.3.1: a stream cannot depend on itself (a stream error; on a stream that is not open, the connection's).
    const stream = this.streams.get(f.streamId);
    if (!stream) throw new FrameError(ErrorCode.PROTOCOL_ERROR, `PRIORITY: stream ${f.streamId} depends on itself`);
    this.resetStream(stream, ErrorCode.PROTOCOL_ERROR, "peer");
  }

  private onSettings(f: Frame): void {
    if (f.streamId !== 0) throw new FrameError(ErrorCode.PROTOCOL_ERROR, "SETTINGS on a stream");
    if (f.flags & Flags.ACK) {
      if (f.payload.length !== 0) throw new FrameError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload");
      return;
    }
    if (this.settingsReceived) this.count("control", this.limits.maxControlFramesPerWindow, "SETTINGS frames");
    for (const [id, value] of parseSettings(f.payload)) this.applySetting(id, value);
    this.reply(frame(FrameType.SETTINGS, Flags.ACK, 0));
    if (!this.settingsReceived) {
      this.settingsReceived = true;
      this.events.ready?.();
    }
  }

  private applySetting(id: number, value: number): void {
    switch (id) {
      case Setting.HEADER_TABLE_SIZE:
        this.encoder.setMaxTableSize(value);
        return;
      case Setting.ENABLE_PUSH:
        if (value > 1) throw new FrameError(ErrorCode.PROTOCOL_ERROR, "SETTINGS_ENABLE_PUSH must be 0 or 1");
        return;
      case Setting.MAX_CONCURRENT_STREAMS:
        this.peerMaxConcurrentStreams = value;
        return;
      case Setting.INITIAL_WINDOW_SIZE: {
        if (value > MAX_WINDOW) throw new FrameError(ErrorCode.FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1");
        const delta = value - this.peerInitialWindow;
        for (const stream of this.streams.values()) {
          // §6.9.2: a change that takes any stream's window past the maximum is a connection error.
          if (stream.sendWindow + delta > MAX_WINDOW) throw new FrameError(ErrorCode.FLOW_CONTROL_ERROR, `SETTINGS_INITIAL_WINDOW_SIZE takes stream ${stream.id}'s window above 2^31-1`);
        }
        this.peerInitialWindow = value;
        for (const stream of this.streams.values()) stream.sendWindow += delta;
        if (delta > 0) this.flushBlocked();
        return;
      }
      case Setting.MAX_FRAME_SIZE:
        if (value < DEFAULT_MAX_FRAME_SIZE || value > 16_777_215) throw new FrameError(ErrorCode.PROTOCOL_ERROR, "SETTINGS_MAX_FRAME_SIZE out of range");
        this.peerMaxFrameSize = value;
        return;
      default:
        return; // MAX_HEADER_LIST_SIZE is advisory; unknown settings are ignored
    }
  }

  private onPing(f: Frame): void {
    if (f.streamId !== 0) throw new FrameError(ErrorCode.PROTOCOL_ERROR, "PING on a stream");
    if (f.payload.length !== 8) throw new FrameError(ErrorCode.FRAME_SIZE_ERROR, "PING payload is not 8 bytes");
    if (f.flags & Flags.ACK) return;
    this.count("control", this.limits.maxControlFramesPerWindow, "PING frames");
    this.reply(frame(FrameType.PING, Flags.ACK, 0, f.payload));
  }

  private onGoaway(f: Frame): void {
    if (f.streamId !== 0) throw new FrameError(ErrorCode.PROTOCOL_ERROR, "GOAWAY on a stream");
    if (f.payload.length < 8) throw new FrameError(ErrorCode.FRAME_SIZE_ERROR, "GOAWAY payload shorter than 8 bytes");
    const lastStreamId = f.payload.readUInt32BE(0) & 0x7fffffff;
    const code = f.payload.readUInt32BE(4);
    this.peerGoingAway = true;
    if (this.role === "client") {
      // Streams above the last one the server will process were never seen by it: safe elsewhere.
      for (const stream of [...this.streams.values()]) {
        if (stream.id <= lastStreamId) continue;
        this.closeStream(stream, { code: ErrorCode.REFUSED_STREAM, cause: "refused" }, "reset-by-peer");
      }
    }
    this.events.goaway?.(lastStreamId, code);
    if (this.role === "client" && !this.goingAway) {
      this.goingAway = true;
      this.endIfIdle();
    }
  }

  private onWindowUpdate(f: Frame): void {
    if (f.payload.length !== 4) throw new FrameError(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE payload is not 4 bytes");
    const increment = f.payload.readUInt32BE(0) & 0x7fffffff;
    if (f.streamId === 0) {
      if (increment === 0) throw new FrameError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0 on the connection");
      // An update that answers none of our DATA frames is not needed: a flood of them is cut like PINGs.
      if (this.connUnansweredData > 0) this.connUnansweredData--;
      else this.count("control", this.limits.maxControlFramesPerWindow, "WINDOW_UPDATE frames");
      this.connSendWindow += increment;
      if (this.connSendWindow > MAX_WINDOW) throw new FrameError(ErrorCode.FLOW_CONTROL_ERROR, "connection window above 2^31-1");
      this.flushBlocked();
      return;
    }
    const stream = this.streams.get(f.streamId);
    if (!stream) {
      if (this.isIdle(f.streamId)) throw new FrameError(ErrorCode.PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${f.streamId}`);
      return this.count("control", this.limits.maxControlFramesPerWindow, "WINDOW_UPDATE frames"); // closed: ignored
    }
    if (stream.unansweredData > 0) stream.unansweredData--;
    else this.count("control", this.limits.maxControlFramesPerWindow, "WINDOW_UPDATE frames");
    if (increment === 0 || stream.sendWindow + increment > MAX_WINDOW) {
      return this.resetStream(stream, increment === 0 ? ErrorCode.PROTOCOL_ERROR : ErrorCode.FLOW_CONTROL_ERROR, "peer");
    }
    stream.sendWindow += increment;
    if (this.blocked.has(stream)) this.flushBlocked(stream);
  }

  // ---- the end ----

  private closeAll(code: number): void {
    this.closedFlag = true;
    for (const stream of [...this.streams.values()]) this.closeStream(stream, { code, cause: "lost" });
    // Not dropped: they credit streams of other connections (a forwarder's upstream), whose
    // connection-level window would otherwise shrink for good.
    this.onDrain();
  }

  private onSocketClose(): void {
    this.closeAll(ErrorCode.CANCEL);
    this.events.close?.();
  }
}
