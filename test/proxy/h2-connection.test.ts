/**
 * H2Connection against raw frames: what a server connection does with a peer that breaks the
 * protocol (the GOAWAY code it answers with, or the stream it resets while the connection goes on),
 * and what a client connection does with a server that refuses, resets or withholds window. The
 * server under test is composed as the proxy composes it (H2Connection + forwardH2 to a
 * node:http2 upstream); after every abuse a fresh connection must still be served.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import { once } from "node:events";
import { systemClock } from "../../src/core/clock.js";
import { forwardH2 } from "../../src/proxy/forward/h2.js";
import { H2ConnectionPool } from "../../src/proxy/forward/pool.js";
import { H2Connection, type H2Limits, type H2Stream, type ResetCause, type StreamHandler } from "../../src/proxy/h2/connection.js";
import { fieldValue, type HeaderFields } from "../../src/proxy/h2/fields.js";
import { E, F, frame, listenH2, PREFACE, RawPeer, request, S, settings, T, u32 } from "./fixtures/h2-raw.js";

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

// Whatever a peer sends, nothing may escape as an uncaught exception (checked in stillServes).
const uncaught: unknown[] = [];
process.on("uncaughtExceptionMonitor", (err) => uncaught.push(err));

// ---- the upstream and the server under test ----

const upstream = http2.createServer();
upstream.on("stream", (stream, headers) => {
  stream.on("error", () => {});
  stream.resume();
  stream.on("end", () => {
    stream.respond({ ":status": 200 });
    stream.end(`ok ${headers[":path"]}`);
  });
});
upstream.listen(0, "127.0.0.1");
await once(upstream, "listening");
const upstreamPort = (upstream.address() as net.AddressInfo).port;
cleanups.push(() => upstream.close());
const pool = new H2ConnectionPool({ connectTimeoutMs: 2000 });
cleanups.push(() => pool.close(50));

/**
 * A proxy-like server: every request is forwarded to the upstream, except "/sink" requests,
 * whose body is held without ever being consumed (so the peer's window is never credited).
 */
async function startServer(limits?: Partial<H2Limits>) {
  const state = { protocolErrors: [] as string[], sunk: [] as H2Stream[], sunkBytes: 0, bigClosed: 0 };
  const listening = await listenH2(
    (stream, fields, endStream) => {
    if (fieldValue(fields, ":path") === "/throw") throw new TypeError("a bug in a stream handler");
    if (fieldValue(fields, ":path") === "/big") {
      // 200,000 bytes at once: more than a default window, so most of it waits in the stream's queue.
      stream.handler = { headers() {}, data() {}, trailers() {}, reset() {}, closed: () => state.bigClosed++ };
      stream.sendHeaders([":status", "200"], false);
      stream.sendData(Buffer.alloc(200_000, 1), true);
      return;
    }
    if (fieldValue(fields, ":path") === "/sink") {
      state.sunk.push(stream);
      stream.handler = { headers() {}, data: (c) => (state.sunkBytes += c.length), trailers() {}, reset() {}, closed() {} };
      return;
    }
    forwardH2(stream, fields, endStream, {
      clock: systemClock,
      choose: () => ({
        connection: () => pool.connection("up", () => net.connect(upstreamPort, "127.0.0.1")),
        done() {},
        failed() {},
        cancel() {},
      }),
      finished() {},
    });
  },
    (kind) => state.protocolErrors.push(kind),
    limits,
  );
  cleanups.push(() => listening.close());
  return { port: listening.port, state };
}

const server = await startServer();
const small = await startServer({ initialWindowSize: 65_535, connectionWindowSize: 65_535 });
const tiny = await startServer({ initialWindowSize: 16_384 });

/** A fresh connection to `port` still gets an answer through the forwarder. */
async function stillServes(port = server.port): Promise<void> {
  assert.deepEqual(uncaught, []);
  const peer = await RawPeer.connect(port);
  try {
    peer.headers(1, request("/still"), true);
    assert.equal((await peer.response(1)).body.toString(), "ok /still");
  } finally {
    peer.destroy();
  }
}

