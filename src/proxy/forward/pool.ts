/**
 * Pooled upstream HTTP/2 connections, shared by every request to an endpoint. A connection that
 * receives GOAWAY, breaks or closes stops taking new streams at once; the next request opens a new
 * one. When the server's stream limit is reached another connection is opened beside it. Requests
 * to an endpoint that is still connecting share the one attempt. A failed or timed-out connect
 * rejects with a retryable UpstreamError: nothing was sent yet.
 */
import type { Duplex } from "node:stream";
import { errorMessage } from "../../core/errors.js";
import { UpstreamError } from "./errors.js";
import { H2Connection, type H2Limits } from "../h2/connection.js";

export interface H2PoolOptions {
  /** Give up on a connection (TCP + TLS + the server's SETTINGS) after this long. */
  connectTimeoutMs: number;
  /** Close a connection after this long without any activity. */
  idleTimeoutMs: number;
  limits?: Partial<H2Limits>;
  /** Malformed or abusive frames from an upstream (for metrics). */
  onProtocolError?(kind: string, message: string): void;
}

export const DEFAULT_H2_POOL_OPTIONS: H2PoolOptions = { connectTimeoutMs: 3_000, idleTimeoutMs: 60_000 };

interface Pending {
  connection: H2Connection;
  ready: Promise<H2Connection>;
}

export class H2ConnectionPool {
  private readonly live = new Map<string, H2Connection[]>();
  private readonly connecting = new Map<string, Pending>();
  private readonly options: H2PoolOptions;

  constructor(options: Partial<H2PoolOptions> = {}) {
    this.options = { ...DEFAULT_H2_POOL_OPTIONS, ...options };
  }

  /**
   * A connection to `key` with room for a stream, opening one with `open` (a TCP or TLS socket to
   * the endpoint) when there is none. Synchronous when a pooled connection can take the stream.
   */
  connection(key: string, open: () => Duplex): H2Connection | Promise<H2Connection> {
    const connections = this.live.get(key);
    if (connections) {
      for (const c of connections) if (c.usable && c.hasCapacity) return c;
    }
    const pending = this.connecting.get(key);
    if (pending) return pending.ready;
    return this.open(key, open);
  }

  /** Closes (gracefully) connections to endpoints that are not in `keys` any more. */
  retain(keys: ReadonlySet<string>): void {
    for (const [key, connections] of this.live) {
      if (keys.has(key)) continue;
      this.live.delete(key);
      for (const c of connections) c.close();
    }
  }

  get size(): number {
    return this.live.size;
  }

  /** Closes every connection: in-flight streams finish, or are cut after `graceMs`. */
  async close(graceMs = 5_000): Promise<void> {
    const all = [...this.live.values()].flat().concat([...this.connecting.values()].map((p) => p.connection));
    this.live.clear();
    this.connecting.clear();
    await Promise.all(
      all.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.socket.destroyed) return resolve();
            c.socket.once("close", () => resolve());
            c.close();
            setTimeout(() => c.socket.destroy(), graceMs).unref();
          }),
      ),
    );
  }

  private open(key: string, open: () => Duplex): Promise<H2Connection> {
    let socket: Duplex;
    try {
      socket = open();
    } catch (err) {
      // An UpstreamError (e.g. no certificate of our own for a meshed endpoint) keeps its code and retryability.
      if (err instanceof UpstreamError) return Promise.reject(err);
      return Promise.reject(new UpstreamError("UPSTREAM_CONNECT_FAILED", `cannot connect to ${key}: ${errorMessage(err)}`, true, { cause: err }));
    }
    let lastError: unknown;
    socket.once("error", (err) => (lastError = err));
    // Frames are batched per event-loop turn already; Nagle would only hold the batch back.
    (socket as Duplex & { setNoDelay?(on: boolean): void }).setNoDelay?.(true);
    const leave = () => {
      const list = this.live.get(key);
      if (!list) return;
      const rest = list.filter((c) => c !== connection);
      if (rest.length > 0) this.live.set(key, rest);
      else this.live.delete(key);
    };
    let settle: { resolve(c: H2Connection): void; reject(e: UpstreamError): void } | undefined;
    const connection: H2Connection = new H2Connection(socket, {
      role: "client",
      ...(this.options.limits ? { limits: this.options.limits } : {}),
      events: {
        ready: () => {
          this.connecting.delete(key);
          this.live.set(key, [...(this.live.get(key) ?? []), connection]);
          settle?.resolve(connection);
          settle = undefined;
        },
        goaway: leave,
        close: () => {
          leave();
          if (this.connecting.get(key)?.connection === connection) this.connecting.delete(key);
          const why = lastError ? errorMessage(lastError) : "closed while connecting";
          settle?.reject(new UpstreamError("UPSTREAM_CONNECT_FAILED", `cannot connect to ${key}: ${why}`, true, { cause: lastError }));
          settle = undefined;
        },
        protocolError: (kind, message) => this.options.onProtocolError?.(kind, message),
      },
    });
    // Idle: no bytes either way for a while; a connection with open streams is kept.
    (socket as Duplex & { setTimeout?(ms: number): void }).setTimeout?.(this.options.idleTimeoutMs);
    socket.on("timeout", () => {
      if (connection.openStreams === 0) {
        leave();
        connection.close();
      }
    });
    const ready = new Promise<H2Connection>((resolve, reject) => (settle = { resolve, reject }));
    const timer = setTimeout(() => {
      if (!settle) return;
      settle.reject(new UpstreamError("UPSTREAM_CONNECT_FAILED", `connecting to ${key} timed out after ${this.options.connectTimeoutMs} ms`, true));
      settle = undefined;
      socket.destroy();
    }, this.options.connectTimeoutMs);
    const clear = () => clearTimeout(timer);
    ready.then(clear, clear);
    this.connecting.set(key, { connection, ready });
    return ready;
  }
}
