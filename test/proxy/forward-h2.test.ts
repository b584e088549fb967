import { test, after } from "node:test";
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import { once } from "node:events";
import { createHash } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { forwardH2, type H2ForwardOptions, type H2ForwardResult, type Upstream } from "../../src/proxy/forward/h2.js";
import { H2SessionPool, connectH2 } from "../../src/proxy/forward/pool.js";
import { UpstreamError } from "../../src/proxy/forward/errors.js";
import { proxyHttp2ServerOptions } from "../../src/proxy/forward/server-options.js";
import { detectProtocol } from "../../src/proxy/detect.js";
import { EchoClient, startEchoServer, startUnary, unary, UNLIMITED, type EchoClientT } from "./fixtures/grpc-echo.js";

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Proxy {
  port: number;
  results: H2ForwardResult[];
  outcomes: string[];
  pool: H2SessionPool;
}

/** An upstream for a fixed port on loopback, recording what the balancer would have been told. */
function upstreamTo(pool: H2SessionPool, port: number, outcomes: string[]): Upstream {
  const key = `127.0.0.1:${port}`;
  return {
    session: () => pool.session(key, () => connectH2(key, () => net.connect(port, "127.0.0.1"))),
    done: (o) => outcomes.push(`${port}:done:${o.ok}`),
    failed: () => outcomes.push(`${port}:failed`),
    cancel: () => outcomes.push(`${port}:cancel`),
  };
}

/** The h2 forwarder behind a detecting TCP listener, as the proxy composes it. */
async function startProxy(choose: (pool: H2SessionPool, outcomes: string[]) => H2ForwardOptions["choose"]): Promise<Proxy> {
  const pool = new H2SessionPool({ connectTimeoutMs: 2000 });
  const results: H2ForwardResult[] = [];
  const outcomes: string[] = [];
  const h2 = http2.createServer(proxyHttp2ServerOptions());
  const options: H2ForwardOptions = { choose: choose(pool, outcomes) };
  h2.on("stream", (stream, headers) => void forwardH2(stream, headers, options).then((r) => results.push(r)));
  const sockets = new Set<net.Socket>();
  const tcp = net.createServer(async (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    const d = await detectProtocol(socket, { timeoutMs: 1000 });
    assert.equal(d.protocol, "h2");
    h2.emit("connection", socket);
  });
  tcp.listen(0, "127.0.0.1");
  await once(tcp, "listening");
  cleanups.push(async () => {
    await pool.close(100);
    for (const s of sockets) s.destroy();
    tcp.close();
    h2.close();
  });
  return { port: (tcp.address() as net.AddressInfo).port, results, outcomes, pool };
}

function client(port: number): EchoClientT {
  const c = new EchoClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), UNLIMITED) as EchoClientT;
  cleanups.push(() => c.close());
  return c;
}

const echo = await startEchoServer();
cleanups.push(() => echo.close());
const proxy = await startProxy((pool, outcomes) => () => upstreamTo(pool, echo.port, outcomes));
const c = client(proxy.port);

test("unary gRPC through the forwarder: message, metadata and trailers unchanged; one pooled session", async () => {
  const md = new grpc.Metadata();
  md.set("x-request-id", "abc-123");
  for (let i = 0; i < 5; i++) {
    const r = await unary(c, "unary", Buffer.from(`hello ${i}`), { metadata: md });
    assert.equal(r.err, undefined);
    assert.equal(r.value?.toString(), `hello ${i}`);
    assert.deepEqual(r.trailers?.get("x-echo-bytes"), [String(`hello ${i}`.length)]);
  }
  const last = echo.seen.at(-1)!;
  assert.deepEqual(last.get("x-request-id"), ["abc-123"]);
  assert.equal(proxy.pool.size, 1);
  assert.ok(proxy.outcomes.every((o) => o.endsWith(":done:true")));
});

test("server streaming with trailers, and an error status passed through as is", async () => {
  const req = Buffer.alloc(8);
  req.writeUInt32BE(20, 0);
  req.writeUInt32BE(1000, 4);
  const call = c.stream!(req) as grpc.ClientReadableStream<Buffer>;
  const got: Buffer[] = [];
  call.on("data", (m: Buffer) => got.push(m));
  const [status] = (await once(call, "status")) as [grpc.StatusObject];
  assert.equal(status.code, grpc.status.OK);
  assert.deepEqual(status.metadata.get("x-sent"), ["20"]);
  assert.equal(got.length, 20);
  assert.ok(got.every((m, i) => m.length === 1000 && m[0] === i));

  const r = await unary(c, "fail", Buffer.from("x"));
  assert.equal(r.err?.code, grpc.status.NOT_FOUND);
  assert.equal(r.err?.details, "no such thing");
});

