import { test, after } from "node:test";
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import { once } from "node:events";
import { createHash } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { systemClock } from "../../src/core/clock.js";
import { forwardH2, RETRY_BUFFER_LIMIT, type H2ForwardOptions, type H2ForwardResult, type H2Upstream } from "../../src/proxy/forward/h2.js";
import { H2ConnectionPool, type H2PoolOptions } from "../../src/proxy/forward/pool.js";
import { UpstreamError } from "../../src/proxy/forward/errors.js";
import { H2Connection, type H2Stream } from "../../src/proxy/h2/connection.js";
import { fieldValue, type HeaderFields } from "../../src/proxy/h2/fields.js";
import { detectProtocol } from "../../src/proxy/detect.js";
import { EchoClient, startEchoServer, startUnary, unary, UNLIMITED, type EchoClientT } from "./fixtures/grpc-echo.js";
import { E, F, frame, PREFACE, RawPeer, request, S, settings, T, u32 } from "./fixtures/h2-raw.js";

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Proxy {
  port: number;
  results: H2ForwardResult[];
  outcomes: string[];
  pool: H2ConnectionPool;
  /** The proxy's server-side connections (one per client connection) and the streams on them. */
  connections: H2Connection[];
  streams: H2Stream[];
}

/** An upstream for a fixed port on loopback, recording what the balancer would have been told. */
function upstreamTo(pool: H2ConnectionPool, port: number, outcomes: string[]): H2Upstream {
  const key = `127.0.0.1:${port}`;
  return {
    connection: () => pool.connection(key, () => net.connect(port, "127.0.0.1")),
    done: (o) => outcomes.push(`${port}:done:${o.ok}`),
    failed: () => outcomes.push(`${port}:failed`),
    cancel: () => outcomes.push(`${port}:cancel`),
  };
}

/** The h2 forwarder behind a detecting TCP listener, as the proxy composes it. */
async function startProxy(
  choose: (pool: H2ConnectionPool, outcomes: string[]) => H2ForwardOptions["choose"],
  poolOptions: Partial<H2PoolOptions> = {},
): Promise<Proxy> {
  const pool = new H2ConnectionPool({ connectTimeoutMs: 2000, ...poolOptions });
  const results: H2ForwardResult[] = [];
  const outcomes: string[] = [];
  const connections: H2Connection[] = [];
  const streams: H2Stream[] = [];
  const options: H2ForwardOptions = { clock: systemClock, choose: choose(pool, outcomes), finished: (r) => results.push(r) };
  const sockets = new Set<net.Socket>();
  const tcp = net.createServer({ allowHalfOpen: true }, async (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    const d = await detectProtocol(socket, { timeoutMs: 1000 });
    if (d.protocol !== "h2") return void socket.destroy();
    connections.push(
      new H2Connection(socket, {
        role: "server",
        events: {
          stream: (stream, fields, endStream) => {
            streams.push(stream);
            forwardH2(stream, fields, endStream, options);
          },
        },
      }),
    );
  });
  tcp.listen(0, "127.0.0.1");
  await once(tcp, "listening");
  cleanups.push(async () => {
    await pool.close(100);
    for (const s of sockets) s.destroy();
    tcp.close();
  });
  return { port: (tcp.address() as net.AddressInfo).port, results, outcomes, pool, connections, streams };
}

function client(port: number): EchoClientT {
  const c = new EchoClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), UNLIMITED) as EchoClientT;
  cleanups.push(() => c.close());
  return c;
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms))),
  ]);
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const echo = await startEchoServer();
cleanups.push(() => echo.close());
const proxy = await startProxy((pool, outcomes) => () => upstreamTo(pool, echo.port, outcomes));
const c = client(proxy.port);