/** Sends `bytes` on a fresh connection (after the preface unless `raw`) and returns the GOAWAY. */
async function goawayFor(bytes: Buffer[], options: { raw?: boolean; port?: number; waitSettings?: boolean } = {}) {
  const port = options.port ?? server.port;
  const peer = await RawPeer.connect(port, { handshake: !options.raw });
  if (options.waitSettings) await peer.waitFor((f) => f.type === T.SETTINGS && !(f.flags & F.ACK), "SETTINGS");
  peer.send(...bytes);
  try {
    const goaway = await peer.goaway();
    await peer.closed();
    return { ...goaway, peer };
  } finally {
    peer.destroy();
  }
}

// ---- connection errors: GOAWAY with the right code, the server keeps serving ----

test("a bad preface gets GOAWAY(PROTOCOL_ERROR)", async () => {
  const before = server.state.protocolErrors.length;
  const g = await goawayFor([Buffer.from("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"), settings()], { raw: true });
  assert.equal(g.code, E.PROTOCOL_ERROR);
  assert.match(g.debug, /preface/);
  assert.deepEqual(server.state.protocolErrors.slice(before), ["h2-protocol"]);
  await stillServes();
});

test("a first frame other than SETTINGS gets GOAWAY(PROTOCOL_ERROR)", async () => {
  const g = await goawayFor([PREFACE, frame(T.PING, 0, 0, Buffer.alloc(8))], { raw: true });
  assert.equal(g.code, E.PROTOCOL_ERROR);
  assert.match(g.debug, /SETTINGS/);
  await stillServes();
});

test("a frame larger than SETTINGS_MAX_FRAME_SIZE gets GOAWAY(FRAME_SIZE_ERROR), before its payload arrives", async () => {
  const head = frame(T.DATA, 0, 1, Buffer.alloc(0));
  head.writeUIntBE(16_385, 0, 3);
  const g = await goawayFor([head]);
  assert.equal(g.code, E.FRAME_SIZE_ERROR);
  await stillServes();
});

test("DATA beyond the connection window gets GOAWAY(FLOW_CONTROL_ERROR)", async () => {
  const peer = await RawPeer.connect(small.port);
  peer.headers(1, request("/sink", [], "POST"), false);
  peer.headers(3, request("/sink", [], "POST"), false);
  // 40,000 bytes on each stream: within each stream's window, 80,000 against a connection window of 65,535.
  for (const id of [1, 3]) for (const n of [16_384, 16_384, 7_232]) peer.send(frame(T.DATA, 0, id, Buffer.alloc(n)));
  const g = await peer.goaway();
  assert.equal(g.code, E.FLOW_CONTROL_ERROR);
  assert.equal(g.lastStreamId, 3);
  await peer.closed();
  await stillServes(small.port);
});

test("DATA beyond a stream's window resets that stream (FLOW_CONTROL_ERROR); the connection goes on", async () => {
  const peer = await RawPeer.connect(tiny.port);
  try {
    peer.headers(1, request("/sink", [], "POST"), false);
    peer.send(frame(T.DATA, 0, 1, Buffer.alloc(16_384)), frame(T.DATA, 0, 1, Buffer.alloc(1)));
    const rst = await peer.waitFor((f) => f.type === T.RST_STREAM && f.streamId === 1, "the reset");
    assert.equal(rst.payload.readUInt32BE(0), E.FLOW_CONTROL_ERROR);
    peer.headers(3, request("/after"), true);
    assert.equal((await peer.response(3)).body.toString(), "ok /after");
    assert.equal(peer.frames.some((f) => f.type === T.GOAWAY), false);
  } finally {
    peer.destroy();
  }
});

test("the receive window is credited only as the handler consumes: a stream nobody reads stops its sender", async () => {
  const before = tiny.state.sunk.length;
  const peer = await RawPeer.connect(tiny.port);
  try {
    peer.headers(1, request("/sink", [], "POST"), false);
    peer.send(frame(T.DATA, 0, 1, Buffer.alloc(16_384)));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(peer.frames.some((f) => f.type === T.WINDOW_UPDATE && f.streamId === 1), false, "no credit for bytes still held");
    const stream = tiny.state.sunk[before]!;
    stream.consumed(16_384);
    const wu = await peer.waitFor((f) => f.type === T.WINDOW_UPDATE && f.streamId === 1, "the stream's WINDOW_UPDATE");
    assert.equal(wu.payload.readUInt32BE(0), 16_384);
    // The credit lets the peer send a window's worth more, and not a byte beyond.
    peer.send(frame(T.DATA, 0, 1, Buffer.alloc(16_384)));
    peer.headers(3, request("/after"), true);
    assert.equal((await peer.response(3)).body.toString(), "ok /after");
    assert.equal(peer.frames.some((f) => f.type === T.RST_STREAM && f.streamId === 1), false);
  } finally {
    peer.destroy();
  }
});

