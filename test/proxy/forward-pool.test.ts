import { test, after } from "node:test";
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import { once } from "node:events";
import { H2ConnectionPool } from "../../src/proxy/forward/pool.js";
import { UpstreamError } from "../../src/proxy/forward/errors.js";
import { H2Connection, type StreamHandler } from "../../src/proxy/h2/connection.js";

/** A node:http2 upstream: answers every stream "ok" unless `hold` keeps it open. */
async function startUpstream(settings: http2.Settings = {}) {
  const server = http2.createServer({ settings });
  let connections = 0;
  const held: http2.ServerHttp2Stream[] = [];
  const state = { hold: false };
  server.on("connection", () => connections++);
  server.on("stream", (s) => {
    s.on("error", () => {});
    if (state.hold) return void held.push(s);
    s.respond({ ":status": 200 });
    s.end("ok");
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as net.AddressInfo).port;
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  after(() => {
    for (const s of sessions) s.destroy();
    server.close();
  });
  return {
    port,
    key: `127.0.0.1:${port}`,
    open: () => net.connect(port, "127.0.0.1"),
    connections: () => connections,
    state,
    held,
    sessions,
  };
}

const up = await startUpstream();
const pool = new H2ConnectionPool({ connectTimeoutMs: 2000 });
after(() => pool.close(100));

/** One GET on a pooled connection; resolves with the body. */
function get(connection: H2Connection): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const handler: StreamHandler = {
      headers() {},
      data(chunk) {
        chunks.push(Buffer.from(chunk));
      },
      trailers() {},
      reset: (code, cause) => reject(new Error(`reset ${code} (${cause})`)),
      closed: () => resolve(Buffer.concat(chunks).toString()),
    };
    connection.request([":method", "GET", ":scheme", "http", ":path", "/", ":authority", "up"], true, handler);
  });
}

test("concurrent requests for one endpoint share one connection attempt; then the pooled connection comes at once", async () => {
  let opened = 0;
  const open = () => {
    opened++;
    return up.open();
  };
  const pending = [pool.connection(up.key, open), pool.connection(up.key, open), pool.connection(up.key, open)];
  assert.ok(pending.every((p) => p instanceof Promise), "nothing pooled yet");
  const connections = await Promise.all(pending);
  assert.equal(opened, 1);
  assert.ok(connections.every((c) => c === connections[0]));
  assert.equal(up.connections(), 1);
  assert.equal(pool.size, 1);
  const again = pool.connection(up.key, open);
  assert.equal(again, connections[0], "synchronous when pooled");
  assert.equal(await get(connections[0]!), "ok");
  assert.equal(opened, 1);
});

test("retain closes connections of endpoints that left the set", async () => {
  const c = await pool.connection(up.key, up.open);
  assert.equal(await get(c), "ok");
  pool.retain(new Set([up.key]));
  assert.equal(pool.size, 1, "a retained endpoint keeps its connection");
  pool.retain(new Set(["10.0.0.1:80"]));
  assert.equal(pool.size, 0);
  if (!c.socket.destroyed) await once(c.socket, "close");
  assert.equal(c.closed, true);
});

test("connect failures are retryable UpstreamErrors; an UpstreamError from open keeps its code", async () => {
  const dead = net.createServer().listen(0, "127.0.0.1");
  await once(dead, "listening");
  const deadPort = (dead.address() as net.AddressInfo).port;
  dead.close();
  const deadKey = `127.0.0.1:${deadPort}`;
  await assert.rejects(
    Promise.resolve(pool.connection(deadKey, () => net.connect(deadPort, "127.0.0.1"))),
    (e: unknown) => e instanceof UpstreamError && e.code === "UPSTREAM_CONNECT_FAILED" && e.retryable && /ECONNREFUSED/.test(e.message),
  );
  assert.equal(pool.size, 0, "a failed connection does not stay in the pool");
  // The next request tries again rather than getting the old failure.
  let opened = 0;
  await assert.rejects(Promise.resolve(pool.connection(deadKey, () => (opened++, net.connect(deadPort, "127.0.0.1")))));
  assert.equal(opened, 1);
  await assert.rejects(
    Promise.resolve(
      pool.connection("meshed:1", () => {
        throw new UpstreamError("UPSTREAM_NO_IDENTITY", "no certificate yet", false);
      }),
    ),
    (e: unknown) => e instanceof UpstreamError && e.code === "UPSTREAM_NO_IDENTITY" && !e.retryable,
  );
  await assert.rejects(
    Promise.resolve(
      pool.connection("broken:1", () => {
        throw new Error("bad address");
      }),
    ),
    (e: unknown) => e instanceof UpstreamError && e.code === "UPSTREAM_CONNECT_FAILED" && e.retryable && /bad address/.test(e.message),
  );
});