test("large messages both ways (flow control): 16 MiB unary and 64 x 512 KiB streamed", async () => {
  const big = Buffer.alloc(16 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i);
  const r = await unary(c, "unary", big);
  assert.equal(r.err, undefined);
  assert.equal(createHash("sha256").update(r.value!).digest("hex"), createHash("sha256").update(big).digest("hex"));

  const req = Buffer.alloc(8);
  req.writeUInt32BE(64, 0);
  req.writeUInt32BE(512 * 1024, 4);
  const call = c.stream!(req) as grpc.ClientReadableStream<Buffer>;
  let bytes = 0;
  call.on("data", (m: Buffer) => (bytes += m.length));
  const [status] = (await once(call, "status")) as [grpc.StatusObject];
  assert.equal(status.code, grpc.status.OK);
  assert.equal(bytes, 64 * 512 * 1024);
});

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms))),
  ]);
}

test("a call cancelled by the client is cancelled on the server", async () => {
  const started = echo.hangStarted();
  const cancelled = echo.hangCancelled();
  const { call, result } = startUnary(c, "hang", Buffer.from("x"));
  await within(started, 5000, "the call to reach the server");
  call.cancel();
  assert.equal((await result).err?.code, grpc.status.CANCELLED);
  await within(cancelled, 5000, "the server to see the cancellation");
});

test("a client deadline ends the call with DEADLINE_EXCEEDED and cancels it on the server", async () => {
  const cancelled = echo.hangCancelled();
  const r = await unary(c, "hang", Buffer.from("x"), { deadlineMs: 300 });
  assert.equal(r.err?.code, grpc.status.DEADLINE_EXCEEDED);
  await within(cancelled, 5000, "the server to see the cancellation");
});

