import { test, after } from "node:test";
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import { once } from "node:events";
import { H2SessionPool, connectH2 } from "../../src/proxy/forward/pool.js";
import { UpstreamError } from "../../src/proxy/forward/errors.js";

const server = http2.createServer();
let connections = 0;
server.on("connection", () => connections++);
server.on("stream", (s) => {
  s.respond({ ":status": 200 });
  s.end();
});
server.listen(0, "127.0.0.1");
await once(server, "listening");
const port = (server.address() as net.AddressInfo).port;
const key = `127.0.0.1:${port}`;
const pool = new H2SessionPool({ connectTimeoutMs: 2000 });
after(async () => {
  await pool.close(100);
  server.close();
});

test("concurrent requests for one endpoint share one connection attempt", async () => {
  let opened = 0;
  const open = () => {
    opened++;
    return connectH2(key, () => net.connect(port, "127.0.0.1"));
  };
  const sessions = await Promise.all([pool.session(key, open), pool.session(key, open), pool.session(key, open)]);
  assert.equal(opened, 1);
  assert.ok(sessions.every((s) => s === sessions[0]));
  assert.equal(connections, 1);
});

test("retain closes sessions of endpoints that left the set", async () => {
  const s = await pool.session(key, () => connectH2(key, () => net.connect(port, "127.0.0.1")));
  pool.retain(new Set(["10.0.0.1:80"]));
  assert.equal(pool.size, 0);
  await once(s, "close");
});

test("connect failures are retryable UpstreamErrors; an UpstreamError from open keeps its code", async () => {
  const dead = net.createServer().listen(0, "127.0.0.1");
  await once(dead, "listening");
  const deadPort = (dead.address() as net.AddressInfo).port;
  dead.close();
  const deadKey = `127.0.0.1:${deadPort}`;
  await assert.rejects(
    pool.session(deadKey, () => connectH2(deadKey, () => net.connect(deadPort, "127.0.0.1"))),
    (e: unknown) => e instanceof UpstreamError && e.code === "UPSTREAM_CONNECT_FAILED" && e.retryable,
  );
  assert.equal(pool.size, 0, "a failed connection does not stay in the pool");
  await assert.rejects(
    pool.session("meshed:1", () => {
      throw new UpstreamError("UPSTREAM_NO_IDENTITY", "no certificate yet", false);
    }),
    (e: unknown) => e instanceof UpstreamError && e.code === "UPSTREAM_NO_IDENTITY" && !e.retryable,
  );
});

test("a connection that never completes times out as a retryable failure", async () => {
  const slow = new H2SessionPool({ connectTimeoutMs: 100 });
  // TCP connects but the TLS handshake never completes: the server accepts and stays silent.
  const silent = net.createServer((s) => s.on("error", () => {}));
  silent.listen(0, "127.0.0.1");
  await once(silent, "listening");
  const silentPort = (silent.address() as net.AddressInfo).port;
  after(() => silent.close());
  const { default: tls } = await import("node:tls");
  await assert.rejects(
    slow.session("void:1", () => connectH2("void:1", () => tls.connect({ port: silentPort, host: "127.0.0.1", rejectUnauthorized: false }))),
    (e: unknown) => e instanceof UpstreamError && e.code === "UPSTREAM_CONNECT_FAILED" && e.retryable && /timed out/.test(e.message),
  );
  await slow.close(10);
});
