/**
 * `tether dashboard`: polls a window source on an interval, keeps a short history, and serves
 * one page (static files from ./static, uPlot from node_modules) with a JSON and an SSE API:
 *   GET /api/state   {source, intervalMs, error?, points[], latest, denials[]}
 *   GET /api/events  text/event-stream, one `snapshot` event per poll: {at, snapshot, denials, error?}
 * Nothing is fetched from the internet. Listens on loopback unless told otherwise.
 */
import { readFile } from "node:fs/promises";
import http from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";
import { History, snapshotOf } from "./snapshot.js";
import type { WindowSource } from "./sources.js";
import { hostPort } from "../api/address.js";

export interface DashboardOptions {
  source: WindowSource;
  host?: string;
  port?: number;
  intervalMs?: number;
  logger: Logger;
  now?: () => number;
}

export interface Dashboard {
  url: string;
  port: number;
  /** Polls once now (tests use it to avoid waiting for the interval). */
  pollNow(): Promise<void>;
  close(): Promise<void>;
}

const STATIC_DIR = join(dirname(fileURLToPath(import.meta.url)), "static");
const UPLOT_DIR = dirname(createRequire(import.meta.url).resolve("uplot"));

/** The only files served: a fixed table, so no request path ever reaches the filesystem. */
const FILES: Record<string, { path: string; type: string }> = {
  "/": { path: join(STATIC_DIR, "index.html"), type: "text/html; charset=utf-8" },
  "/app.js": { path: join(STATIC_DIR, "app.js"), type: "text/javascript; charset=utf-8" },
  "/style.css": { path: join(STATIC_DIR, "style.css"), type: "text/css; charset=utf-8" },
  "/vendor/uPlot.iife.min.js": { path: join(UPLOT_DIR, "uPlot.iife.min.js"), type: "text/javascript; charset=utf-8" },
  "/vendor/uPlot.min.css": { path: join(UPLOT_DIR, "uPlot.min.css"), type: "text/css; charset=utf-8" },
};

export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const now = options.now ?? Date.now;
  const intervalMs = options.intervalMs ?? 2000;
  const log = options.logger.child({ component: "dashboard" });
  const history = new History();
  const clients = new Set<http.ServerResponse>();
  let lastError: string | undefined;
  let primed = !options.source.needsPriming;
  let polling: Promise<void> | undefined;

  async function pollOnce(): Promise<void> {
    try {
      const windows = await options.source.poll();
      lastError = undefined;
      if (!primed) {
        primed = true;
        return;
      }
      const snapshot = snapshotOf(windows, now());
      history.add(snapshot);
      broadcast({ at: snapshot.at, snapshot, denials: history.state().denials });
    } catch (err) {
      lastError = (err as Error).message;
      log.warn({ err: lastError }, "poll failed");
      broadcast({ at: now(), error: lastError });
    }
  }
  // One poll at a time: a slow scrape delays the next tick rather than piling up.
  const pollNow = () => (polling ??= pollOnce().finally(() => (polling = undefined)));

  function broadcast(event: unknown): void {
    const data = `event: snapshot\ndata: ${JSON.stringify(event)}\n\n`;
    for (const res of clients) res.write(data);
  }

  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { "content-type": "text/plain" }).end("only GET\n");
      return;
    }
    if (path === "/api/state") {
      const body = JSON.stringify({ source: options.source.describe(), intervalMs, ...(lastError ? { error: lastError } : {}), ...history.state() });
      res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" }).end(body);
      return;
    }
    if (path === "/api/events") {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" });
      res.write(`retry: ${intervalMs}\n\n`);
      clients.add(res);
      req.on("close", () => clients.delete(res));
      return;
    }
    const file = FILES[path];
    if (!file) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: the dashboard is at /\n");
      return;
    }
    readFile(file.path)
      .then((content) => res.writeHead(200, { "content-type": file.type, "cache-control": "no-cache" }).end(content))
      .catch((err: Error) => {
        log.error({ err: err.message, file: file.path }, "static file missing");
        res.writeHead(500, { "content-type": "text/plain" }).end("dashboard file missing from the installation\n");
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host ?? "127.0.0.1";

  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const tick = () => {
    void pollNow().finally(() => {
      if (!stopped) timer = setTimeout(tick, intervalMs);
    });
  };
  tick();

  return {
    url: `http://${hostPort(host, port)}/`,
    port,
    pollNow,
    async close() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await polling;
      for (const res of clients) res.end();
      clients.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
