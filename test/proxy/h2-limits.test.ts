/**
 * The resource bounds of the proxy's HTTP/2 connections (H2Limits): what is advertised, and what
 * happens to a peer that ignores it (CONTINUATION flood, rapid reset, too many streams, header
 * lists over the limit). Every abusive connection is cut and the server keeps serving others.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import { once } from "node:events";
import { DEFAULT_H2_LIMITS, H2Connection, type H2Limits, type H2Stream } from "../../src/proxy/h2/connection.js";
import { E, F, frame, listenH2, parseSettings, PREFACE, RawPeer, request, S, settings, T, u32 } from "./fixtures/h2-raw.js";
import { MemorySocket } from "./fixtures/memory-socket.js";

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/**
 * An H2Connection server (as the proxy's listener makes one) answering "ok", except "/hold"
 * streams, which stay open until the test releases them.
 */
async function startServer(limits?: Partial<H2Limits>) {
  const state = { open: 0, maxOpen: 0, streams: 0, protocolErrors: [] as string[], held: [] as H2Stream[] };
  const listening = await listenH2(
    (stream, fields) => {
    state.streams++;
    state.open++;
    state.maxOpen = Math.max(state.maxOpen, state.open);
    stream.handler = {
      headers() {},
      data: (chunk) => stream.consumed(chunk.length),
      trailers() {},
      reset() {},
      closed: () => state.open--,
    };
    const path = fields[fields.indexOf(":path") + 1];
    if (path === "/hold") return void state.held.push(stream);
    stream.sendHeaders([":status", "200"], false);
    stream.sendData(Buffer.from("ok"), true);
  },
    (kind) => state.protocolErrors.push(kind),
    limits,
  );
  cleanups.push(() => listening.close());
  const port = listening.port;
  return { port, state, release: () => state.held.splice(0).forEach((s) => (s.sendHeaders([":status", "200"], false), s.sendData(Buffer.from("ok"), true))) };
}

const server = await startServer();
const { port } = server;

/** A fresh node:http2 client still gets answers: abuse on one connection does not affect others. */
async function stillServes(p = port): Promise<void> {
  const c = http2.connect(`http://127.0.0.1:${p}`);
  c.on("error", () => {});
  try {
    const req = c.request({ ":path": "/" });
    const chunks: Buffer[] = [];
    req.on("data", (d: Buffer) => chunks.push(d));
    await once(req, "end");
    assert.equal(Buffer.concat(chunks).toString(), "ok");
  } finally {
    c.close();
  }
}

test("the limits are advertised in SETTINGS (server role), defaults and overrides", async () => {
  const c = http2.connect(`http://127.0.0.1:${port}`);
  await once(c, "remoteSettings");
  assert.equal(c.remoteSettings.maxConcurrentStreams, DEFAULT_H2_LIMITS.maxConcurrentStreams);
  assert.equal(c.remoteSettings.maxHeaderListSize, DEFAULT_H2_LIMITS.maxHeaderListSize);
  assert.equal(c.remoteSettings.initialWindowSize, DEFAULT_H2_LIMITS.initialWindowSize);
  c.close();

  const custom = await startServer({ maxConcurrentStreams: 7, maxHeaderListSize: 5000, initialWindowSize: 100_000, connectionWindowSize: 1 << 20 });
  const peer = await RawPeer.connect(custom.port);
  const first = await peer.waitFor(() => true, "the first frame");
  assert.equal(first.type, T.SETTINGS, "the server's first frame is SETTINGS");
  const s = parseSettings(first.payload);
  assert.equal(s.get(S.MAX_CONCURRENT_STREAMS), 7);
  assert.equal(s.get(S.MAX_HEADER_LIST_SIZE), 5000);
  assert.equal(s.get(S.INITIAL_WINDOW_SIZE), 100_000);
  assert.equal(s.has(S.ENABLE_PUSH), false, "ENABLE_PUSH is a client's setting");
  const wu = await peer.waitFor((f) => f.type === T.WINDOW_UPDATE && f.streamId === 0, "the connection window");
  assert.equal(wu.payload.readUInt32BE(0), (1 << 20) - 65_535);
  peer.destroy();
});