test("unary gRPC through the forwarder: message, metadata and trailers unchanged; one pooled connection", async () => {
  const md = new grpc.Metadata();
  md.set("x-request-id", "abc-123");
  md.set("x-bin", Buffer.from([0, 1, 2, 255]));
  for (let i = 0; i < 5; i++) {
    const r = await unary(c, "unary", Buffer.from(`hello ${i}`), { metadata: md });
    assert.equal(r.err, undefined);
    assert.equal(r.value?.toString(), `hello ${i}`);
    assert.deepEqual(r.trailers?.get("x-echo-bytes"), [String(`hello ${i}`.length)]);
  }
  const last = echo.seen.at(-1)!;
  assert.deepEqual(last.get("x-request-id"), ["abc-123"]);
  assert.deepEqual(last.get("x-bin"), [Buffer.from([0, 1, 2, 255])]);
  assert.equal(proxy.pool.size, 1);
  assert.ok(proxy.outcomes.length >= 5 && proxy.outcomes.every((o) => o.endsWith(":done:true")));
  assert.ok(proxy.results.every((r) => r.status === 200 && r.grpcStatus === 0 && r.attempts === 1 && r.error === undefined));
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
  await until(() => proxy.results.some((x) => x.grpcStatus === grpc.status.NOT_FOUND), 2000, "the result");
});

test("large messages both ways (flow control): 16 MiB unary and 64 x 512 KiB streamed", { timeout: 60_000 }, async () => {
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
  let ordered = true;
  let n = 0;
  call.on("data", (m: Buffer) => {
    bytes += m.length;
    ordered &&= m[0] === n % 256 && m[m.length - 1] === n % 256;
    n++;
  });
  const [status] = (await once(call, "status")) as [grpc.StatusObject];
  assert.equal(status.code, grpc.status.OK);
  assert.equal(bytes, 64 * 512 * 1024);
  assert.ok(ordered, "messages arrive whole and in order");
});

test("a call cancelled by the client is cancelled on the server", async () => {
  const started = echo.hangStarted();
  const cancelled = echo.hangCancelled();
  const { call, result } = startUnary(c, "hang", Buffer.from("x"));
  await within(started, 5000, "the call to reach the server");
  call.cancel();
  assert.equal((await result).err?.code, grpc.status.CANCELLED);
  await within(cancelled, 5000, "the server to see the cancellation");
  await until(() => proxy.results.some((x) => x.error === "CLIENT_CANCELLED"), 2000, "the result");
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
  assert.equal(r.headers["tether-error"], "DEADLINE_EXCEEDED");
  assert.equal(r.endStream, true, "trailers-only");
  await within(cancelled, 5000, "the server to see the cancellation");
  await until(() => proxy.results.some((x) => x.error === "DEADLINE_EXCEEDED" && x.grpcStatus === 4), 2000, "the result");
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(proxy.outcomes.slice(outcomesBefore), [`${echo.port}:done:false`], "the balancer hears of it once");
});

