/**
 * The accepting side both directions share: a TCP listener that tracks its connections and HTTP/2
 * sessions, and a drain that stops accepting, tells HTTP/2 clients to go elsewhere (GOAWAY: they
 * open new streams on another connection), closes idle HTTP/1 connections, lets in-flight requests
 * finish, and cuts what is left after the grace period.
 */
import http from "node:http";
import net from "node:net";
import type { Logger } from "pino";
import { errorMessage } from "../core/errors.js";
import type { Detection } from "./detect.js";
import { serveHttp1Connection, type H1AgentPool } from "./forward/h1.js";
import type { H2ConnectionPool } from "./forward/pool.js";
import { H2Connection, type H2Stream } from "./h2/connection.js";
import type { HeaderFields } from "./h2/fields.js";
import type { Direction, ProxyMetrics } from "./metrics.js";

export class TrackedListener {
  readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly connections = new Set<H2Connection>();
  private draining = false;

  constructor(onConnection: (socket: net.Socket) => void) {
    this.server = net.createServer({ allowHalfOpen: true }, (socket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
      onConnection(socket);
    });
  }

  async listen(host: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => resolve());
    });
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Registers an HTTP/2 connection we serve (so drain can GOAWAY it). */
  track(connection: H2Connection): void {
    if (this.draining) {
      connection.close();
      return;
    }
    this.connections.add(connection);
    connection.socket.once("close", () => this.connections.delete(connection));
  }

  async drain(graceMs: number, h1Server: http.Server): Promise<void> {
    this.draining = true;
    this.server.close();
    for (const connection of this.connections) connection.close();
    h1Server.closeIdleConnections();
    const deadline = Date.now() + graceMs;
    while (this.sockets.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      h1Server.closeIdleConnections();
    }
    for (const socket of this.sockets) socket.destroy();
  }
}

/**
 * What both proxy directions share: the tracked listener, the hand-off of a detected connection to
 * its protocol (HTTP/2, the HTTP/1 server, opaque TCP), the pooled upstream connections, and the
 * drain that closes them in order. `Context` is what a direction knows of one accepted connection
 * (inbound: port, client and policy; outbound: the destination and its balancer).
 */
export abstract class ProxySide<Context extends object> {
  protected readonly listener: TrackedListener;
  protected readonly h1Server = http.createServer({ keepAlive: true });
  /** The context of each connection handed to the HTTP/1 server, for its requests. */
  protected readonly h1Contexts = new WeakMap<net.Socket, Context>();

  constructor(
    private readonly direction: Direction,
    logger: Logger,
    private readonly metrics: ProxyMetrics,
    private readonly address: { host: string; port: number },
    protected readonly h2Pool: H2ConnectionPool,
    protected readonly h1Agents: H1AgentPool,
  ) {
    this.listener = new TrackedListener((socket) => {
      this.onConnection(socket).catch((err) => {
        logger.error({ err: errorMessage(err) }, `${direction} connection failed unexpectedly`);
        socket.destroy();
      });
    });
    this.h1Server.on("request", (req, res) => void this.onH1Request(req, res));
    this.h1Server.on("upgrade", (req, socket: net.Socket, head: Buffer) => void this.onH1Upgrade(req, socket, head));
  }

  protected abstract onConnection(socket: net.Socket): Promise<void>;
  protected abstract onH1Request(req: http.IncomingMessage, res: http.ServerResponse): Promise<void>;
  protected abstract onH1Upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): Promise<void>;
  protected abstract onH2Stream(stream: H2Stream, fields: HeaderFields, endStream: boolean, context: Context): void;
  protected abstract forwardOpaque(socket: net.Socket, context: Context, replay: Buffer | undefined): Promise<void>;

  /**
   * Serves an accepted (and, inbound, TLS-terminated) connection by its detected protocol. An
   * opaque connection is forwarded until it closes (the promise); the others are served from here.
   */
  protected serveDetected(socket: net.Socket, detection: Pick<Detection, "protocol" | "unshifted" | "buffered">, context: Context): Promise<void> | void {
    switch (detection.protocol) {
      case "h2": {
        const connection = new H2Connection(socket, {
          role: "server",
          events: {
            stream: (stream, fields, endStream) => this.onH2Stream(stream, fields, endStream, context),
            protocolError: (kind) => this.metrics.protocolErrors.inc({ direction: this.direction, kind }),
          },
        });
        return this.listener.track(connection);
      }
      case "http1":
        this.h1Contexts.set(socket, context);
        return serveHttp1Connection(this.h1Server, socket);
      case "opaque":
        return this.forwardOpaque(socket, context, detection.unshifted ? undefined : detection.buffered);
    }
  }

  listen(): Promise<number> {
    return this.listener.listen(this.address.host, this.address.port);
  }

  /** Stops accepting; resolves when open connections have finished (or `graceMs` passed). */
  async drain(graceMs: number): Promise<void> {
    await this.listener.drain(graceMs, this.h1Server);
    await this.h2Pool.close(0);
    this.h1Agents.close();
  }
}