test("the client role advertises ENABLE_PUSH=0 and its windows, and no MAX_CONCURRENT_STREAMS", async () => {
  const got = new Promise<Buffer>((resolve) => {
    const raw = net.createServer((socket) => {
      let buf = Buffer.alloc(0);
      socket.on("data", (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= PREFACE.length + 9 && buf.length >= PREFACE.length + 9 + buf.readUIntBE(PREFACE.length, 3)) resolve(buf);
      });
      cleanups.push(() => socket.destroy());
    });
    raw.listen(0, "127.0.0.1", () => {
      const client = new H2Connection(net.connect((raw.address() as net.AddressInfo).port, "127.0.0.1"), { role: "client", events: {} });
      cleanups.push(() => client.socket.destroy());
    });
    cleanups.push(() => raw.close());
  });
  const bytes = await got;
  assert.ok(bytes.subarray(0, PREFACE.length).equals(PREFACE), "the client preface comes first");
  assert.equal(bytes[PREFACE.length + 3], T.SETTINGS);
  const s = parseSettings(bytes.subarray(PREFACE.length + 9, PREFACE.length + 9 + bytes.readUIntBE(PREFACE.length, 3)));
  assert.equal(s.get(S.ENABLE_PUSH), 0);
  assert.equal(s.has(S.MAX_CONCURRENT_STREAMS), false);
  assert.equal(s.get(S.INITIAL_WINDOW_SIZE), DEFAULT_H2_LIMITS.initialWindowSize);
  assert.equal(s.get(S.MAX_HEADER_LIST_SIZE), DEFAULT_H2_LIMITS.maxHeaderListSize);

  // And a real server reads it that way.
  const h2 = http2.createServer();
  const remote = new Promise<http2.Settings>((resolve) => h2.on("session", (s) => s.once("remoteSettings", resolve)));
  h2.listen(0, "127.0.0.1");
  await once(h2, "listening");
  const client = new H2Connection(net.connect((h2.address() as net.AddressInfo).port, "127.0.0.1"), { role: "client", events: {} });
  cleanups.push(() => (client.socket.destroy(), h2.close()));
  const settings = await remote;
  assert.equal(settings.enablePush, false);
  assert.equal(settings.initialWindowSize, DEFAULT_H2_LIMITS.initialWindowSize);
});

test("a CONTINUATION flood is cut off long before it exhausts memory", { timeout: 20_000 }, async () => {
  const errorsBefore = server.state.protocolErrors.length;
  const peer = await RawPeer.connect(port);
  const sock = peer.socket;
  // Our SETTINGS ACK goes out first: any frame inside the header block would end it early.
  await peer.waitFor((f) => f.type === T.SETTINGS && !(f.flags & F.ACK), "SETTINGS");
  // HPACK literal header field without indexing, new name: "x-a: aaaa…" (106 bytes).
  const field = Buffer.concat([Buffer.from([0, 3]), Buffer.from("x-a"), Buffer.from([100]), Buffer.alloc(100, 0x61)]);
  sock.write(frame(T.HEADERS, F.END_STREAM, 1, Buffer.concat([Buffer.from([0x82, 0x84, 0x86]), field]))); // no END_HEADERS
  let sent = 0;
  const budget = 20 * 1024 * 1024;
  while (!peer.ended && !sock.writableEnded && sent < budget) {
    const chunk = frame(T.CONTINUATION, 0, 1, Buffer.concat(Array(100).fill(field))); // no END_HEADERS
    sent += chunk.length;
    sock.write(chunk);
    await new Promise((r) => setImmediate(r));
  }
  await peer.closed();
  assert.ok(sent < 2 * 1024 * 1024, `cut off after ${sent} bytes`);
  const goaway = await peer.goaway();
  assert.equal(goaway.code, E.ENHANCE_YOUR_CALM, goaway.debug);
  assert.equal(goaway.lastStreamId, 0, "the stream of the flood was never processed");
  assert.deepEqual(server.state.protocolErrors.slice(errorsBefore), ["h2-flood"]);
  await stillServes();
});

