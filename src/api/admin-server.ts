/**
 * The admin HTTP server every tether process runs (proxy :4191, CA, controller, injector): one
 * set of rules for all of them.
 *
 * - `GET /metrics`: the Prometheus text of the process's registries.
 * - `GET /ready`: 200 `ready`, or 503 `not ready: REASON` while `notReadyReason()` names one.
 * - `GET /live`: 200 while the process answers at all.
 * - component routes (e.g. the proxy's `POST /shutdown`), given by the caller.
 * - anything else: 404 naming the routes there are.
 */
import http, { type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { Registry } from "prom-client";

/** Answers a request: status, text body, and a content type (plain text by default). */
export type AdminReply = (status: number, body: string, contentType?: string) => void;
export type AdminRoute = (req: IncomingMessage, reply: AdminReply) => void;

export interface AdminServerOptions {
  host: string;
  /** 0 for an ephemeral port. */
  port: number;
  /** Served together on /metrics (metric names must not repeat across them). */
  registries: readonly Registry[];
  /** Why the process is not ready to serve, or undefined when it is. */
  notReadyReason(): string | undefined;
  /** Routes of the component besides the three above, by path. */
  routes?: Readonly<Record<string, AdminRoute>>;
}

export interface AdminServer {
  port: number;
  close(): Promise<void>;
}

const TEXT = "text/plain; charset=utf-8";

function metricsText(registries: readonly Registry[]): Promise<{ text: string; type: string }> {
  const registry = registries.length === 1 ? registries[0]! : Registry.merge([...registries]);
  return registry.metrics().then((text) => ({ text, type: registry.contentType }));
}

export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const routes: Record<string, AdminRoute> = {
    "/metrics": (_req, reply) => {
      metricsText(options.registries).then(
        ({ text, type }) => reply(200, text, type),
        (err: Error) => reply(500, `metrics failed: ${err.message}\n`),
      );
    },
    "/ready": (_req, reply) => {
      const reason = options.notReadyReason();
      return reason === undefined ? reply(200, "ready\n") : reply(503, `not ready: ${reason}\n`);
    },
    "/live": (_req, reply) => reply(200, "live\n"),
    ...options.routes,
  };
  const known = Object.keys(routes).join(", ");
  const server = http.createServer((req, res) => {
    const reply: AdminReply = (status, body, contentType = TEXT) => {
      res.writeHead(status, { "content-type": contentType, "cache-control": "no-store" });
      res.end(body);
    };
    const route = routes[(req.url ?? "/").split("?")[0]!];
    if (route) route(req, reply);
    else reply(404, `not found: try ${known}\n`);
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
