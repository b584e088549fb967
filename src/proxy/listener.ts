/**
 * The accepting side both directions share: a TCP listener that tracks its connections and HTTP/2
 * sessions, and a drain that stops accepting, tells HTTP/2 clients to go elsewhere (GOAWAY: they
 * open new streams on another connection), closes idle HTTP/1 connections, lets in-flight requests
 * finish, and cuts what is left after the grace period.
 */
import http from "node:http";
import type { ServerHttp2Session } from "node:http2";
import net from "node:net";
import type { Logger } from "pino";
import { errorMessage } from "../identity/errors.js";
import type { H1AgentPool } from "./forward/h1.js";
import type { H2SessionPool } from "./forward/pool.js";

export class TrackedListener {
  readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly sessions = new Set<ServerHttp2Session>();
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

  /** Registers an HTTP/2 session served on one of our connections (so drain can GOAWAY it). */
  track(session: ServerHttp2Session): void {
    if (this.draining) {
      session.close();
      return;
    }
    this.sessions.add(session);
    session.once("close", () => this.sessions.delete(session));
  }

  async drain(graceMs: number, h1Server: http.Server): Promise<void> {
    this.draining = true;
    this.server.close();
    for (const session of this.sessions) session.close();
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
 * What both proxy directions share: the tracked listener, the HTTP/1 server detected connections
 * are handed to, the pooled upstream connections, and the drain that closes them in order.
 */
export abstract class ProxySide {
  protected readonly listener: TrackedListener;
  protected readonly h1Server = http.createServer({ keepAlive: true });

  constructor(
    direction: "inbound" | "outbound",
    logger: Logger,
    private readonly address: { host: string; port: number },
    protected readonly h2Pool: H2SessionPool,
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