test("a deadline after the response started ends it with DEADLINE_EXCEEDED in the trailers", async () => {
  const up = await rawUpstream((stream) => {
    stream.respond({ ":status": 200, "content-type": "application/grpc" });
    stream.write(grpcFrame(Buffer.from("first")));
    // … and never finishes.
  });
  const p = await startProxy((pool, outcomes) => () => upstreamTo(pool, up.port, outcomes));
  const r = await raw(p.port, { ":method": "POST", ":path": "/x", "content-type": "application/grpc", te: "trailers", "grpc-timeout": "300m" }, grpcFrame(Buffer.from("x")));
  assert.equal(r.headers[":status"], 200);
  assert.equal(r.headers["grpc-status"], undefined);
  assert.deepEqual(r.body, grpcFrame(Buffer.from("first")));
  assert.equal(r.trailers?.["grpc-status"], "4");
  await until(() => up.closedStreams() === 1, 5000, "the upstream stream to be cancelled");
  assert.deepEqual(p.outcomes, [`${up.port}:done:true`], "told once, at the response headers");
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
  await until(() => retrying.results.length === 1, 2000, "the result");
  assert.equal(retrying.results[0]!.attempts, 2);

  const broken = await startProxy((pool, outcomes) => () => upstreamTo(pool, deadPort, outcomes));
  const r = await unary(client(broken.port), "unary", Buffer.from("x"));
  assert.equal(r.err?.code, grpc.status.UNAVAILABLE);
  assert.deepEqual(r.err?.metadata.get("tether-error"), ["UPSTREAM_CONNECT_FAILED"]);
  assert.equal(broken.outcomes.filter((o) => o.endsWith(":failed")).length, 3, "three attempts");
  assert.equal(broken.outcomes.length, 3);

  const http = await raw(broken.port, { ":method": "GET", ":path": "/" });
  assert.equal(http.headers[":status"], 502);
  assert.equal(http.headers["tether-error"], "UPSTREAM_CONNECT_FAILED");
  assert.match(http.body.toString(), /ECONNREFUSED/);

  // Our own refusal (no certificate for a meshed endpoint) is final and does not back the endpoint off.
  const noIdentity = await startProxy((_pool, outcomes) => () => ({
    connection: () => Promise.reject(new UpstreamError("UPSTREAM_NO_IDENTITY", "no certificate of our own yet", false)),
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
  const noneGrpc = await unary(client(empty.port), "unary", Buffer.from("x"));
  assert.equal(noneGrpc.err?.code, grpc.status.UNAVAILABLE);
  assert.deepEqual(noneGrpc.err?.metadata.get("tether-error"), ["UPSTREAM_NO_ENDPOINTS"]);
});

/** A raw node:http2 upstream whose behaviour each test sets. */
async function rawUpstream(onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void, settings: http2.Settings = {}) {
  const server = http2.createServer({ settings });
  let connections = 0;
  let streams = 0;
  let closedStreams = 0;
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("connection", () => connections++);
  server.on("session", (s) => {
    sessions.add(s);
    s.on("error", () => {});
    s.on("close", () => sessions.delete(s));
  });
  server.on("stream", (stream, headers) => {
    streams++;
    stream.on("error", () => {});
    stream.on("close", () => closedStreams++);
    onStream(stream, headers);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  cleanups.push(() => {
    for (const s of sessions) s.destroy();
    server.close();
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => connections,
    streams: () => streams,
    closedStreams: () => closedStreams,
  };
}

/** An upstream that answers with what it received: "<name>: <body>". */
function echoBody(name: string) {
  return (stream: http2.ServerHttp2Stream) => {
    const chunks: Buffer[] = [];
    stream.on("data", (d: Buffer) => chunks.push(d));
    stream.on("end", () => {
      stream.respond({ ":status": 200 });
      stream.end(`${name}: ${Buffer.concat(chunks).toString()}`);
    });
  };
}

/**
 * An upstream played frame by frame: `onRequest` gets each request's HEADERS frame and answers with
 * raw frames (our HPACK encoder is at hand in `peer.encoder`).
 */
async function framedUpstream(onRequest: (peer: RawPeer, streamId: number) => void) {
  let streams = 0;
  const peers: RawPeer[] = [];
  const tcp = net.createServer((socket) => {
    const peer = new RawPeer(socket, PREFACE.length);
    peers.push(peer);
    socket.write(settings());
    peer.onFrame = (f) => {
      if (f.type !== T.HEADERS || f.streamId <= (peer.lastRequest ?? 0)) return;
      peer.lastRequest = f.streamId;
      streams++;
      onRequest(peer, f.streamId);
    };
  });
  tcp.listen(0, "127.0.0.1");
  await once(tcp, "listening");
  cleanups.push(() => {
    for (const p of peers) p.destroy();
    tcp.close();
  });
  return { port: (tcp.address() as net.AddressInfo).port, streams: () => streams };
}

/**
 * An upstream that answers every new stream with GOAWAY naming the stream before it (a server that
 * began draining just as the request arrived). node:http2 cannot do this: its goaway() with a last
 * stream id of 0 announces the last stream it received instead.
 */
function drainingUpstream() {
  return framedUpstream((peer, id) => peer.send(frame(T.GOAWAY, 0, 0, Buffer.concat([u32(id > 2 ? id - 2 : 0), u32(E.NO_ERROR)]))));
}

test("HTTP/2: te: trailers kept, request and response trailers forwarded", async () => {
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

test("connection-specific fields make a message malformed (RFC 9113 §8.2.2): refused both ways, never forwarded", async () => {
  // The upstream is our own server connection, which sends whatever fields it is given.
  const seen: HeaderFields[] = [];
  const tcp = net.createServer({ allowHalfOpen: true }, (socket) => {
    new H2Connection(socket, {
      role: "server",
      events: {
        stream: (stream, fields) => {
          seen.push(fields);
          stream.handler = { headers() {}, data: (chunk) => stream.consumed(chunk.length), trailers() {}, reset() {}, closed() {} };
          const path = fields[fields.indexOf(":path") + 1];
          if (path === "/bad-headers") return stream.sendHeaders([":status", "200", "connection", "x-hop", "x-hop", "1"], true);
          stream.sendHeaders([":status", "200", "x-up", "kept"], false);
          stream.sendData(Buffer.from("body"), false);
          stream.sendTrailers(path === "/bad-trailers" ? ["grpc-status", "0", "transfer-encoding", "chunked"] : ["grpc-status", "0", "x-trailer", "kept"]);
        },
      },
    });
  });
  tcp.listen(0, "127.0.0.1");
  await once(tcp, "listening");
  cleanups.push(() => tcp.close());
  const upPort = (tcp.address() as net.AddressInfo).port;
  const p = await startProxy((pool, outcomes) => () => upstreamTo(pool, upPort, outcomes));
  const peer = await RawPeer.connect(p.port);
  cleanups.push(() => peer.destroy());
  // Requests: a connection header, a te other than trailers, keep-alive: each reset, none forwarded.
  peer.headers(1, request("/hop", ["connection", "x-secret"], "POST"), true);
  peer.headers(3, request("/hop", ["te", "gzip"], "POST"), true);
  peer.headers(5, request("/hop", ["keep-alive", "5"], "POST"), true);
  for (const id of [1, 3, 5]) assert.equal((await peer.response(id)).rstCode, E.PROTOCOL_ERROR, `stream ${id}`);
  // `te: trailers` is the one allowed; the response's own connection-specific fields are refused too.
  peer.headers(7, request("/ok", ["te", "trailers"], "POST"), true);
  const ok = await peer.response(7);
  assert.deepEqual([ok.fields, ok.body.toString(), ok.trailers], [[":status", "200", "x-up", "kept"], "body", ["grpc-status", "0", "x-trailer", "kept"]]);
  peer.headers(9, request("/bad-headers"), true);
  const badHeaders = await peer.response(9);
  assert.equal(badHeaders.fields?.[1], "502");
  assert.equal(fieldValue(badHeaders.fields!, "tether-error"), "UPSTREAM_PROTOCOL");
  peer.headers(11, request("/bad-trailers"), true);
  assert.equal((await peer.response(11)).rstCode, E.INTERNAL_ERROR, "a response that started is cut, its bad trailers not forwarded");
  assert.deepEqual(seen.map((f) => f[f.indexOf(":path") + 1]), ["/ok", "/bad-headers", "/bad-trailers"]);
});

test("an upstream reset resets the client stream with the same code (before and after the response started)", async () => {
  // Raw frames: node:http2's stream.close() after respond() ends the stream before resetting it.
  let n = 0;
  const up = await framedUpstream((peer, id) => {
    if (++n === 1) return peer.send(frame(T.RST_STREAM, 0, id, u32(E.ENHANCE_YOUR_CALM)));
    peer.send(frame(T.HEADERS, F.END_HEADERS, id, peer.encoder.encode([":status", "200"])), frame(T.DATA, 0, id, Buffer.from("partial")));
    setTimeout(() => peer.send(frame(T.RST_STREAM, 0, id, u32(E.INTERNAL_ERROR))), 20);
  });
  const p = await startProxy((pool, outcomes) => () => upstreamTo(pool, up.port, outcomes));
  const session = http2.connect(`http://127.0.0.1:${p.port}`);
  session.on("error", () => {});
  cleanups.push(() => session.close());
  for (const [path, code] of [
    ["/before", http2.constants.NGHTTP2_ENHANCE_YOUR_CALM],
    ["/after", http2.constants.NGHTTP2_INTERNAL_ERROR],
  ] as const) {
    const req = session.request({ ":path": path });
    req.on("error", () => {});
    let status: number | undefined;
    req.on("response", (h) => (status = Number(h[":status"])));
    const body: Buffer[] = [];
    req.on("data", (d: Buffer) => body.push(d));
    req.end();
    await within(new Promise((r) => req.once("close", r)), 5000, "the reset");
    assert.equal(req.rstCode, code, path);
    assert.equal(status, path === "/before" ? undefined : 200, "no answer of the proxy's own before the reset");
    assert.equal(Buffer.concat(body).toString(), path === "/before" ? "" : "partial");
  }
  await until(() => p.results.length === 2, 2000, "the results");
  assert.ok(p.results.every((r) => r.error === "UPSTREAM_RESET"));
  assert.ok(p.outcomes.every((o) => o.endsWith(":done:false") || o.endsWith(":done:true")) && p.outcomes.length === 2);
});

test("GOAWAY makes the pool reconnect; requests in flight on the old connection finish", async () => {
  let n = 0;
  const up = await rawUpstream((stream) => {
    n++;
    stream.respond({ ":status": 200 });
    stream.end(`answer ${n}`);
    if (n === 1) stream.session!.goaway(http2.constants.NGHTTP2_NO_ERROR);
  });
  const p = await startProxy((pool, outcomes) => () => upstreamTo(pool, up.port, outcomes));
  const first = await raw(p.port, { ":path": "/" });
  assert.equal(first.body.toString(), "answer 1");
  await new Promise((r) => setTimeout(r, 50)); // let the GOAWAY arrive
  const second = await raw(p.port, { ":path": "/" });
  assert.equal(second.body.toString(), "answer 2");
  assert.equal(up.connections(), 2, "a new connection after GOAWAY");
  const third = await raw(p.port, { ":path": "/" });
  assert.equal(third.body.toString(), "answer 3");
  assert.equal(up.connections(), 2, "and that one is pooled");
});

test("a stream the upstream refuses unprocessed (GOAWAY below it, or REFUSED_STREAM) is retried on another endpoint", async () => {
  for (const how of ["goaway", "refused-stream"] as const) {
    const a = how === "goaway" ? await drainingUpstream() : await rawUpstream((stream) => stream.close(http2.constants.NGHTTP2_REFUSED_STREAM));
    const b = await rawUpstream(echoBody("B"));
    const order = [a.port, b.port];
    const p = await startProxy((pool, outcomes) => (_f, attempt) => upstreamTo(pool, order[attempt]!, outcomes));
    const r = await raw(p.port, { ":method": "POST", ":path": "/retry" }, Buffer.from("hello"));
    assert.equal(r.headers[":status"], 200, how);
    assert.equal(r.body.toString(), "B: hello", `${how}: the request body is sent again`);
    assert.deepEqual(p.outcomes, [`${a.port}:cancel`, `${b.port}:done:true`], how);
    await until(() => p.results.length === 1, 2000, "the result");
    assert.equal(p.results[0]!.attempts, 2);
    assert.equal(a.streams(), 1);
  }

  // gRPC: a streamed request body is replayed in full (HEADERS, DATA, END_STREAM) to the echo server.
  const a = await rawUpstream((stream) => stream.close(http2.constants.NGHTTP2_REFUSED_STREAM));
  const order = [a.port, echo.port];
  const p = await startProxy((pool, outcomes) => (_f, attempt) => upstreamTo(pool, order[attempt]!, outcomes));
  const message = Buffer.alloc(RETRY_BUFFER_LIMIT - 1024, 7);
  const ok = await unary(client(p.port), "unary", message);
  assert.equal(ok.err, undefined);
  assert.ok(ok.value?.equals(message));
  assert.deepEqual(p.outcomes, [`${a.port}:cancel`, `${echo.port}:done:true`]);
});

test("a request larger than RETRY_BUFFER_LIMIT is not retried: the client gets UNAVAILABLE with tether-error", async () => {
  // A refuses only after the whole body arrived, so the proxy has certainly sent it all.
  const a = await rawUpstream((stream) => {
    stream.resume();
    stream.on("end", () => stream.close(http2.constants.NGHTTP2_REFUSED_STREAM));
  });
  const b = await rawUpstream(echoBody("B"));
  const order = [a.port, b.port];
  const p = await startProxy((pool, outcomes) => (_f, attempt) => upstreamTo(pool, order[attempt]!, outcomes));
  const r = await unary(client(p.port), "unary", Buffer.alloc(RETRY_BUFFER_LIMIT * 4, 1));
  assert.equal(r.err?.code, grpc.status.UNAVAILABLE);
  assert.deepEqual(r.err?.metadata.get("tether-error"), ["UPSTREAM_RESET"]);
  assert.equal(b.streams(), 0, "never sent to B");
  assert.deepEqual(p.outcomes, [`${a.port}:done:false`]);
  // The same with a warm connection to A (the body then streams through instead of waiting for the connect).
  const again = await unary(client(p.port), "unary", Buffer.alloc(RETRY_BUFFER_LIMIT * 4, 1));
  assert.equal(again.err?.code, grpc.status.UNAVAILABLE);
  assert.equal(b.streams(), 0);
});

/** An upstream that answers "/big" with `bytes` of a counting pattern, as fast as flow control lets it. */
async function bulkUpstream(bytes: number) {
  const progress = { sent: 0 };
  const up = await rawUpstream((stream) => {
    stream.resume(); // node:http2 ends a response whose request was never read with RST_STREAM(NO_ERROR)
    stream.respond({ ":status": 200 });
    const chunk = Buffer.alloc(256 * 1024);
    let offset = 0;
    const pump = () => {
      while (offset < bytes && !stream.destroyed) {
        const n = Math.min(chunk.length, bytes - offset);
        for (let i = 0; i < n; i += 4096) chunk.writeUInt32BE((offset + i) >>> 0, i);
        offset += n;
        const more = stream.write(n === chunk.length ? Buffer.from(chunk) : chunk.subarray(0, n), () => (progress.sent += n));
        if (!more) return void stream.once("drain", pump);
      }
      if (offset >= bytes) stream.end();
    };
    pump();
  });
  return { ...up, progress };
}

/** What the proxy holds for a client connection: unsent bytes in its socket plus data queued on its streams. */
function held(p: Proxy, connection: H2Connection): number {
  let queued = 0;
  for (const s of p.streams) if (s.connection === connection) queued += s.queuedBytes;
  return connection.socket.writableLength + queued;
}

test("backpressure: a client that does not read a large response does not make the proxy buffer it", { timeout: 60_000 }, async () => {
  const total = 64 * 1024 * 1024;
  const up = await bulkUpstream(total);
  const p = await startProxy((pool, outcomes) => () => upstreamTo(pool, up.port, outcomes));
  for (const how of ["withholds window", "does not read its socket"] as const) {
    const sentBefore = up.progress.sent;
    // "withholds window": default windows (64 KiB), never credited. "does not read": 2^31-1 windows, socket paused.
    const peer = await RawPeer.connect(
      p.port,
      how === "withholds window" ? {} : { settings: [[S.INITIAL_WINDOW_SIZE, 0x7fffffff]] },
    );
    cleanups.push(() => peer.destroy());
    peer.keepData = false;
    const hash = createHash("sha256");
    let expected = 0;
    let patternOk = true;
    peer.onData = (_id, payload) => {
      // The pattern: the offset, every 4 KiB.
      for (let i = (4096 - (expected % 4096)) % 4096; i + 4 <= payload.length; i += 4096) {
        patternOk &&= payload.readUInt32BE(i) === (expected + i) >>> 0;
      }
      expected += payload.length;
      hash.update(payload);
    };
    if (how === "does not read its socket") peer.send(frame(T.WINDOW_UPDATE, 0, 0, u32(0x7fffffff - 65_535)));
    peer.headers(1, request("/big"), true);
    await until(() => p.connections.length > 0 && p.streams.length > 0 && (peer.dataBytes.get(1) ?? 0) > 0, 5000, "the response to start");
    if (how === "does not read its socket") peer.socket.pause();
    const connection = p.connections.at(-1)!;
    let maxHeld = 0;
    const started = Date.now();
    while (Date.now() - started < 1500) {
      maxHeld = Math.max(maxHeld, held(p, connection));
      await new Promise((r) => setTimeout(r, 5));
    }
    const upstreamSent = up.progress.sent - sentBefore;
    assert.ok(maxHeld < 4 * 1024 * 1024, `${how}: the proxy held up to ${maxHeld} bytes for the client (upstream sent ${upstreamSent})`);
    assert.ok(upstreamSent < 24 * 1024 * 1024, `${how}: the upstream was allowed to send ${upstreamSent} bytes`);
    // The client starts reading: all of it arrives, intact.
    peer.autoCredit = true;
    if (how === "withholds window") {
      peer.send(frame(T.WINDOW_UPDATE, 0, 1, u32(0x7fffffff - 65_535)), frame(T.WINDOW_UPDATE, 0, 0, u32(0x7fffffff - 65_535)));
      peer.autoCredit = false;
    } else peer.socket.resume();
    await until(() => peer.frames.some((f) => f.streamId === 1 && f.flags & F.END_STREAM), 30_000, `the whole response (${peer.dataBytes.get(1)} bytes so far)`);
    assert.equal(peer.dataBytes.get(1), total, how);
    assert.ok(patternOk, `${how}: the bytes arrive in order`);
    peer.destroy();
  }
});

test("backpressure on the request: an upstream that does not read makes the proxy stop crediting the client", { timeout: 30_000 }, async () => {
  // The upstream withholds window: node:http2 stops crediting a paused stream after its 64 KiB window.
  const upStreams: http2.ServerHttp2Stream[] = [];
  let received = 0;
  const up = await rawUpstream((stream) => {
    stream.pause();
    stream.on("data", (d: Buffer) => (received += d.length));
    upStreams.push(stream);
  });
  const p = await startProxy((pool, outcomes) => () => upstreamTo(pool, up.port, outcomes));
  const peer = await RawPeer.connect(p.port);
  cleanups.push(() => peer.destroy());
  peer.headers(1, request("/upload", [], "POST"), false);
  const proxySettings = await peer.waitFor((f) => f.type === T.SETTINGS && !(f.flags & F.ACK), "the proxy's SETTINGS");
  let initial = 65_535;
  for (let i = 0; i + 6 <= proxySettings.payload.length; i += 6) {
    if (proxySettings.payload.readUInt16BE(i) === S.INITIAL_WINDOW_SIZE) initial = proxySettings.payload.readUInt32BE(i + 2);
  }
  // The client sends whenever the proxy's windows allow, as fast as it can, for 1.5 s.
  let sent = 0;
  const window = (streamId: number, start: number) =>
    start + peer.frames.filter((f) => f.type === T.WINDOW_UPDATE && f.streamId === streamId).reduce((a, f) => a + f.payload.readUInt32BE(0), 0) - sent;
  const started = Date.now();
  while (Date.now() - started < 1500) {
    let allowed = Math.min(window(1, initial), window(0, 65_535));
    while (allowed >= 16_384) {
      peer.send(frame(T.DATA, 0, 1, Buffer.alloc(16_384, 3)));
      sent += 16_384;
      allowed -= 16_384;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  // What the proxy let the client send beyond what the upstream took is what it holds.
  assert.ok(sent - received < 4 * 1024 * 1024, `the proxy took ${sent} bytes from the client for an upstream that read ${received}`);
  // The upstream starts reading: everything sent arrives, and the stream is not broken.
  for (const s of upStreams) s.resume();
  await until(() => received === sent, 10_000, `the upload (${received} of ${sent})`);
  peer.send(frame(T.DATA, F.END_STREAM, 1));
  assert.equal(peer.frames.some((f) => f.type === T.RST_STREAM || f.type === T.GOAWAY), false);
});

test("client connections dropped while the proxy holds their data do not leak the upstream connection's window", { timeout: 60_000 }, async () => {
  const up = await bulkUpstream(256 * 1024 * 1024);
  // Small upstream windows make a leak visible after a few drops.
  const p = await startProxy((pool, outcomes) => () => upstreamTo(pool, up.port, outcomes), {
    limits: { initialWindowSize: 256 * 1024, connectionWindowSize: 1024 * 1024 },
  });
  for (let drop = 1; drop <= 12; drop++) {
    // Odd drops: a client that stopped reading its socket (credits wait for the socket to drain);
    // even drops: one that withholds window (credits wait for the stream's queue to be sent).
    const reads = drop % 2 === 0;
    const peer = await RawPeer.connect(p.port, reads ? {} : { settings: [[S.INITIAL_WINDOW_SIZE, 0x7fffffff]] });
    peer.keepData = false;
    if (!reads) peer.send(frame(T.WINDOW_UPDATE, 0, 0, u32(0x7fffffff - 65_535)));
    peer.headers(1, request("/big"), true);
    await until(() => (peer.dataBytes.get(1) ?? 0) > 0, 5000, `the response to start (client ${drop})`);
    if (!reads) peer.socket.pause();
    const connection = p.connections.at(-1)!;
    const stream = p.streams.at(-1)!;
    await until(
      () => (reads ? stream.queuedBytes > 0 : (connection.socket as net.Socket).writableNeedDrain),
      10_000,
      `the proxy to hold data for client ${drop} (it cannot if the pooled upstream connection's window leaked)`,
    );
    await new Promise((r) => setTimeout(r, 20));
    peer.destroy();
    await until(() => connection.closed, 5000, "the proxy to see the client go");
  }
  assert.equal(up.connections(), 1, "all through one pooled upstream connection");
  // The pooled connection still carries a response larger than its window many times over.
  const peer = await RawPeer.connect(p.port, { settings: [[S.INITIAL_WINDOW_SIZE, 0x7fffffff]] });
  cleanups.push(() => peer.destroy());
  peer.keepData = false;
  peer.send(frame(T.WINDOW_UPDATE, 0, 0, u32(0x7fffffff - 65_535)));
  peer.headers(1, request("/big"), true);
  await until(() => (peer.dataBytes.get(1) ?? 0) >= 16 * 1024 * 1024, 15_000, `16 MiB through the pooled connection (${peer.dataBytes.get(1) ?? 0} bytes arrived)`);
  assert.equal(up.connections(), 1);
});

test("a burst of requests waiting for one new upstream connection respects the upstream's stream limit", { timeout: 30_000 }, async () => {
  const open = new Map<http2.Http2Session, number>();
  let maxOpen = 0;
  const up = await rawUpstream(
    (stream) => {
      const session = stream.session!;
      open.set(session, (open.get(session) ?? 0) + 1);
      maxOpen = Math.max(maxOpen, open.get(session)!);
      stream.on("close", () => open.set(session, open.get(session)! - 1));
      setTimeout(() => {
        if (stream.destroyed) return;
        stream.respond({ ":status": 200 });
        stream.end("ok");
      }, 20);
    },
    { maxConcurrentStreams: 10 },
  );
  const p = await startProxy((pool, outcomes) => () => upstreamTo(pool, up.port, outcomes));
  const session = http2.connect(`http://127.0.0.1:${p.port}`);
  session.on("error", () => {});
  cleanups.push(() => session.close());
  const answers = await Promise.all(
    Array.from({ length: 150 }, (_, i) => {
      const req = session.request({ ":path": `/${i}` });
      req.on("error", () => {});
      const chunks: Buffer[] = [];
      req.on("data", (d: Buffer) => chunks.push(d));
      let status = 0;
      req.on("response", (h) => (status = Number(h[":status"])));
      req.end();
      return within(new Promise<string>((resolve) => req.on("close", () => resolve(`${status} ${Buffer.concat(chunks).toString()} ${req.rstCode}`))), 20_000, "answers");
    }),
  );
  const failed = answers.filter((a) => a !== `200 ok ${http2.constants.NGHTTP2_NO_ERROR}`);
  assert.deepEqual(failed, [], `${failed.length} of 150 failed; results: ${JSON.stringify(p.results.filter((r) => r.error))}`);
  assert.ok(maxOpen <= 10, `the upstream saw ${maxOpen} streams at once on one connection`);
  assert.ok(up.connections() > 1, "more connections beside the full one");
});