test("a malformed HPACK block gets GOAWAY(COMPRESSION_ERROR)", async () => {
  // Index 0 is not a table entry; 0xff… is an integer past 2^31; a Huffman string padded with zeros.
  for (const block of [Buffer.from([0x80]), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), Buffer.from([0x00, 0x81, 0x00, 0x00])]) {
    const g = await goawayFor([frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, block)]);
    assert.equal(g.code, E.COMPRESSION_ERROR, block.toString("hex"));
  }
  await stillServes();
});

test("PING is answered with an ACK carrying the same payload", async () => {
  const peer = await RawPeer.connect(server.port);
  try {
    const payload = Buffer.from("01234567");
    peer.send(frame(T.PING, 0, 0, payload));
    const ack = await peer.waitFor((f) => f.type === T.PING, "the PING ACK");
    assert.equal(ack.flags & F.ACK, F.ACK);
    assert.equal(ack.streamId, 0);
    assert.deepEqual(ack.payload, payload);
    // A PING ACK from the peer is not answered.
    peer.send(frame(T.PING, F.ACK, 0, Buffer.from("abcdefgh")));
    peer.headers(1, request("/"), true);
    await peer.response(1);
    assert.equal(peer.frames.filter((f) => f.type === T.PING).length, 1);
  } finally {
    peer.destroy();
  }
});

test("a PING flood gets GOAWAY(ENHANCE_YOUR_CALM); a busy but reasonable peer does not", async () => {
  const calm = await RawPeer.connect(server.port);
  try {
    calm.send(...Array.from({ length: 500 }, (_, i) => frame(T.PING, 0, 0, Buffer.concat([u32(i), u32(i)]))));
    await calm.waitFor((f) => f.type === T.PING && f.payload.readUInt32BE(0) === 499, "the 500th ACK");
    assert.equal(calm.frames.filter((f) => f.type === T.PING).length, 500);
    assert.equal(calm.frames.some((f) => f.type === T.GOAWAY), false);
  } finally {
    calm.destroy();
  }
  const before = server.state.protocolErrors.length;
  const g = await goawayFor(Array.from({ length: 5000 }, () => frame(T.PING, 0, 0, Buffer.alloc(8))));
  assert.equal(g.code, E.ENHANCE_YOUR_CALM);
  assert.ok(g.peer.frames.filter((f) => f.type === T.PING).length <= 1000, "no more ACKs than the limit");
  assert.deepEqual(server.state.protocolErrors.slice(before), ["h2-flood"]);
  await stillServes();
});

test("SETTINGS, PRIORITY and empty-DATA floods get GOAWAY(ENHANCE_YOUR_CALM)", async () => {
  assert.equal((await goawayFor(Array.from({ length: 1500 }, () => settings()))).code, E.ENHANCE_YOUR_CALM);
  // PRIORITY for stream 3, depending on stream 0, weight 16: valid, advisory, and free to send.
  const priority = frame(T.PRIORITY, 0, 3, Buffer.from([0, 0, 0, 0, 15]));
  assert.equal((await goawayFor(Array.from({ length: 1500 }, () => priority))).code, E.ENHANCE_YOUR_CALM);
  const open = Buffer.concat([frame(T.HEADERS, F.END_HEADERS, 1, Buffer.from([0x83, 0x86, 0x84]))]);
  assert.equal((await goawayFor([open, ...Array.from({ length: 1500 }, () => frame(T.DATA, 0, 1))])).code, E.ENHANCE_YOUR_CALM);
  await stillServes();
});

