/**
 * The proxy's admin server (:4191): the shared admin routes (src/api/admin-server.ts) plus
 * `POST /shutdown`. Readiness is decided by the caller (a valid certificate and control-plane
 * streams established once).
 */
import type { Registry } from "prom-client";
import { startAdminServer, type AdminServer } from "../api/admin-server.js";

export type { AdminServer };

export interface ProxyAdminOptions {
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

function isLoopback(address: string | undefined): boolean {
  return !!address && (address.startsWith("127.") || address === "::1" || address === "::ffff:127.0.0.1");
}

export function startProxyAdmin(options: ProxyAdminOptions): Promise<AdminServer> {
  return startAdminServer({
    host: options.host,
    port: options.port,
    registries: [options.registry],
    notReadyReason: options.notReadyReason,
    routes: {
      "/shutdown": (req, reply) => {
        if (req.method !== "POST") return reply(405, "use POST /shutdown\n");
        if (options.shutdownFromLoopbackOnly !== false && !isLoopback(req.socket.remoteAddress)) {
          return reply(403, "shutdown is only accepted from the pod itself\n");
        }
        reply(202, "draining\n");
        options.shutdown();
      },
    },
  });
}
