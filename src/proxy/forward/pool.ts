/**
 * Pooled upstream HTTP/2 sessions, one per endpoint key, shared by every request to it. A session
 * that receives GOAWAY, errors or closes leaves the pool at once; the next request reconnects.
 * Concurrent requests to an endpoint that is still connecting share the one connection attempt.
 * A failed or timed-out connect rejects with a retryable UpstreamError: nothing was sent yet.
 */
import http2, { type ClientHttp2Session, type SecureClientSessionOptions } from "node:http2";
import type { Duplex } from "node:stream";
import { UpstreamError } from "./errors.js";

export interface H2PoolOptions {
  /** Give up on a connection (TCP + TLS + SETTINGS) after this long. */
  connectTimeoutMs: number;
  /** Close a session after this long without any activity. */
  idleTimeoutMs: number;
}

export const DEFAULT_H2_POOL_OPTIONS: H2PoolOptions = { connectTimeoutMs: 3_000, idleTimeoutMs: 60_000 };

interface Entry {
  ready: Promise<ClientHttp2Session>;
  session: ClientHttp2Session;
  usable: boolean;
}

export class H2SessionPool {
  private readonly entries = new Map<string, Entry>();
  private readonly options: H2PoolOptions;

  constructor(options: Partial<H2PoolOptions> = {}) {
    this.options = { ...DEFAULT_H2_POOL_OPTIONS, ...options };
  }

  /**
   * The session for `key`, opening one with `open` when there is none. `open` builds the client
   * session (plaintext or mTLS; see `connectH2`).
   */
  session(key: string, open: () => ClientHttp2Session): Promise<ClientHttp2Session> {
    const entry = this.entries.get(key);
    if (entry?.usable && !entry.session.closed && !entry.session.destroyed) return entry.ready;
    return this.open(key, open);
  }

  /** Closes (gracefully) sessions of endpoints that are not in `keys` any more. */
  retain(keys: ReadonlySet<string>): void {
    for (const [key, entry] of this.entries) {
      if (keys.has(key)) continue;
      this.entries.delete(key);
      entry.session.close();
    }
  }

  get size(): number {
    return this.entries.size;
  }

  /** Closes every session: in-flight streams finish, or are cut after `graceMs`. */
  async close(graceMs = 5_000): Promise<void> {
    const sessions = [...this.entries.values()].map((e) => e.session);
    this.entries.clear();
    await Promise.all(
      sessions.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.destroyed) return resolve();
            const timer = setTimeout(() => s.destroy(), graceMs);
            s.close(() => {
              clearTimeout(timer);
              resolve();
            });
          }),
      ),
    );
  }

  private open(key: string, open: () => ClientHttp2Session): Promise<ClientHttp2Session> {
    let session: ClientHttp2Session;
    try {
      session = open();
    } catch (err) {
      // An UpstreamError (e.g. no certificate of our own for a meshed endpoint) keeps its code and retryability.
      if (err instanceof UpstreamError) return Promise.reject(err);
      return Promise.reject(new UpstreamError("UPSTREAM_CONNECT_FAILED", `cannot connect to ${key}: ${String(err)}`, true, { cause: err }));
    }
    const entry: Entry = { session, usable: true, ready: undefined as unknown as Promise<ClientHttp2Session> };
    const leave = () => {
      entry.usable = false;
      if (this.entries.get(key) === entry) this.entries.delete(key);
    };
    entry.ready = new Promise<ClientHttp2Session>((resolve, reject) => {
      const timer = setTimeout(() => {
        fail(new UpstreamError("UPSTREAM_CONNECT_FAILED", `connecting to ${key} timed out after ${this.options.connectTimeoutMs} ms`, true));
        session.destroy();
      }, this.options.connectTimeoutMs);
      const fail = (err: UpstreamError) => {
        clearTimeout(timer);
        leave();
        reject(err);
      };
      session.once("connect", () => {
        clearTimeout(timer);
        resolve(session);
      });
      session.once("error", (err) => fail(new UpstreamError("UPSTREAM_CONNECT_FAILED", `cannot connect to ${key}: ${err.message}`, true, { cause: err })));
      session.once("close", () => fail(new UpstreamError("UPSTREAM_CONNECT_FAILED", `connection to ${key} closed while connecting`, true)));
    });
    // After connect: leave the pool on any sign of the end; streams see their own errors.
    session.on("error", leave);
    // GOAWAY: no new streams here; close our side once the in-flight ones are done.
    session.on("goaway", () => {
      leave();
      session.close();
    });
    session.on("close", leave);
    session.setTimeout(this.options.idleTimeoutMs, () => {
      leave();
      session.close();
    });
    this.entries.set(key, entry);
    return entry.ready;
  }
}

/** After our side of a closed session has ended, how long the peer gets to close its side. */
const PEER_CLOSE_GRACE_MS = 1_000;

/**
 * Opens a client session over a connection made by `createConnection` (a net or TLS socket to the
 * endpoint); `authority` only fills the defaults of :authority and :scheme, which the forwarder
 * always sets itself.
 */
export function connectH2(
  authority: string,
  createConnection: () => Duplex,
  options: Omit<SecureClientSessionOptions, "createConnection"> = {},
): ClientHttp2Session {
  return http2.connect(`http://${authority}`, {
    ...options,
    createConnection: () => {
      const socket = createConnection();
      // A gracefully closed session (e.g. after GOAWAY) ends the socket and waits for the peer to
      // close too; a peer that never does would keep the connection forever.
      socket.once("finish", () => setTimeout(() => socket.destroy(), PEER_CLOSE_GRACE_MS).unref());
      return socket;
    },
  });
}