test("a connection that never completes times out as a retryable failure", async () => {
  const slow = new H2ConnectionPool({ connectTimeoutMs: 100 });
  // TCP connects but the TLS handshake never completes: the server accepts and stays silent.
  const accepted: net.Socket[] = [];
  const silent = net.createServer((s) => {
    accepted.push(s);
    s.on("error", () => {});
  });
  silent.listen(0, "127.0.0.1");
  await once(silent, "listening");
  const silentPort = (silent.address() as net.AddressInfo).port;
  after(() => {
    for (const s of accepted) s.destroy();
    silent.close();
  });
  const { default: tls } = await import("node:tls");
  await assert.rejects(
    Promise.resolve(slow.connection("void:1", () => tls.connect({ port: silentPort, host: "127.0.0.1", rejectUnauthorized: false }))),
    (e: unknown) => e instanceof UpstreamError && e.code === "UPSTREAM_CONNECT_FAILED" && e.retryable && /timed out/.test(e.message),
  );
  // Plain TCP that connects but never sends SETTINGS (not an HTTP/2 server) is not usable either.
  await assert.rejects(
    Promise.resolve(slow.connection("void:2", () => net.connect(silentPort, "127.0.0.1"))),
    (e: unknown) => e instanceof UpstreamError && e.code === "UPSTREAM_CONNECT_FAILED" && e.retryable && /timed out/.test(e.message),
  );
  assert.equal(slow.size, 0);
  await slow.close(10);
});

test("a connection that received GOAWAY takes no new streams: the next request opens a new one", async () => {
  const u = await startUpstream();
  const p = new H2ConnectionPool({ connectTimeoutMs: 2000 });
  after(() => p.close(10));
  const first = await p.connection(u.key, u.open);
  assert.equal(await get(first), "ok");
  for (const s of u.sessions) s.goaway(http2.constants.NGHTTP2_NO_ERROR);
  const started = Date.now();
  while (first.usable && Date.now() - started < 5000) await new Promise((r) => setTimeout(r, 10));
  assert.equal(first.usable, false);
  const second = await p.connection(u.key, u.open);
  assert.notEqual(second, first);
  assert.equal(await get(second), "ok");
  assert.equal(u.connections(), 2);
});

test("a connection at the server's stream limit gets a second connection beside it", async () => {
  const u = await startUpstream({ maxConcurrentStreams: 2 });
  u.state.hold = true;
  const p = new H2ConnectionPool({ connectTimeoutMs: 2000 });
  after(() => p.close(10));
  const first = await p.connection(u.key, u.open);
  const ignore: StreamHandler = { headers() {}, data() {}, trailers() {}, reset() {}, closed() {} };
  const request = [":method", "GET", ":scheme", "http", ":path", "/", ":authority", "up"];
  first.request(request, true, ignore);
  assert.equal(p.connection(u.key, u.open), first, "room for one more");
  first.request(request, true, ignore);
  assert.equal(first.hasCapacity, false);
  const second = await p.connection(u.key, u.open);
  assert.notEqual(second, first);
  assert.equal(u.connections(), 2);
  assert.equal(p.size, 1, "one endpoint");
});

test("an idle connection is closed and leaves the pool; one with open streams is kept", async () => {
  const u = await startUpstream();
  u.state.hold = true;
  const p = new H2ConnectionPool({ connectTimeoutMs: 2000, idleTimeoutMs: 150 });
  after(() => p.close(10));
  const busy = await p.connection(u.key, u.open);
  busy.request([":method", "GET", ":scheme", "http", ":path", "/", ":authority", "up"], true, {
    headers() {},
    data() {},
    trailers() {},
    reset() {},
    closed() {},
  });
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(busy.closed, false, "a connection with an open stream stays");
  assert.equal(p.connection(u.key, u.open), busy);
  // The held stream ends: now the connection is idle and goes.
  for (const s of u.held) {
    s.respond({ ":status": 200 });
    s.end();
  }
  const started = Date.now();
  while (!busy.closed && Date.now() - started < 5000) await new Promise((r) => setTimeout(r, 20));
  assert.equal(busy.closed, true);
  assert.equal(p.size, 0);
});