test("WINDOW_UPDATE overflow: past 2^31-1 on the connection is GOAWAY(FLOW_CONTROL_ERROR), on a stream a reset", async () => {
  const g = await goawayFor([frame(T.WINDOW_UPDATE, 0, 0, u32(0x7fffffff))]);
  assert.equal(g.code, E.FLOW_CONTROL_ERROR);
  assert.equal((await goawayFor([frame(T.WINDOW_UPDATE, 0, 0, u32(0))])).code, E.PROTOCOL_ERROR, "an increment of 0");

  const peer = await RawPeer.connect(server.port);
  try {
    peer.headers(1, request("/sink", [], "POST"), false);
    peer.send(frame(T.WINDOW_UPDATE, 0, 1, u32(0x7fffffff)));
    const rst = await peer.waitFor((f) => f.type === T.RST_STREAM && f.streamId === 1, "the reset");
    assert.equal(rst.payload.readUInt32BE(0), E.FLOW_CONTROL_ERROR);
    peer.headers(3, request("/sink", [], "POST"), false);
    peer.send(frame(T.WINDOW_UPDATE, 0, 3, u32(0)));
    const rst0 = await peer.waitFor((f) => f.type === T.RST_STREAM && f.streamId === 3, "the reset");
    assert.equal(rst0.payload.readUInt32BE(0), E.PROTOCOL_ERROR);
    peer.headers(5, request("/after"), true);
    assert.equal((await peer.response(5)).body.toString(), "ok /after");
    assert.equal(peer.frames.some((f) => f.type === T.GOAWAY), false);
  } finally {
    peer.destroy();
  }
  await stillServes();
});

test("a request without :path (or :method, or :scheme) is reset with PROTOCOL_ERROR; the connection keeps serving", async () => {
  const peer = await RawPeer.connect(server.port);
  try {
    const cases: HeaderFields[] = [
      [":method", "GET", ":scheme", "http", ":authority", "test"],
      [":method", "GET", ":scheme", "http", ":path", "", ":authority", "test"],
      [":scheme", "http", ":path", "/", ":authority", "test"],
      [":method", "GET", ":path", "/", ":authority", "test"],
    ];
    for (const [i, fields] of cases.entries()) {
      const id = 1 + 2 * i;
      peer.headers(id, fields, true);
      const r = await peer.response(id);
      assert.equal(r.rstCode, E.PROTOCOL_ERROR, JSON.stringify(fields));
      assert.equal(r.fields, undefined, "no response headers");
    }
    peer.headers(11, request("/fine"), true);
    assert.equal((await peer.response(11)).body.toString(), "ok /fine");
    assert.equal(peer.frames.some((f) => f.type === T.GOAWAY), false);
  } finally {
    peer.destroy();
  }
});

