/**
 * The proxy's admin server (:4191): /metrics, /ready, /live and /shutdown. Readiness is decided
 * by the caller (a valid certificate and control-plane streams established once).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export interface AdminOptions {
  host: string;
  port: number;
  registry: Registry;
  /** Why the proxy is not ready, or undefined when it is. */
  notReadyReason(): string | undefined;
  /** Starts a graceful drain; the process exits when it completes. */
  shutdown(): void;
  /** Allow /shutdown only from loopback (the pod's own containers). */
  shutdownFromLoopbackOnly?: boolean;
}

export interface AdminServer {
  port: number;
  close(): Promise<void>;
}

function isLoopback(address: string | undefined): boolean {
  return !!address && (address.startsWith("127.") || address === "::1" || address === "::ffff:127.0.0.1");
}

export async function startAdminServer(options: AdminOptions): Promise<AdminServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const reply = (status: number, body: string, type = "text/plain; charset=utf-8") => {
      res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
      res.end(body);
    };
    switch (path) {
      case "/metrics":
        options.registry
          .metrics()
          .then((text) => reply(200, text, options.registry.contentType))
          .catch((err: Error) => reply(500, `metrics failed: ${err.message}\n`));
        return;
      case "/live":
        return reply(200, "live\n");
      case "/ready": {
        const reason = options.notReadyReason();
        return reason ? reply(503, `not ready: ${reason}\n`) : reply(200, "ready\n");
      }
      case "/shutdown":
        if (req.method !== "POST") return reply(405, "use POST /shutdown\n");
        if (options.shutdownFromLoopbackOnly !== false && !isLoopback(req.socket.remoteAddress)) {
          return reply(403, "shutdown is only accepted from the pod itself\n");
        }
        reply(202, "draining\n");
        options.shutdown();
        return;
      default:
        return reply(404, "not found: try /metrics, /ready, /live or POST /shutdown\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