/** A raw HTTP/2 request to the proxy (to see exactly what the proxy itself sends). */
async function raw(port: number, headers: http2.OutgoingHttpHeaders, body?: Buffer) {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on("error", () => {});
  try {
    const req = session.request(headers);
    req.on("error", () => {});
    const chunks: Buffer[] = [];
    req.on("data", (d: Buffer) => chunks.push(d));
    let trailers: http2.IncomingHttpHeaders | undefined;
    req.on("trailers", (t) => (trailers = t));
    const response = once(req, "response") as Promise<[http2.IncomingHttpHeaders, number]>;
    req.end(body);
    const closed = once(req, "close");
    const [h, flags] = await within(response, 5000, "a response");
    await within(closed, 5000, "the stream to close");
    return { headers: h, endStream: (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0, body: Buffer.concat(chunks), trailers, rstCode: req.rstCode };
  } finally {
    session.close();
  }
}

function grpcFrame(payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

test("the proxy enforces grpc-timeout itself: trailers-only DEADLINE_EXCEEDED, upstream cancelled", async () => {
  const cancelled = echo.hangCancelled();
  const outcomesBefore = proxy.outcomes.length;
  const r = await raw(
    proxy.port,
    { ":method": "POST", ":path": "/test.Echo/Hang", "content-type": "application/grpc", te: "trailers", "grpc-timeout": "200m" },
    grpcFrame(Buffer.from("x")),
  );
  assert.equal(r.headers[":status"], 200);
  assert.equal(r.headers["grpc-status"], "4");
  assert.equal(r.endStream, true, "trailers-only");
  await within(cancelled, 5000, "the server to see the cancellation");
  assert.ok(proxy.results.some((x) => x.error === "DEADLINE_EXCEEDED" && x.grpcStatus === 4));
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(proxy.outcomes.slice(outcomesBefore), [`${echo.port}:done:false`], "the balancer hears of it once");
});

test("connect failures are retried on another endpoint; with none left gRPC gets UNAVAILABLE and HTTP a 502", async () => {
  const dead = net.createServer();
  dead.listen(0, "127.0.0.1");
  await once(dead, "listening");
  const deadPort = (dead.address() as net.AddressInfo).port;
  dead.close(); // nothing listens there any more: connection refused
  const order = [deadPort, echo.port];
  const retrying = await startProxy((pool, outcomes) => (_h, attempt) => upstreamTo(pool, order[attempt % 2]!, outcomes));
  const rc = client(retrying.port);
  const ok = await unary(rc, "unary", Buffer.from("retried"));
  assert.equal(ok.value?.toString(), "retried");
  assert.deepEqual(retrying.outcomes, [`${deadPort}:failed`, `${echo.port}:done:true`]);

  const broken = await startProxy((pool, outcomes) => () => upstreamTo(pool, deadPort, outcomes));
  const r = await unary(client(broken.port), "unary", Buffer.from("x"));
  assert.equal(r.err?.code, grpc.status.UNAVAILABLE);
  assert.deepEqual(r.err?.metadata.get("tether-error"), ["UPSTREAM_CONNECT_FAILED"]);
  assert.equal(broken.outcomes.filter((o) => o.endsWith(":failed")).length, 3, "three attempts");

  const http = await raw(broken.port, { ":method": "GET", ":path": "/" });
  assert.equal(http.headers[":status"], 502);
  assert.equal(http.headers["tether-error"], "UPSTREAM_CONNECT_FAILED");

  // Our own refusal (no certificate for a meshed endpoint) is final and does not back the endpoint off.
  const noIdentity = await startProxy((_pool, outcomes) => () => ({
    session: () => Promise.reject(new UpstreamError("UPSTREAM_NO_IDENTITY", "no certificate of our own yet", false)),
    done: () => outcomes.push("done"),
    failed: () => outcomes.push("failed"),
    cancel: () => outcomes.push("cancel"),
  }));
  const refused = await unary(client(noIdentity.port), "unary", Buffer.from("x"));
  assert.equal(refused.err?.code, grpc.status.UNAVAILABLE);
  assert.deepEqual(refused.err?.metadata.get("tether-error"), ["UPSTREAM_NO_IDENTITY"]);
  assert.deepEqual(noIdentity.outcomes, ["cancel"]);

  const empty = await startProxy(() => () => {
    throw new UpstreamError("UPSTREAM_NO_ENDPOINTS", "no endpoints for web.shop.svc:80", false);
  });
  const none = await raw(empty.port, { ":method": "GET", ":path": "/" });
  assert.equal(none.headers[":status"], 503);
  assert.equal(none.headers["tether-error"], "UPSTREAM_NO_ENDPOINTS");
  assert.match(none.body.toString(), /no endpoints/);
});

/** A raw HTTP/2 upstream whose behaviour each test sets. */
async function rawUpstream(onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void) {
  const server = http2.createServer();
  let connections = 0;
  server.on("connection", () => connections++);
  server.on("stream", onStream);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  cleanups.push(() => server.close());
  return { port: (server.address() as net.AddressInfo).port, connections: () => connections };
}

test("HTTP/2: hop-by-hop headers removed, te: trailers kept, request and response trailers forwarded", async () => {
  let seen: http2.IncomingHttpHeaders | undefined;
  let seenTrailers: http2.IncomingHttpHeaders | undefined;
  const up = await rawUpstream((stream, headers) => {
    seen = headers;
    stream.on("trailers", (t) => (seenTrailers = t));
    stream.resume();
    stream.on("end", () => {
      stream.respond({ ":status": 201, "x-up": "1" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "x-checksum": "abc" }));
      stream.end("payload");
    });
  });
  const p = await startProxy((pool, outcomes) => () => upstreamTo(pool, up.port, outcomes));
  const session = http2.connect(`http://127.0.0.1:${p.port}`);
  cleanups.push(() => session.close());
  const req = session.request({ ":method": "POST", ":path": "/upload?x=1", te: "trailers", "x-custom": "v" }, { waitForTrailers: true });
  req.on("wantTrailers", () => req.sendTrailers({ "x-req-trailer": "t" }));
  let trailers: http2.IncomingHttpHeaders | undefined;
  req.on("trailers", (t) => (trailers = t));
  const response = once(req, "response") as Promise<[http2.IncomingHttpHeaders]>;
  const chunks: Buffer[] = [];
  req.on("data", (d: Buffer) => chunks.push(d));
  const ended = once(req, "end");
  req.end("body");
  const [h] = await within(response, 5000, "the response");
  await within(ended, 5000, "the end of the body");
  assert.equal(h[":status"], 201);
  assert.equal(h["x-up"], "1");
  assert.equal(Buffer.concat(chunks).toString(), "payload");
  assert.equal(trailers?.["x-checksum"], "abc");
  assert.equal(seen?.[":path"], "/upload?x=1");
  assert.equal(seen?.["te"], "trailers");
  assert.equal(seen?.["x-custom"], "v");
  assert.equal(seenTrailers?.["x-req-trailer"], "t");
});

test("an upstream reset resets the client stream; GOAWAY makes the pool reconnect", async () => {
  let n = 0;
  const up = await rawUpstream((stream) => {
    n++;
    if (n === 1) {
      stream.on("error", () => {}); // closing with a code errors our own side too
      stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      return;
    }
    stream.respond({ ":status": 200 });
    stream.end(`answer ${n}`);
    if (n === 2) stream.session!.goaway(http2.constants.NGHTTP2_NO_ERROR);
  });
  const p = await startProxy((pool, outcomes) => () => upstreamTo(pool, up.port, outcomes));
  const session = http2.connect(`http://127.0.0.1:${p.port}`);
  cleanups.push(() => session.close());
  const req = session.request({ ":path": "/" });
  req.on("error", () => {});
  req.end();
  await within(new Promise((r) => req.once("close", r)), 5000, "the reset");
  assert.equal(req.rstCode, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);

  const second = await raw(p.port, { ":path": "/" });
  assert.equal(second.body.toString(), "answer 2");
  await new Promise((r) => setTimeout(r, 50)); // let the GOAWAY arrive
  const third = await raw(p.port, { ":path": "/" });
  assert.equal(third.body.toString(), "answer 3");
  assert.equal(up.connections(), 2, "a new session after GOAWAY");
});