test("other connection errors each get their GOAWAY code", async () => {
  const hpackGet = Buffer.from([0x82, 0x86, 0x84]); // :method GET, :scheme http, :path /
  const cases: Array<[string, Buffer[], number]> = [
    ["HEADERS on stream 0", [frame(T.HEADERS, F.END_HEADERS, 0, hpackGet)], E.PROTOCOL_ERROR],
    ["a client stream with an even id", [frame(T.HEADERS, F.END_HEADERS, 2, hpackGet)], E.PROTOCOL_ERROR],
    ["DATA on an idle stream", [frame(T.DATA, 0, 7, Buffer.from("x"))], E.PROTOCOL_ERROR],
    ["DATA on stream 0", [frame(T.DATA, 0, 0, Buffer.from("x"))], E.PROTOCOL_ERROR],
    ["CONTINUATION without HEADERS", [frame(T.CONTINUATION, F.END_HEADERS, 1, hpackGet)], E.PROTOCOL_ERROR],
    ["a frame inside a header block", [frame(T.HEADERS, 0, 1, hpackGet), frame(T.PING, 0, 0, Buffer.alloc(8))], E.PROTOCOL_ERROR],
    ["PUSH_PROMISE from a client", [frame(T.PUSH_PROMISE, F.END_HEADERS, 1, Buffer.concat([u32(2), hpackGet]))], E.PROTOCOL_ERROR],
    ["SETTINGS not a multiple of 6 bytes", [frame(T.SETTINGS, 0, 0, Buffer.alloc(5))], E.FRAME_SIZE_ERROR],
    ["SETTINGS ACK with a payload", [frame(T.SETTINGS, F.ACK, 0, Buffer.alloc(6))], E.FRAME_SIZE_ERROR],
    ["SETTINGS on a stream", [frame(T.SETTINGS, 0, 1)], E.PROTOCOL_ERROR],
    ["INITIAL_WINDOW_SIZE above 2^31-1", [settings([[S.INITIAL_WINDOW_SIZE, 0x80000000]])], E.FLOW_CONTROL_ERROR],
    ["MAX_FRAME_SIZE below 16384", [settings([[S.MAX_FRAME_SIZE, 100]])], E.PROTOCOL_ERROR],
    ["ENABLE_PUSH of 2", [settings([[S.ENABLE_PUSH, 2]])], E.PROTOCOL_ERROR],
    ["PING of 7 bytes", [frame(T.PING, 0, 0, Buffer.alloc(7))], E.FRAME_SIZE_ERROR],
    ["PING on a stream", [frame(T.PING, 0, 1, Buffer.alloc(8))], E.PROTOCOL_ERROR],
    ["RST_STREAM on stream 0", [frame(T.RST_STREAM, 0, 0, u32(8))], E.PROTOCOL_ERROR],
    ["RST_STREAM of 3 bytes", [frame(T.RST_STREAM, 0, 1, Buffer.alloc(3))], E.FRAME_SIZE_ERROR],
    ["WINDOW_UPDATE of 3 bytes", [frame(T.WINDOW_UPDATE, 0, 0, Buffer.alloc(3))], E.FRAME_SIZE_ERROR],
    ["PRIORITY on stream 0", [frame(T.PRIORITY, 0, 0, Buffer.alloc(5))], E.PROTOCOL_ERROR],
    ["GOAWAY on a stream", [frame(T.GOAWAY, 0, 1, Buffer.alloc(8))], E.PROTOCOL_ERROR],
    ["padding longer than the frame", [frame(T.HEADERS, F.END_HEADERS | F.PADDED, 1, Buffer.concat([Buffer.from([10]), hpackGet]))], E.PROTOCOL_ERROR],
  ];
  for (const [what, bytes, code] of cases) {
    const g = await goawayFor(bytes, { waitSettings: true });
    assert.equal(g.code, code, `${what}: ${g.debug}`);
  }
  await stillServes();
});

test("an exception in our own stream handler ends that connection with INTERNAL_ERROR, not a peer-fault code", async () => {
  const before = server.state.protocolErrors.length;
  const peer = await RawPeer.connect(server.port);
  try {
    peer.headers(1, request("/throw"), true);
    const g = await peer.goaway();
    assert.equal(g.code, E.INTERNAL_ERROR);
    assert.equal(g.debug, "", "our internals are not sent to the peer");
    await peer.closed();
  } finally {
    peer.destroy();
  }
  assert.deepEqual(server.state.protocolErrors.slice(before), ["h2-internal"]);
  await stillServes();
});

test("tolerated frames: unknown types, PRIORITY, padding, and a request split over CONTINUATION", async () => {
  const peer = await RawPeer.connect(server.port);
  try {
    peer.send(frame(0x42, 0xff, 0, Buffer.from("extension")), frame(T.PRIORITY, 0, 1, Buffer.alloc(5)));
    const block = peer.encoder.encode(request("/split", ["x-pad", "p".repeat(100)]));
    // HEADERS (padded, with priority fields) + CONTINUATION.
    const first = Buffer.concat([Buffer.from([4]), Buffer.alloc(5), block.subarray(0, 10), Buffer.alloc(4)]);
    peer.send(frame(T.HEADERS, F.PADDED | F.PRIORITY | F.END_STREAM, 1, first), frame(T.CONTINUATION, F.END_HEADERS, 1, block.subarray(10)));
    assert.equal((await peer.response(1)).body.toString(), "ok /split");
    assert.equal(peer.frames.some((f) => f.type === T.GOAWAY || f.type === T.RST_STREAM), false);
  } finally {
    peer.destroy();
  }
});