test("rapid reset: opening and cancelling streams in a loop gets the connection closed; others unaffected", { timeout: 20_000 }, async () => {
  const c = http2.connect(`http://127.0.0.1:${port}`);
  c.on("error", () => {});
  let goawayCode: number | undefined;
  c.on("goaway", (code) => (goawayCode = code));
  await once(c, "connect");
  const before = server.state.streams;
  let opened = 0;
  for (let i = 0; i < 20_000 && !c.destroyed && !c.closed; i++) {
    try {
      const req = c.request({ ":path": "/hold" });
      req.on("error", () => {});
      req.close(http2.constants.NGHTTP2_CANCEL);
      opened++;
    } catch {
      break;
    }
    if (i % 100 === 0) await new Promise((r) => setImmediate(r));
  }
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(c.destroyed || c.closed, `session still open after ${opened} rapid resets`);
  assert.equal(goawayCode, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  const accepted = server.state.streams - before;
  assert.ok(accepted < 2 * DEFAULT_H2_LIMITS.maxResetsPerWindow, `the server processed ${accepted} streams of it`);
  assert.ok(server.state.maxOpen <= DEFAULT_H2_LIMITS.maxConcurrentStreams);
  c.destroy();
  await stillServes();
});

test("streams over MAX_CONCURRENT_STREAMS are refused; a peer that keeps trying is cut off", async () => {
  const limited = await startServer({ maxConcurrentStreams: 5, maxRefusedStreams: 10 });
  const peer = await RawPeer.connect(limited.port);
  await peer.waitFor((f) => f.type === T.SETTINGS && !(f.flags & F.ACK), "SETTINGS");
  // A client that ignores the advertised limit: 8 streams at once, 3 too many.
  for (let i = 0; i < 8; i++) peer.headers(2 * i + 1, request("/hold"), true);
  for (const id of [11, 13, 15]) {
    const rst = await peer.waitFor((f) => f.type === T.RST_STREAM && f.streamId === id, `the refusal of stream ${id}`);
    assert.equal(rst.payload.readUInt32BE(0), E.REFUSED_STREAM);
  }
  assert.equal(limited.state.maxOpen, 5);
  // The accepted ones are answered as usual, and then there is room again.
  limited.release();
  for (const id of [1, 3, 5, 7, 9]) assert.equal((await peer.response(id)).body.toString(), "ok");
  peer.headers(17, request("/"), true);
  assert.equal((await peer.response(17)).body.toString(), "ok");

  // Keeps opening beyond the limit: after maxRefusedStreams refusals the connection goes.
  for (let i = 0; i < 5; i++) peer.headers(19 + 2 * i, request("/hold"), true);
  for (let i = 0; i < 20; i++) peer.headers(29 + 2 * i, request("/hold"), true);
  const goaway = await peer.goaway();
  assert.equal(goaway.code, E.ENHANCE_YOUR_CALM);
  await peer.closed();
  assert.ok(limited.state.maxOpen <= 5);
  assert.deepEqual(limited.state.protocolErrors, ["h2-flood"]);
  await stillServes(limited.port);
});

test("a header list over MAX_HEADER_LIST_SIZE ends the connection; one within it is served", async () => {
  const limited = await startServer({ maxHeaderListSize: 8 * 1024 });
  const ok = await RawPeer.connect(limited.port);
  ok.headers(1, request("/", ["x-big", "v".repeat(7 * 1024)]), true);
  assert.equal((await ok.response(1)).body.toString(), "ok");
  ok.destroy();

  const peer = await RawPeer.connect(limited.port);
  peer.headers(1, request("/", ["x-big", "v".repeat(9 * 1024)]), true);
  const goaway = await peer.goaway();
  assert.equal(goaway.code, E.COMPRESSION_ERROR, "the block cannot be decoded (the HPACK state is lost)");
  await peer.closed();
  await stillServes(limited.port);
});

test("a header block over maxHeaderBlockBytes is cut while it arrives (CONTINUATION)", async () => {
  const limited = await startServer({ maxHeaderBlockBytes: 20 * 1024, maxHeaderListSize: 1 << 20 });
  const peer = await RawPeer.connect(limited.port);
  // Random bytes do not compress: the encoded block is larger than 20 KiB and takes two frames.
  peer.headers(1, request("/", ["x-big", Buffer.from(Array.from({ length: 30 * 1024 }, (_, i) => 0x21 + ((i * 7919) % 90))).toString("latin1")]), true);
  const goaway = await peer.goaway();
  assert.equal(goaway.code, E.ENHANCE_YOUR_CALM);
  await stillServes(limited.port);
});

test("a WINDOW_UPDATE flood (updates that answer none of our DATA) is cut like a PING flood", async () => {
  const errorsBefore = server.state.protocolErrors.length;
  const peer = await RawPeer.connect(port);
  const flood = Buffer.concat(Array.from({ length: DEFAULT_H2_LIMITS.maxControlFramesPerWindow + 10 }, () => frame(T.WINDOW_UPDATE, 0, 0, u32(1))));
  peer.send(flood);
  const goaway = await peer.goaway();
  assert.equal(goaway.code, E.ENHANCE_YOUR_CALM, goaway.debug);
  assert.match(goaway.debug, /WINDOW_UPDATE/);
  assert.deepEqual(server.state.protocolErrors.slice(errorsBefore), ["h2-flood"]);
  await stillServes();
});

test("replies to a peer that pings just under the rate limit and never reads are bounded: the connection is cut", async () => {
  const socket = new MemorySocket(true); // writes never complete: the peer does not read
  let now = 0;
  const errors: string[] = [];
  const connection = new H2Connection(socket, { role: "server", now: () => now, events: { protocolError: (kind) => errors.push(kind) } });
  socket.receive(Buffer.concat([PREFACE, settings()]));
  const perWindow = DEFAULT_H2_LIMITS.maxControlFramesPerWindow - 100;
  let rounds = 0;
  while (!connection.closed && rounds < 100) {
    rounds++;
    now += DEFAULT_H2_LIMITS.floodWindowMs; // a new flood window each round: the rate limit is never reached
    socket.receive(Buffer.concat(Array.from({ length: perWindow }, (_, i) => frame(T.PING, 0, 0, Buffer.alloc(8, i)))));
    await new Promise((r) => setImmediate(r));
  }
  assert.ok(connection.closed, `still open after ${rounds} rounds of ${perWindow} PINGs`);
  assert.deepEqual(errors, ["h2-flood"]);
  // What waits for the peer: the ACKs up to the socket's high-water mark, then at most maxPendingReplies more.
  assert.ok(socket.writableLength < 64 * 1024, `${socket.writableLength} bytes queued`);
  socket.destroy();
});
