/**
 * Opaque TCP: bytes both ways, unchanged. Half-close is respected (a client that shuts down its
 * sending side still gets the rest of the answer), a reset or error on one side destroys the
 * other, and the byte counts are reported for metrics. Both sockets must allow half-open
 * (`allowHalfOpen: true` on the listening server and on the upstream socket).
 */
import type { Socket } from "node:net";
import { TLSSocket } from "node:tls";
import { systemClock, type Clock } from "../../core/clock.js";
import { errorMessage } from "../../core/errors.js";
import { errorReason, UpstreamError } from "./errors.js";

export interface TcpUpstream {
  /** Starts connecting (net.connect / tls.connect with allowHalfOpen: true). */
  connect(): Socket;
  /** Called when the connection ends; latency is the connect time. */
  done(outcome: { ok: boolean; latencyMs: number }): void;
  failed(): void;
  cancel(): void;
}

export interface TcpForwardOptions {
  choose(attempt: number): TcpUpstream;
  maxAttempts?: number;
  connectTimeoutMs?: number;
  /** Bytes to send upstream first: detection bytes the client sent before ending (Detection.unshifted false). */
  replay?: Buffer;
  clock?: Clock;
}

export interface TcpForwardResult {
  /** Bytes read from the client (including any replayed detection bytes) and written to it. */
  bytesFromClient: number;
  bytesToClient: number;
  attempts: number;
  connectMs?: number;
  error?: string;
  message?: string;
}

function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => (socket.closed ? resolve() : socket.once("close", () => resolve())));
}

/** Connects with retries on connect failure; undefined (client closed) if nothing could be made. */
async function connectUpstream(
  client: Socket,
  options: TcpForwardOptions,
  result: TcpForwardResult,
  clock: Clock,
): Promise<{ upstream: TcpUpstream; socket: Socket } | undefined> {
  const maxAttempts = options.maxAttempts ?? 3;
  for (;;) {
    result.attempts++;
    let upstream: TcpUpstream;
    try {
      upstream = options.choose(result.attempts - 1);
    } catch (err) {
      result.error = errorReason(err);
      return undefined;
    }
    const start = clock.now();
    let socket: Socket;
    try {
      socket = upstream.connect();
    } catch (err) {
      // A refusal of ours (e.g. no certificate for a meshed endpoint) is final and not the endpoint's fault.
      upstream.cancel();
      result.error = errorReason(err);
      result.message = errorMessage(err);
      return undefined;
    }
    socket.on("error", () => {});
    const connected = await new Promise<Error | undefined>((resolve) => {
      const timer = clock.setTimeout(() => resolve(new UpstreamError("UPSTREAM_CONNECT_FAILED", "connect timed out", true)), options.connectTimeoutMs ?? 3000);
      const finish = (err?: Error) => {
        clock.clearTimeout(timer);
        resolve(err);
      };
      socket.once(socket instanceof TLSSocket ? "secureConnect" : "connect", () => finish());
      socket.once("error", (err) => finish(err));
      client.once("close", () => finish(new Error("client closed")));
    });
    if (!connected) {
      result.connectMs = clock.now() - start;
      return { upstream, socket };
    }
    socket.destroy();
    if (client.destroyed) {
      upstream.cancel();
      return undefined;
    }
    upstream.failed();
    if (result.attempts >= maxAttempts) {
      result.error = "UPSTREAM_CONNECT_FAILED";
      result.message = errorMessage(connected);
      return undefined;
    }
  }
}

/** Forwards `client` to a chosen upstream; resolves when both sides are closed. */
export async function forwardTcp(client: Socket, options: TcpForwardOptions): Promise<TcpForwardResult> {
  const clock = options.clock ?? systemClock;
  const result: TcpForwardResult = { bytesFromClient: 0, bytesToClient: 0, attempts: 0 };
  client.on("error", () => {});
  const chosen = await connectUpstream(client, options, result, clock);
  if (!chosen) {
    // Opaque traffic has no way to carry a reason: the connection is refused by closing it.
    client.destroy();
    result.bytesFromClient = client.bytesRead;
    return result;
  }
  const { upstream, socket } = chosen;
  // A clean end (FIN) is forwarded by pipe as a half-close; a side that closes without one
  // (reset, error, destroy) takes the other down with it.
  let reset = false;
  const link = (from: Socket, to: Socket) => {
    from.once("error", () => {
      reset = true;
      to.destroy();
    });
    from.once("close", () => {
      if (!from.readableEnded) {
        reset = true;
        to.destroy();
      }
    });
    from.pipe(to);
  };
  if (options.replay?.length) socket.write(options.replay);
  link(client, socket);
  link(socket, client);
  await Promise.all([closed(client), closed(socket)]);
  result.bytesFromClient = client.bytesRead;
  result.bytesToClient = client.bytesWritten;
  if (reset) result.error = "CONNECTION_RESET";
  upstream.done({ ok: true, latencyMs: result.connectMs ?? 0 });
  return result;
}