test("stream errors: DATA after END_STREAM is STREAM_CLOSED; a second header block without END_STREAM is PROTOCOL_ERROR", async () => {
  const peer = await RawPeer.connect(server.port);
  try {
    peer.headers(1, request("/sink", [], "POST"), true);
    peer.send(frame(T.DATA, 0, 1, Buffer.from("late")));
    const rst = await peer.waitFor((f) => f.type === T.RST_STREAM && f.streamId === 1, "the reset");
    assert.equal(rst.payload.readUInt32BE(0), E.STREAM_CLOSED);
    peer.headers(3, request("/sink", [], "POST"), false);
    peer.headers(3, ["x-trailer", "1"], false);
    const rst3 = await peer.waitFor((f) => f.type === T.RST_STREAM && f.streamId === 3, "the reset");
    assert.equal(rst3.payload.readUInt32BE(0), E.PROTOCOL_ERROR);
    peer.headers(5, request("/after"), true);
    assert.equal((await peer.response(5)).body.toString(), "ok /after");
  } finally {
    peer.destroy();
  }
});

test("after GOAWAY of our own (graceful close) new streams are not processed and open ones finish", async () => {
  let serverConnection: H2Connection | undefined;
  const held: H2Stream[] = [];
  const tcp = net.createServer({ allowHalfOpen: true }, (socket) => {
    serverConnection = new H2Connection(socket, {
      role: "server",
      events: { stream: (s) => void held.push(s) },
    });
  });
  tcp.listen(0, "127.0.0.1");
  await once(tcp, "listening");
  cleanups.push(() => tcp.close());
  const peer = await RawPeer.connect((tcp.address() as net.AddressInfo).port);
  try {
    peer.headers(1, request("/"), true);
    await peer.waitFor((f) => f.type === T.SETTINGS && f.flags === F.ACK, "the SETTINGS ACK");
    while (held.length === 0) await new Promise((r) => setTimeout(r, 5));
    serverConnection!.close();
    const g = await peer.goaway();
    assert.deepEqual([g.code, g.lastStreamId], [E.NO_ERROR, 1]);
    peer.headers(3, request("/"), true);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(held.length, 1, "stream 3 is above the GOAWAY's last stream");
    held[0]!.sendHeaders([":status", "204"], true);
    await peer.closed();
    assert.equal(peer.frames.filter((f) => f.type === T.HEADERS && f.streamId === 1).length, 1, "stream 1 was answered");
  } finally {
    peer.destroy();
  }
});

test("a client that ends its side of the socket still gets open responses; a stream waiting for its window is reset", async () => {
  const half = await RawPeer.connect(server.port);
  try {
    half.headers(1, request("/half"), true);
    half.socket.end();
    assert.equal((await half.response(1)).body.toString(), "ok /half");
    await half.closed();
  } finally {
    half.destroy();
  }

  const before = server.state.bigClosed;
  const blocked = await RawPeer.connect(server.port);
  try {
    blocked.keepData = false;
    blocked.headers(1, request("/big"), true);
    await blocked.waitFor((f) => f.type === T.DATA && f.streamId === 1, "the first DATA");
    while ((blocked.dataBytes.get(1) ?? 0) < 65_535) await new Promise((r) => setTimeout(r, 5));
    // The window is used up and the client ends its side: no WINDOW_UPDATE can ever come.
    blocked.socket.end();
    const rst = await blocked.waitFor((f) => f.type === T.RST_STREAM && f.streamId === 1, "the reset");
    assert.equal(rst.payload.readUInt32BE(0), E.CANCEL);
    await blocked.closed();
    assert.equal(server.state.bigClosed, before + 1, "the stream's handler heard it is over");
  } finally {
    blocked.destroy();
  }
});

// ---- the client role against a raw server ----

/** A raw HTTP/2 server for one client connection; the test drives it frame by frame. */
async function rawServer(serverSettings: Array<[number, number]> = []) {
  const tcp = net.createServer();
  tcp.listen(0, "127.0.0.1");
  await once(tcp, "listening");
  cleanups.push(() => tcp.close());
  const accepted = once(tcp, "connection") as Promise<[net.Socket]>;
  const events: string[] = [];
  const client = new H2Connection(net.connect((tcp.address() as net.AddressInfo).port, "127.0.0.1"), {
    role: "client",
    limits: { initialWindowSize: 65_535, connectionWindowSize: 65_535 },
    events: { ready: () => events.push("ready"), goaway: (last, code) => events.push(`goaway ${last} ${code}`), close: () => events.push("close") },
  });
  const [socket] = await accepted;
  cleanups.push(() => (socket.destroy(), client.socket.destroy()));
  const peer = new RawPeer(socket, PREFACE.length);
  socket.write(settings(serverSettings));
  await new Promise<void>((resolve) => {
    const check = () => (client.usable ? resolve() : setTimeout(check, 5));
    check();
  });
  return { client, peer, events };
}

