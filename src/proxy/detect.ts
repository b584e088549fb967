/**
 * Protocol detection on the first bytes a client sends: the HTTP/2 connection preface -> "h2",
 * an HTTP/1 request line -> "http1", anything else (or silence until the timeout) -> "opaque".
 * `classify` is the pure decision; `detectProtocol` reads a socket until it can decide, then puts
 * the bytes back so the next consumer sees the stream untouched.
 */
import type { Socket } from "node:net";

export type Protocol = "h2" | "http1" | "opaque";

export const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
/** Longest HTTP/1 request line we wait for before calling the stream opaque. */
export const MAX_REQUEST_LINE = 8192;

// token SP request-target SP HTTP/1.x CRLF (RFC 9112 §3); the target has no spaces or controls.
const REQUEST_LINE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [\x21-\x7e\x80-\xff]+ HTTP\/1\.[01]\r\n/;
const TOKEN_CHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]$/;
/** Bytes allowed in a request line before its CRLF (method, spaces, target, version). */
const LINE_CHAR = /^[\x20-\x7e\x80-\xff]$/;

/** The decision for the bytes seen so far, or "more" when more bytes could still change it. */
export function classify(bytes: Buffer): Protocol | "more" {
  if (bytes.length === 0) return "more";
  const preface = Math.min(bytes.length, H2_PREFACE.length);
  if (bytes.subarray(0, preface).equals(H2_PREFACE.subarray(0, preface))) {
    if (bytes.length >= H2_PREFACE.length) return "h2";
    // "PRI " is also a valid HTTP/1 method prefix, but only the preface is worth waiting for.
    return "more";
  }
  const head = bytes.subarray(0, MAX_REQUEST_LINE).toString("latin1");
  const end = head.indexOf("\r\n");
  if (end >= 0) return REQUEST_LINE.test(head.slice(0, end + 2)) ? "http1" : "opaque";
  if (!TOKEN_CHAR.test(head[0]!)) return "opaque";
  for (let i = 0; i < head.length; i++) {
    const c = head[i]!;
    if (c === "\r" && i === head.length - 1) break;
    if (!LINE_CHAR.test(c)) return "opaque";
  }
  return bytes.length >= MAX_REQUEST_LINE ? "opaque" : "more";
}

export interface DetectOptions {
  /** Give up waiting for the client to speak after this long (the server may speak first). */
  timeoutMs: number;
  /** Known opaque ports (config.tether.io/opaque-ports) skip detection entirely. */
  opaque?: boolean;
}

export interface Detection {
  protocol: Protocol;
  /** The bytes read while detecting. */
  buffered: Buffer;
  /**
   * True when `buffered` was put back into the socket (the usual case). False only when the client
   * ended its side during detection: then the caller must replay `buffered` itself.
   */
  unshifted: boolean;
  /** True when the decision came from the timeout (client silent) rather than from bytes. */
  timedOut: boolean;
}

/**
 * Reads from `socket` until `classify` decides, the timeout passes, or the socket ends. The socket
 * is left paused with the read bytes unshifted, so piping it or handing it to an HTTP server
 * replays them.
 */
export function detectProtocol(socket: Socket, options: DetectOptions): Promise<Detection> {
  if (options.opaque) return Promise.resolve({ protocol: "opaque", buffered: Buffer.alloc(0), timedOut: false, unshifted: false });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const finish = (protocol: Protocol, timedOut: boolean) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.off("close", onEnd);
      socket.off("error", onEnd);
      socket.pause();
      const buffered = Buffer.concat(chunks, length);
      const unshifted = buffered.length > 0 && !ended && !socket.destroyed;
      if (unshifted) socket.unshift(buffered);
      resolve({ protocol, buffered, timedOut, unshifted });
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      const decision = classify(chunks.length === 1 ? chunk : Buffer.concat(chunks, length));
      if (decision !== "more") finish(decision, false);
    };
    let ended = false;
    const onEnd = () => {
      ended = true;
      finish("opaque", false);
    };
    const timer = setTimeout(() => finish("opaque", true), options.timeoutMs);
    socket.on("data", onData);
    socket.once("end", onEnd);
    socket.once("close", onEnd);
    socket.once("error", onEnd);
    // A socket an earlier peek paused (e.g. the inbound TLS check) does not flow again by itself.
    socket.resume();
  });
}
