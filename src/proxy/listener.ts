/**
 * The accepting side both directions share: a TCP listener that tracks its connections and HTTP/2
 * sessions, and a drain that stops accepting, tells HTTP/2 clients to go elsewhere (GOAWAY: they
 * open new streams on another connection), closes idle HTTP/1 connections, lets in-flight requests
 * finish, and cuts what is left after the grace period.
 */
import type http from "node:http";
import type { ServerHttp2Session } from "node:http2";
import net from "node:net";

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

  get isDraining(): boolean {
    return this.draining;
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