function recorder() {
  const log: string[] = [];
  const body: Buffer[] = [];
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  const handler: StreamHandler = {
    headers: (fields, end) => log.push(`headers ${fieldValue(fields, ":status")}${end ? " end" : ""}`),
    data: (chunk, end) => {
      body.push(Buffer.from(chunk));
      if (end) log.push("end");
    },
    trailers: (fields) => log.push(`trailers ${fields.join(",")}`),
    reset: (code: number, cause: ResetCause) => log.push(`reset ${code} ${cause}`),
    closed: () => (log.push("closed"), resolveClosed()),
  };
  return { log, body, handler, closed };
}

test("client role: GOAWAY below a stream, and REFUSED_STREAM before headers, are 'refused' (safe to retry); others are 'peer'", async () => {
  const { client, peer, events } = await rawServer();
  const a = recorder();
  const b = recorder();
  const c = recorder();
  const d = recorder();
  const s1 = client.request(request("/a"), true, a.handler);
  const s3 = client.request(request("/b"), true, b.handler);
  const s5 = client.request(request("/c"), true, c.handler);
  const s7 = client.request(request("/d"), true, d.handler);
  assert.deepEqual([s1.id, s3.id, s5.id, s7.id], [1, 3, 5, 7]);
  await peer.waitFor((f) => f.type === T.HEADERS && f.streamId === 7, "the requests");
  // Stream 5: refused before any response. Stream 7: answered, then reset with REFUSED_STREAM: not "refused".
  peer.send(frame(T.RST_STREAM, 0, 5, u32(E.REFUSED_STREAM)));
  peer.send(frame(T.HEADERS, F.END_HEADERS, 7, peer.encoder.encode([":status", "200"])), frame(T.RST_STREAM, 0, 7, u32(E.REFUSED_STREAM)));
  await Promise.all([c.closed, d.closed]);
  assert.deepEqual(c.log, [`reset ${E.REFUSED_STREAM} refused`, "closed"]);
  assert.deepEqual(d.log, ["headers 200", `reset ${E.REFUSED_STREAM} peer`, "closed"]);
  // GOAWAY naming stream 1: stream 3 was never processed; stream 1 finishes normally.
  peer.send(frame(T.GOAWAY, 0, 0, Buffer.concat([u32(1), u32(E.NO_ERROR)])));
  await b.closed;
  assert.deepEqual(b.log, [`reset ${E.REFUSED_STREAM} refused`, "closed"]);
  assert.equal(client.usable, false, "no new streams after GOAWAY");
  peer.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, peer.encoder.encode([":status", "204"])));
  await a.closed;
  assert.deepEqual(a.log, ["headers 204 end", "closed"]);
  await peer.closed();
  assert.ok(events.includes(`goaway 1 ${E.NO_ERROR}`));
});

test("client role: a response whose DATA does not add up to its content-length is reset as malformed; HEAD, 204 and 304 have no content", async () => {
  const { client, peer } = await rawServer();
  const answer = async (method: string, status: string, length: string, body?: string) => {
    const r = recorder();
    const stream = client.request(request("/", [], method), true, r.handler);
    await peer.waitFor((f) => f.type === T.HEADERS && f.streamId === stream.id, "the request");
    const headers = peer.encoder.encode([":status", status, "content-length", length]);
    peer.send(frame(T.HEADERS, F.END_HEADERS | (body === undefined ? F.END_STREAM : 0), stream.id, headers));
    if (body !== undefined) peer.send(frame(T.DATA, F.END_STREAM, stream.id, Buffer.from(body)));
    await r.closed;
    return r.log.join(", ");
  };
  const malformed = `reset ${E.PROTOCOL_ERROR} malformed, closed`;
  assert.equal(await answer("GET", "200", "10", "abc"), `headers 200, ${malformed}`);
  assert.equal(await answer("GET", "200", "2", "abc"), `headers 200, ${malformed}`);
  assert.equal(await answer("GET", "200", "10"), malformed);
  assert.equal(await answer("GET", "200", "ten", "abc"), malformed);
  assert.equal(await answer("GET", "200", "3", "abc"), "headers 200, end, closed");
  assert.equal(await answer("HEAD", "200", "10"), "headers 200 end, closed");
  assert.equal(await answer("GET", "204", "10"), "headers 204 end, closed");
  assert.equal(await answer("GET", "304", "10"), "headers 304 end, closed");
  const resets = peer.frames.filter((f) => f.type === T.RST_STREAM).map((f) => [f.streamId, f.payload.readUInt32BE(0)]);
  assert.deepEqual(resets, [1, 3, 5, 7].map((id) => [id, E.PROTOCOL_ERROR]));
});

test("client role: a lost connection resets open streams with cause 'lost'", async () => {
  const { client, peer, events } = await rawServer();
  const a = recorder();
  client.request(request("/a"), true, a.handler);
  await peer.waitFor((f) => f.type === T.HEADERS && f.streamId === 1, "the request");
  peer.destroy();
  await a.closed;
  assert.equal(a.log[0]?.endsWith(" lost"), true, a.log.join());
  assert.equal(client.closed, true);
  await new Promise((r) => setTimeout(r, 10));
  assert.ok(events.includes("close"));
});

test("client role: sends no more than the peer's window, queued data and trailers follow WINDOW_UPDATE in order", async () => {
  const { client, peer } = await rawServer([[S.INITIAL_WINDOW_SIZE, 1000]]);
  const a = recorder();
  const stream = client.request(request("/up", [], "POST"), false, a.handler);
  const body = Buffer.alloc(5000, 7);
  stream.sendData(body, false);
  stream.sendTrailers(["x-sum", "35000"]);
  await peer.waitFor((f) => f.type === T.DATA && f.streamId === 1, "the first DATA");
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(peer.dataBytes.get(1), 1000, "only the stream window");
  assert.equal(stream.queuedBytes, 4000);
  peer.send(frame(T.WINDOW_UPDATE, 0, 1, u32(2500)));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(peer.dataBytes.get(1), 3500);
  assert.equal(peer.frames.some((f) => f.type === T.HEADERS && f.streamId === 1 && f.fields?.[0] === "x-sum"), false, "trailers wait behind the data");
  peer.send(frame(T.WINDOW_UPDATE, 0, 1, u32(10_000)));
  const trailers = await peer.waitFor((f) => f.type === T.HEADERS && f.fields?.[0] === "x-sum", "the trailers");
  assert.equal(trailers.flags & F.END_STREAM, F.END_STREAM);
  assert.equal(peer.dataBytes.get(1), 5000);
  const sent = peer.frames.filter((f) => f.streamId === 1);
  assert.equal(sent.at(-1), trailers, "trailers last");
});

test("client role: the receive window is credited only as the handler consumes", async () => {
  const { client, peer } = await rawServer();
  const a = recorder();
  const stream = client.request(request("/down"), true, a.handler);
  await peer.waitFor((f) => f.type === T.HEADERS && f.streamId === 1, "the request");
  peer.send(frame(T.HEADERS, F.END_HEADERS, 1, peer.encoder.encode([":status", "200"])));
  // The whole window (65,535 here) without anything consumed.
  for (let sent = 0; sent < 65_535; sent += 16_384) peer.send(frame(T.DATA, 0, 1, Buffer.alloc(Math.min(16_384, 65_535 - sent))));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(Buffer.concat(a.body).length, 65_535);
  assert.equal(peer.frames.some((f) => f.type === T.WINDOW_UPDATE), false, "nothing credited");
  stream.consumed(40_000);
  const wus = await peer.waitFor((f) => f.type === T.WINDOW_UPDATE && f.streamId === 1, "the stream's credit");
  assert.equal(wus.payload.readUInt32BE(0), 40_000);
  const wuc = await peer.waitFor((f) => f.type === T.WINDOW_UPDATE && f.streamId === 0, "the connection's credit");
  assert.equal(wuc.payload.readUInt32BE(0), 40_000);
  peer.send(frame(T.DATA, F.END_STREAM, 1, Buffer.alloc(10)));
  await a.closed;
  assert.deepEqual(a.log, ["headers 200", "end", "closed"]);
});
