/**
 * HTTP/2 conformance of both proxy listeners, in the manner of h2spec (which cannot be installed
 * here; its case list was the checklist, the cases are our own): one case per MUST of RFC 9113
 * §3-§8 and RFC 7541 that a server or an intermediary enforces, run against the outbound listener
 * (h2c from an app) and the inbound listener (mTLS with a workload certificate), both in front of
 * a node:http2 app on a loopback mesh with a real identity CA. Frames are built with the product's
 * builder. `CONFORMANCE_TABLE=1` prints the table kept in docs/proxy.md.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import http2 from "node:http2";
import tls from "node:tls";
import { once } from "node:events";
import net from "node:net";
import { windowUpdateFrame } from "../../src/proxy/h2/frames.js";
import { huffmanEncode } from "../../src/proxy/h2/huffman.js";
import { startCaFixture } from "../support/ca-fixture.js";
import { certifiedAgent } from "../support/identity-workloads.js";
import { fieldValue } from "../../src/proxy/h2/fields.js";
import { HpackDecoder } from "../../src/proxy/h2/hpack.js";
import { responseProblem, trailersProblem } from "../../src/proxy/h2/message.js";
import { E, F, frame, PREFACE, RawPeer, request, S, settings, T, u32, parseSettings, type RawFrame } from "./fixtures/h2-raw.js";
import { ECHO_IDENTITY, meshTo } from "./fixtures/mesh.js";

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

// ---- two meshes: app <- inbound proxy <- (mTLS) <- outbound proxy ----

/**
 * The node app: GET answers "ok", POST echoes its body, /big answers 100 kB, /headers answers its
 * request's regular fields as JSON, /hold never answers (until the test ends).
 */
const held: http2.ServerHttp2Stream[] = [];
const BIG = Buffer.alloc(100_000, 0x62);
const app = http2.createServer();
app.on("stream", (stream, headers) => {
  stream.on("error", () => {});
  if (headers[":path"] === "/hold") return void held.push(stream);
  const chunks: Buffer[] = [];
  stream.on("data", (d: Buffer) => chunks.push(d));
  stream.on("end", () => {
    if (stream.destroyed) return;
    stream.respond({ ":status": 200 });
    const path = headers[":path"];
    if (path === "/big") return void stream.end(BIG);
    if (path === "/headers") return void stream.end(JSON.stringify(Object.fromEntries(Object.entries(headers).filter(([k]) => !k.startsWith(":")))));
    stream.end(headers[":method"] === "POST" ? Buffer.concat(chunks) : "ok");
  });
});
app.listen(0, "127.0.0.1");
await once(app, "listening");
cleanups.push(() => (held.forEach((s) => s.close()), app.close()));
const nodeAppPort = (app.address() as net.AddressInfo).port;

/**
 * The raw app, for responses no HTTP/2 library would send: each request is answered with exactly
 * the frames its path names in RAW_RESPONSES, and the header block of each request it received
 * is kept by path (to see how the proxy encoded it).
 */
const rawRequestBlocks = new Map<string, Buffer>();
const RAW_RESPONSES: Record<string, (peer: RawPeer, id: number) => void> = {};
const rawSockets = new Set<net.Socket>();
const rawApp = net.createServer((socket) => {
  rawSockets.add(socket);
  socket.once("close", () => rawSockets.delete(socket));
  const peer = new RawPeer(socket, PREFACE.length);
  peer.send(settings());
  const answered = new Set<number>();
  peer.onFrame = (f) => {
    if (f.type !== T.HEADERS || !(f.flags & F.END_HEADERS) || answered.has(f.streamId)) return;
    answered.add(f.streamId);
    const path = fieldValue(f.fields ?? [], ":path") ?? "";
    rawRequestBlocks.set(path, f.payload);
    (RAW_RESPONSES[path.replace(/\?.*/, "")] ?? ((p, id) => p.headers(id, [":status", "404"], true)))(peer, f.streamId);
  };
});
rawApp.listen(0, "127.0.0.1");
await once(rawApp, "listening");
cleanups.push(() => (rawSockets.forEach((s) => s.destroy()), rawApp.close()));

const ca = await startCaFixture();
cleanups.push(() => ca.close());
const client = await certifiedAgent(ca, "client", "demo");
cleanups.push(() => client.agent.stop());

const MESHES = {
  node: await meshTo(ca, "app", nodeAppPort),
  raw: await meshTo(ca, "raw", (rawApp.address() as net.AddressInfo).port),
};
for (const m of Object.values(MESHES)) cleanups.push(() => m.close());
type Listener = "outbound" | "inbound";

/** A client of `listener` of the mesh in front of `app`: h2c to the outbound one, mTLS (ALPN h2) to the inbound one. */
async function connect(listener: Listener, app: keyof typeof MESHES): Promise<RawPeer> {
  const port = MESHES[app][listener];
  if (listener === "outbound") return RawPeer.connect(port, { handshake: false });
  const socket = tls.connect({
    host: "127.0.0.1",
    port,
    servername: ECHO_IDENTITY,
    ca: ca.anchorsPem,
    cert: client.creds.certChainPem,
    key: client.creds.keyPem,
    ALPNProtocols: ["h2"],
  });
  await once(socket, "secureConnect");
  assert.equal(socket.alpnProtocol, "h2");
  return RawPeer.over(socket, { handshake: false });
}

// ---- what a case can expect (as h2spec: a stream error may also be answered as a connection error) ----

const codeName = (code: number) => Object.entries(E).find(([, v]) => v === code)?.[0] ?? String(code);

class Conn {
  constructor(
    readonly peer: RawPeer,
    readonly listener: Listener,
  ) {}

  /** The client preface and SETTINGS, then the server's SETTINGS (its first frame, §3.4) and its ACK of ours. */
  async handshake(pairs: Array<[number, number]> = []): Promise<void> {
    this.peer.send(PREFACE, settings(pairs));
    await this.peer.waitFor((f) => f.type === T.SETTINGS && !(f.flags & F.ACK), "the server's SETTINGS");
    assert.deepEqual([this.peer.frames[0]!.type, this.peer.frames[0]!.flags], [T.SETTINGS, 0], "the server's first frame is SETTINGS");
    await this.peer.waitFor((f) => f.type === T.SETTINGS && (f.flags & F.ACK) !== 0, "the ACK of our SETTINGS");
  }

  /** The server's SETTINGS. */
  serverSettings(): Map<number, number> {
    return parseSettings(this.peer.frames.find((f) => f.type === T.SETTINGS && !(f.flags & F.ACK))!.payload);
  }

  /** A path on the raw app unique to this listener (the raw app keeps request blocks by path). */
  rawPath(path: string, n = 1): string {
    return `${path}?${this.listener}-${n}`;
  }

  send(...frames: Buffer[]): void {
    this.peer.send(...frames);
  }

  block(fields: string[]): Buffer {
    return this.peer.encoder.encode(fields);
  }

  headers(id: number, fields: string[], flags = F.END_HEADERS | F.END_STREAM): Buffer {
    return frame(T.HEADERS, flags, id, this.block(fields));
  }

  async connectionError(...codes: number[]): Promise<void> {
    const g = await this.peer.goaway();
    assert.ok(codes.includes(g.code), `GOAWAY ${codeName(g.code)} (${g.debug}), expected ${codes.map(codeName).join(" or ")}`);
  }

  async streamError(id: number, ...codes: number[]): Promise<void> {
    const f = await this.peer.waitFor((x) => (x.type === T.RST_STREAM && x.streamId === id) || x.type === T.GOAWAY, `RST_STREAM on ${id} or GOAWAY`);
    const code = f.payload.readUInt32BE(f.type === T.GOAWAY ? 4 : 0);
    assert.ok(codes.includes(code), `${f.type === T.GOAWAY ? "GOAWAY" : "RST_STREAM"} ${codeName(code)}, expected ${codes.map(codeName).join(" or ")}`);
  }

  /** The connection is still usable: a PING gets its ACK, and no GOAWAY came. */
  async alive(): Promise<void> {
    const data = Buffer.from("h2-alive");
    this.send(frame(T.PING, 0, 0, data));
    const f = await this.peer.waitFor((x) => (x.type === T.PING && (x.flags & F.ACK) !== 0 && x.payload.equals(data)) || x.type === T.GOAWAY, "the PING ACK");
    assert.equal(f.type, T.PING, `GOAWAY ${f.type === T.GOAWAY ? codeName(f.payload.readUInt32BE(4)) : ""}`);
  }

  /** Stream `id` got a complete 200 response. */
  async answered(id: number): ReturnType<RawPeer["response"]> {
    const r = await this.peer.response(id);
    assert.equal(r.rstCode, undefined, `stream ${id} reset with ${codeName(r.rstCode ?? 0)}`);
    assert.equal(r.fields?.[1], "200");
    return r;
  }

  /** A connection error of `code`, or the connection closed before any (what an endpoint may do at once). */
  async connectionErrorOrClosed(code: number): Promise<void> {
    await this.peer.waitFor((f) => f.type === T.GOAWAY, "GOAWAY").catch((err: unknown) => {
      if (!this.peer.ended) throw err;
    });
    const g = this.peer.frames.find((f) => f.type === T.GOAWAY);
    if (g) assert.equal(codeName(g.payload.readUInt32BE(4)), codeName(code));
    const others = this.peer.frames.filter((f) => f.type !== T.SETTINGS && f.type !== T.WINDOW_UPDATE && f.type !== T.GOAWAY);
    assert.deepEqual(others, [], "nothing but SETTINGS, WINDOW_UPDATE and GOAWAY");
  }

  /**
   * A malformed response was not forwarded (§8.1.1): the client's stream is reset or answered 5xx
   * by the proxy, and whatever header sections did reach the client are well-formed.
   */
  async malformedNotForwarded(id: number): Promise<void> {
    const r = await this.peer.response(id);
    if (r.rstCode === undefined) assert.match(r.fields?.[1] ?? "", /^5\d\d$/, `stream ${id} completed with ${JSON.stringify(r.fields)} and trailers ${JSON.stringify(r.trailers)}`);
    if (r.fields) assert.equal(responseProblem(r.fields), undefined, JSON.stringify(r.fields));
    if (r.trailers) assert.equal(trailersProblem(r.trailers), undefined, JSON.stringify(r.trailers));
  }

  /** Every frame received so far is at most `size` octets long. */
  framesAtMost(size: number): void {
    const larger = this.peer.frames.filter((f) => f.payload.length > size);
    assert.deepEqual(larger.map((f) => `${f.type}/${f.payload.length}`), [], `frames above ${size} octets`);
  }

  /** The first DATA frame of stream `id`. */
  firstData(id: number): Promise<RawFrame> {
    return this.peer.waitFor((f) => f.type === T.DATA && f.streamId === id, `DATA on stream ${id}`);
  }
}

interface Case {
  section: string;
  what: string;
  /** The app behind the proxies (default: the node app). */
  app?: keyof typeof MESHES;
  run(c: Conn): Promise<void>;
}

// ---- RFC 7541 representations, built by hand (§5.2 strings, §6.2 literals) ----

/** A string literal, raw or Huffman-coded (short strings: a one-octet length). */
function str(value: string, huffman = false): Buffer {
  const octets = huffman ? huffmanEncode(value) : Buffer.from(value, "latin1");
  assert.ok(octets.length < 127);
  return Buffer.concat([Buffer.from([(huffman ? 0x80 : 0) | octets.length]), octets]);
}
/** A literal field with a new name: 0x40 with incremental indexing, 0x00 without indexing, 0x10 never indexed. */
const literal = (pattern: number, name: string, value: string, huffman = false) => Buffer.concat([Buffer.from([pattern]), str(name, huffman), str(value, huffman)]);
/** :method GET, :scheme http (static 2, 6), :path `path` (static name 4, not indexed), :authority test (static name 1, not indexed). */
const getBlock = (path: string) => Buffer.concat([Buffer.from([0x82, 0x86, 0x04]), str(path), Buffer.from([0x01]), str("test")]);
const NEVER_INDEXED_SECRET = literal(0x10, "x-secret", "s");

// ---- what the raw app answers ----

const headersFrame = (id: number, block: Buffer, flags: number) => frame(T.HEADERS, F.END_HEADERS | flags, id, block);
function rawResponse(path: string, sections: Array<string[] | Buffer | "data">): void {
  RAW_RESPONSES[path] = (peer, id) => {
    sections.forEach((s, i) => {
      const end = i === sections.length - 1 ? F.END_STREAM : 0;
      if (s === "data") peer.send(frame(T.DATA, end, id, Buffer.from("abc")));
      else peer.send(headersFrame(id, Buffer.isBuffer(s) ? Buffer.concat([peer.encoder.encode([":status", "200"]), s]) : peer.encoder.encode(s), end));
    });
  };
}
rawResponse("/ok", [[":status", "200", "x-a", "b"], "data", ["x-trailer", "t"]]);
rawResponse("/interim", [[":status", "103", "link", "</style.css>; rel=preload"], [":status", "200"]]);
rawResponse("/uppercase", [[":status", "200", "X-Upper", "1"]]);
rawResponse("/no-status", [["x-a", "b"]]);
rawResponse("/connection-specific", [[":status", "200", "connection", "close"]]);
rawResponse("/request-pseudo", [[":status", "200", ":path", "/"]]);
rawResponse("/pseudo-after-regular", [["x-a", "b", ":status", "200"]]);
rawResponse("/content-length", [[":status", "200", "content-length", "10"], "data"]);
rawResponse("/trailers-pseudo", [[":status", "200"], "data", [":status", "200"]]);
rawResponse("/second-headers", [[":status", "200"], ["x-a", "b"], "data"]);
rawResponse("/interim-end-stream", [[":status", "100"]]);
rawResponse("/never-indexed", [NEVER_INDEXED_SECRET]);
RAW_RESPONSES["/big-header"] = (peer, id) => peer.headers(id, [":status", "200", "x-big", "y".repeat(20_000)], true);
const RESPONSE_CASES: Array<[string, string]> = [
  ["/uppercase", "an uppercase field name"],
  ["/no-status", "no :status"],
  ["/connection-specific", "a connection-specific field"],
  ["/request-pseudo", "a request pseudo-header"],
  ["/pseudo-after-regular", "a pseudo-header after a regular field"],
  ["/content-length", "content-length other than the DATA"],
  ["/trailers-pseudo", "trailers with a pseudo-header"],
  ["/second-headers", "a second HEADERS without END_STREAM"],
  ["/interim-end-stream", "an interim (1xx) response with END_STREAM"],
];

const GET = request("/");
const POST = (path = "/") => request(path, [], "POST");
const priority = (dependency: number, weight = 15) => Buffer.from([(dependency >>> 24) & 0x7f, (dependency >>> 16) & 0xff, (dependency >>> 8) & 0xff, dependency & 0xff, weight]);
const closeBothWays = async (c: Conn, id: number) => {
  c.send(c.headers(id, GET));
  await c.answered(id);
};

const CASES: Case[] = [
  // RFC 9113 §3.4: the connection preface
  { section: "9113 3.4", what: "preface and SETTINGS: the server answers with SETTINGS", run: (c) => c.handshake() },
  {
    section: "9113 3.4",
    what: "the first frame after the preface is not SETTINGS: PROTOCOL_ERROR",
    run: async (c) => {
      c.send(PREFACE, frame(T.PING, 0, 0, Buffer.alloc(8)));
      await c.connectionError(E.PROTOCOL_ERROR);
    },
  },
  // §4.1 frame format
  { section: "9113 4.1", what: "a frame of unknown type is ignored", run: async (c) => (await c.handshake(), c.send(frame(0xee, 0, 0, Buffer.from("x"))), c.alive()) },
  { section: "9113 4.1", what: "undefined flags are ignored", run: async (c) => (await c.handshake(), c.send(frame(T.PING, 0x16, 0, Buffer.alloc(8))), c.alive()) },
  {
    section: "9113 4.1",
    what: "the reserved bit of the stream id is ignored",
    run: async (c) => {
      await c.handshake();
      const f = c.headers(1, GET);
      f[5]! |= 0x80;
      c.send(f);
      await c.answered(1);
    },
  },
  // §4.2 frame size
  {
    section: "9113 4.2",
    what: "DATA of 2^14 octets (the default SETTINGS_MAX_FRAME_SIZE) is accepted",
    run: async (c) => {
      await c.handshake();
      c.send(c.headers(1, POST(), F.END_HEADERS), frame(T.DATA, F.END_STREAM, 1, Buffer.alloc(16_384, 0x61)));
      assert.equal((await c.answered(1)).body.length, 16_384);
    },
  },
  { section: "9113 4.2", what: "DATA larger than SETTINGS_MAX_FRAME_SIZE: FRAME_SIZE_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, POST(), F.END_HEADERS), frame(T.DATA, F.END_STREAM, 1, Buffer.alloc(16_385))), c.streamError(1, E.FRAME_SIZE_ERROR)) },
  { section: "9113 4.2", what: "HEADERS larger than SETTINGS_MAX_FRAME_SIZE: FRAME_SIZE_ERROR", run: async (c) => (await c.handshake(), c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, Buffer.concat([c.block(GET), Buffer.alloc(16_385 - c.block([]).length, 0x82)]))), c.connectionError(E.FRAME_SIZE_ERROR)) },
  // §4.3 field section compression
  { section: "9113 4.3", what: "an undecodable header block: COMPRESSION_ERROR", run: async (c) => (await c.handshake(), c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]))), c.connectionError(E.COMPRESSION_ERROR)) },
  { section: "9113 4.3", what: "PRIORITY inside a header block: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, GET, F.END_STREAM), frame(T.PRIORITY, 0, 1, priority(0))), c.connectionError(E.PROTOCOL_ERROR)) },
  { section: "9113 4.3", what: "HEADERS of another stream inside a header block: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, GET, F.END_STREAM), c.headers(3, GET)), c.connectionError(E.PROTOCOL_ERROR)) },
  // §5.1 stream states
  { section: "9113 5.1", what: "idle: DATA: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(frame(T.DATA, F.END_STREAM, 1, Buffer.from("x"))), c.connectionError(E.PROTOCOL_ERROR)) },
  { section: "9113 5.1", what: "idle: RST_STREAM: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(frame(T.RST_STREAM, 0, 1, u32(E.CANCEL))), c.connectionError(E.PROTOCOL_ERROR)) },
  { section: "9113 5.1", what: "idle: WINDOW_UPDATE: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(windowUpdateFrame(1, 100)), c.connectionError(E.PROTOCOL_ERROR)) },
  { section: "9113 5.1", what: "idle: CONTINUATION: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(frame(T.CONTINUATION, F.END_HEADERS, 1, c.block(GET))), c.connectionError(E.PROTOCOL_ERROR)) },
  { section: "9113 5.1", what: "idle: PRIORITY is allowed", run: async (c) => (await c.handshake(), c.send(frame(T.PRIORITY, 0, 3, priority(0))), c.alive()) },
  { section: "9113 5.1", what: "half-closed (remote): DATA: STREAM_CLOSED", run: async (c) => (await c.handshake(), c.send(c.headers(1, request("/hold")), frame(T.DATA, F.END_STREAM, 1, Buffer.from("x"))), c.streamError(1, E.STREAM_CLOSED)) },
  { section: "9113 5.1", what: "half-closed (remote): HEADERS: STREAM_CLOSED", run: async (c) => (await c.handshake(), c.send(c.headers(1, request("/hold")), c.headers(1, ["x-trailer", "t"])), c.streamError(1, E.STREAM_CLOSED)) },
  { section: "9113 5.1", what: "half-closed (remote): CONTINUATION: STREAM_CLOSED or PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, request("/hold")), frame(T.CONTINUATION, F.END_HEADERS, 1, c.block(["x-a", "b"]))), c.streamError(1, E.STREAM_CLOSED, E.PROTOCOL_ERROR)) },
  { section: "9113 5.1", what: "half-closed (remote): WINDOW_UPDATE and PRIORITY are allowed", run: async (c) => (await c.handshake(), c.send(c.headers(1, request("/hold")), windowUpdateFrame(1, 10), frame(T.PRIORITY, 0, 1, priority(0))), c.alive()) },
  { section: "9113 5.1", what: "closed: DATA after the client's RST_STREAM: STREAM_CLOSED", run: async (c) => (await c.handshake(), c.send(c.headers(1, POST("/hold"), F.END_HEADERS), frame(T.RST_STREAM, 0, 1, u32(E.CANCEL)), frame(T.DATA, F.END_STREAM, 1, Buffer.from("x"))), c.streamError(1, E.STREAM_CLOSED)) },
  { section: "9113 5.1", what: "closed: HEADERS after the client's RST_STREAM: STREAM_CLOSED", run: async (c) => (await c.handshake(), c.send(c.headers(1, POST("/hold"), F.END_HEADERS), frame(T.RST_STREAM, 0, 1, u32(E.CANCEL)), c.headers(1, ["x-trailer", "t"])), c.streamError(1, E.STREAM_CLOSED)) },
  { section: "9113 5.1", what: "closed: CONTINUATION after the client's RST_STREAM: STREAM_CLOSED or PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, POST("/hold"), F.END_HEADERS), frame(T.RST_STREAM, 0, 1, u32(E.CANCEL)), frame(T.CONTINUATION, F.END_HEADERS, 1, c.block(["x-a", "b"]))), c.streamError(1, E.STREAM_CLOSED, E.PROTOCOL_ERROR)) },
  { section: "9113 5.1", what: "closed (both ends): DATA: STREAM_CLOSED", run: async (c) => (await c.handshake(), await closeBothWays(c, 1), c.send(frame(T.DATA, F.END_STREAM, 1, Buffer.from("x"))), c.connectionError(E.STREAM_CLOSED)) },
  { section: "9113 5.1", what: "closed (both ends): HEADERS: STREAM_CLOSED", run: async (c) => (await c.handshake(), await closeBothWays(c, 1), c.send(c.headers(1, GET)), c.connectionError(E.STREAM_CLOSED)) },
  { section: "9113 5.1", what: "closed (both ends): CONTINUATION: STREAM_CLOSED or PROTOCOL_ERROR", run: async (c) => (await c.handshake(), await closeBothWays(c, 1), c.send(frame(T.CONTINUATION, F.END_HEADERS, 1, c.block(["x-a", "b"]))), c.connectionError(E.STREAM_CLOSED, E.PROTOCOL_ERROR)) },
  { section: "9113 5.1", what: "closed (both ends): WINDOW_UPDATE, RST_STREAM and PRIORITY are ignored", run: async (c) => (await c.handshake(), await closeBothWays(c, 1), c.send(windowUpdateFrame(1, 1), frame(T.RST_STREAM, 0, 1, u32(0)), frame(T.PRIORITY, 0, 1, priority(0))), c.alive()) },
  // §5.1.1 stream identifiers
  { section: "9113 5.1.1", what: "an even stream id from a client: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(2, GET)), c.connectionError(E.PROTOCOL_ERROR)) },
  { section: "9113 5.1.1", what: "a stream id lower than one already opened: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(5, GET), c.headers(3, GET)), c.connectionError(E.PROTOCOL_ERROR)) },
  { section: "9113 5.1.1", what: "stream ids may skip: 1 then 7", run: async (c) => (await c.handshake(), c.send(c.headers(1, GET), c.headers(7, GET)), await c.answered(1), c.answered(7).then(() => {})) },
  // §5.1.2 stream concurrency
  {
    section: "9113 5.1.2",
    what: "streams beyond SETTINGS_MAX_CONCURRENT_STREAMS: REFUSED_STREAM",
    run: async (c) => {
      await c.handshake();
      const limit = (await c.peer.waitFor((f) => f.type === T.SETTINGS && !(f.flags & F.ACK), "SETTINGS")).payload;
      let max = 0;
      for (let i = 0; i < limit.length; i += 6) if (limit.readUInt16BE(i) === S.MAX_CONCURRENT_STREAMS) max = limit.readUInt32BE(i + 2);
      assert.ok(max > 0 && max <= 1000, `MAX_CONCURRENT_STREAMS ${max}`);
      c.send(...Array.from({ length: max + 1 }, (_, i) => c.headers(1 + 2 * i, request("/hold"), F.END_HEADERS)));
      await c.streamError(1 + 2 * max, E.REFUSED_STREAM, E.PROTOCOL_ERROR);
    },
  },
  // §5.3.1 stream dependencies
  { section: "9113 5.3.1", what: "HEADERS that depend on their own stream: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM | F.PRIORITY, 1, Buffer.concat([priority(1), c.block(GET)]))), c.streamError(1, E.PROTOCOL_ERROR)) },
  { section: "9113 5.3.1", what: "PRIORITY that makes a stream depend on itself: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, request("/hold")), frame(T.PRIORITY, 0, 1, priority(1))), c.streamError(1, E.PROTOCOL_ERROR)) },
  // §5.4.1 connection error handling
  {
    section: "9113 5.4.1",
    what: "after a connection error: GOAWAY naming the last stream processed, then the connection closes",
    run: async (c) => {
      await c.handshake();
      c.send(c.headers(1, GET));
      await c.answered(1);
      c.send(frame(T.PING, 0, 3, Buffer.alloc(8)));
      const g = await c.peer.goaway();
      assert.deepEqual([g.code, g.lastStreamId], [E.PROTOCOL_ERROR, 1]);
      await c.peer.closed();
    },
  },
  // §5.5 extending HTTP/2
  { section: "9113 5.5", what: "unknown SETTINGS are ignored", run: async (c) => (await c.handshake([[0xff, 1], [0x1234, 99]]), c.alive()) },
  { section: "9113 5.5", what: "an extension frame inside a header block: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, GET, F.END_STREAM), frame(0xee, 0, 1, Buffer.from("x"))), c.connectionError(E.PROTOCOL_ERROR)) },
  // §6.1 DATA
  { section: "9113 6.1", what: "DATA on stream 0: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(frame(T.DATA, F.END_STREAM, 0, Buffer.from("x"))), c.connectionError(E.PROTOCOL_ERROR)) },
  { section: "9113 6.1", what: "DATA with a pad length past its end: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, POST(), F.END_HEADERS), frame(T.DATA, F.PADDED | F.END_STREAM, 1, Buffer.from([6, 0x61, 0x62]))), c.connectionError(E.PROTOCOL_ERROR)) },
  {
    section: "9113 6.1",
    what: "padded DATA: the padding is removed",
    run: async (c) => {
      await c.handshake();
      c.send(c.headers(1, POST(), F.END_HEADERS), frame(T.DATA, F.PADDED | F.END_STREAM, 1, Buffer.concat([Buffer.from([4]), Buffer.from("body"), Buffer.alloc(4)])));
      assert.equal((await c.answered(1)).body.toString(), "body");
    },
  },
  // §6.2 HEADERS
  { section: "9113 6.2", what: "HEADERS on stream 0: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(0, GET)), c.connectionError(E.PROTOCOL_ERROR)) },
  { section: "9113 6.2", what: "HEADERS with a pad length past its end: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM | F.PADDED, 1, Buffer.concat([Buffer.from([200]), c.block(GET)]))), c.connectionError(E.PROTOCOL_ERROR)) },
  {
    section: "9113 6.2",
    what: "padded HEADERS with priority fields are accepted",
    run: async (c) => {
      await c.handshake();
      c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM | F.PADDED | F.PRIORITY, 1, Buffer.concat([Buffer.from([3]), priority(0, 200), c.block(GET), Buffer.alloc(3)])));
      await c.answered(1);
    },
  },
  // §6.3 PRIORITY
  { section: "9113 6.3", what: "PRIORITY on stream 0: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(frame(T.PRIORITY, 0, 0, priority(1))), c.connectionError(E.PROTOCOL_ERROR)) },
  { section: "9113 6.3", what: "PRIORITY of a length other than 5: FRAME_SIZE_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, request("/hold")), frame(T.PRIORITY, 0, 1, Buffer.alloc(4))), c.streamError(1, E.FRAME_SIZE_ERROR)) },
  // §6.4 RST_STREAM
  { section: "9113 6.4", what: "RST_STREAM on stream 0: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(frame(T.RST_STREAM, 0, 0, u32(E.CANCEL))), c.connectionError(E.PROTOCOL_ERROR)) },
  { section: "9113 6.4", what: "RST_STREAM on an idle stream: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(frame(T.RST_STREAM, 0, 9, u32(E.CANCEL))), c.connectionError(E.PROTOCOL_ERROR)) },
  { section: "9113 6.4", what: "RST_STREAM of a length other than 4: FRAME_SIZE_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, request("/hold")), frame(T.RST_STREAM, 0, 1, Buffer.alloc(3))), c.connectionError(E.FRAME_SIZE_ERROR)) },
  // §6.5 SETTINGS
  { section: "9113 6.5", what: "SETTINGS ACK with a payload: FRAME_SIZE_ERROR", run: async (c) => (await c.handshake(), c.send(frame(T.SETTINGS, F.ACK, 0, Buffer.alloc(6))), c.connectionError(E.FRAME_SIZE_ERROR)) },
  { section: "9113 6.5", what: "SETTINGS on a stream: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(frame(T.SETTINGS, 0, 1, Buffer.alloc(0))), c.connectionError(E.PROTOCOL_ERROR)) },
  { section: "9113 6.5", what: "SETTINGS of a length not a multiple of 6: FRAME_SIZE_ERROR", run: async (c) => (await c.handshake(), c.send(frame(T.SETTINGS, 0, 0, Buffer.alloc(3))), c.connectionError(E.FRAME_SIZE_ERROR)) },
  // §6.5.2 defined settings
  { section: "9113 6.5.2", what: "SETTINGS_ENABLE_PUSH other than 0 or 1: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(settings([[S.ENABLE_PUSH, 2]])), c.connectionError(E.PROTOCOL_ERROR)) },
  { section: "9113 6.5.2", what: "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1: FLOW_CONTROL_ERROR", run: async (c) => (await c.handshake(), c.send(settings([[S.INITIAL_WINDOW_SIZE, 2 ** 31]])), c.connectionError(E.FLOW_CONTROL_ERROR)) },
  { section: "9113 6.5.2", what: "SETTINGS_MAX_FRAME_SIZE below 2^14: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(settings([[S.MAX_FRAME_SIZE, 16_383]])), c.connectionError(E.PROTOCOL_ERROR)) },
  { section: "9113 6.5.2", what: "SETTINGS_MAX_FRAME_SIZE above 2^24-1: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(settings([[S.MAX_FRAME_SIZE, 2 ** 24]])), c.connectionError(E.PROTOCOL_ERROR)) },
  // §6.5.3 settings synchronization
  { section: "9113 6.5.3", what: "SETTINGS are acknowledged", run: async (c) => (await c.handshake(), c.send(settings([[S.HEADER_TABLE_SIZE, 100]])), await c.peer.waitFor((f) => f.type === T.SETTINGS && (f.flags & F.ACK) !== 0 && c.peer.frames.filter((x) => x.type === T.SETTINGS && x.flags & F.ACK).length >= 2, "the second ACK"), c.alive()) },
  { section: "9113 6.5.3", what: "several values of one setting: the last one counts", run: async (c) => (await c.handshake([[S.INITIAL_WINDOW_SIZE, 100], [S.INITIAL_WINDOW_SIZE, 1]]), c.send(c.headers(1, GET)), assert.equal((await c.firstData(1)).payload.length, 1)) },
  // §6.7 PING
  { section: "9113 6.7", what: "PING: an ACK with the same payload", run: async (c) => (await c.handshake(), c.alive()) },
  { section: "9113 6.7", what: "a PING ACK is not answered", run: async (c) => (await c.handshake(), c.send(frame(T.PING, F.ACK, 0, Buffer.from("unsolici"))), await c.alive(), assert.equal(c.peer.frames.filter((f) => f.type === T.PING).length, 1)) },
  { section: "9113 6.7", what: "PING on a stream: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(frame(T.PING, 0, 1, Buffer.alloc(8))), c.connectionError(E.PROTOCOL_ERROR)) },
  { section: "9113 6.7", what: "PING of a length other than 8: FRAME_SIZE_ERROR", run: async (c) => (await c.handshake(), c.send(frame(T.PING, 0, 0, Buffer.alloc(6))), c.connectionError(E.FRAME_SIZE_ERROR)) },
  // §6.8 GOAWAY
  { section: "9113 6.8", what: "GOAWAY on a stream: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(frame(T.GOAWAY, 0, 1, Buffer.alloc(8))), c.connectionError(E.PROTOCOL_ERROR)) },
  {
    section: "9113 6.8",
    what: "after the client's GOAWAY, open streams are still answered",
    run: async (c) => {
      await c.handshake();
      c.send(c.headers(1, GET), frame(T.GOAWAY, 0, 0, Buffer.concat([u32(0), u32(0)])));
      await c.answered(1);
    },
  },
  // §6.9 WINDOW_UPDATE
  { section: "9113 6.9", what: "WINDOW_UPDATE of 0 on the connection: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(windowUpdateFrame(0, 0)), c.connectionError(E.PROTOCOL_ERROR)) },
  { section: "9113 6.9", what: "WINDOW_UPDATE of 0 on a stream: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, request("/hold")), windowUpdateFrame(1, 0)), c.streamError(1, E.PROTOCOL_ERROR)) },
  { section: "9113 6.9", what: "WINDOW_UPDATE of a length other than 4: FRAME_SIZE_ERROR", run: async (c) => (await c.handshake(), c.send(frame(T.WINDOW_UPDATE, 0, 0, Buffer.alloc(3))), c.connectionError(E.FRAME_SIZE_ERROR)) },
  // §6.9.1 the flow-control window
  { section: "9113 6.9.1", what: "an initial window of 1: DATA of 1 octet", run: async (c) => (await c.handshake([[S.INITIAL_WINDOW_SIZE, 1]]), c.send(c.headers(1, GET)), assert.equal((await c.firstData(1)).payload.length, 1)) },
  { section: "9113 6.9.1", what: "the connection window above 2^31-1: FLOW_CONTROL_ERROR", run: async (c) => (await c.handshake(), c.send(windowUpdateFrame(0, 2 ** 31 - 1), windowUpdateFrame(0, 2 ** 31 - 1)), c.connectionError(E.FLOW_CONTROL_ERROR)) },
  { section: "9113 6.9.1", what: "a stream window above 2^31-1: FLOW_CONTROL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, request("/hold")), windowUpdateFrame(1, 2 ** 31 - 1), windowUpdateFrame(1, 2 ** 31 - 1)), c.streamError(1, E.FLOW_CONTROL_ERROR)) },
  // §6.9.2 initial flow-control window size
  {
    section: "9113 6.9.2",
    what: "SETTINGS_INITIAL_WINDOW_SIZE changed after HEADERS: the new window applies",
    run: async (c) => {
      await c.handshake([[S.INITIAL_WINDOW_SIZE, 0]]);
      c.send(c.headers(1, GET));
      await c.peer.waitFor((f) => f.type === T.HEADERS && f.streamId === 1, "the response headers");
      c.send(settings([[S.INITIAL_WINDOW_SIZE, 1]]));
      assert.equal((await c.firstData(1)).payload.length, 1);
    },
  },
  {
    section: "9113 6.9.2",
    what: "a window made negative by SETTINGS: no DATA until WINDOW_UPDATE brings it above 0",
    run: async (c) => {
      await c.handshake([[S.INITIAL_WINDOW_SIZE, 1]]);
      c.send(c.headers(1, GET));
      const first = await c.firstData(1);
      c.send(settings([[S.INITIAL_WINDOW_SIZE, 0]])); // the stream's window: 1 - 1 - 1 = -1
      await c.alive();
      c.send(windowUpdateFrame(1, 1)); // -1 + 1 = 0: still nothing may be sent
      await c.alive();
      assert.deepEqual(c.peer.frames.filter((f) => f.type === T.DATA && f.streamId === 1), [first]);
      c.send(windowUpdateFrame(1, 1));
      const second = await c.peer.waitFor((f) => f.type === T.DATA && f.streamId === 1 && f !== first, "the second DATA");
      assert.equal(second.payload.length, 1);
    },
  },
  { section: "9113 6.9.2", what: "SETTINGS_INITIAL_WINDOW_SIZE taking a stream window above 2^31-1: FLOW_CONTROL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, request("/hold")), windowUpdateFrame(1, 2 ** 31 - 1 - 65_535), settings([[S.INITIAL_WINDOW_SIZE, 65_536]])), c.connectionError(E.FLOW_CONTROL_ERROR)) },
  // §6.10 CONTINUATION
  {
    section: "9113 6.10",
    what: "a header block over HEADERS and several CONTINUATIONs",
    run: async (c) => {
      await c.handshake();
      const block = c.block(GET);
      c.send(frame(T.HEADERS, F.END_STREAM, 1, block.subarray(0, 2)), frame(T.CONTINUATION, 0, 1, block.subarray(2, 4)), frame(T.CONTINUATION, F.END_HEADERS, 1, block.subarray(4)));
      await c.answered(1);
    },
  },
  { section: "9113 6.10", what: "a header block interrupted by another frame: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, GET, F.END_STREAM), frame(T.DATA, 0, 1, Buffer.from("x"))), c.connectionError(E.PROTOCOL_ERROR)) },
  { section: "9113 6.10", what: "CONTINUATION on stream 0: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, GET, F.END_STREAM), frame(T.CONTINUATION, F.END_HEADERS, 0, c.block(["x-a", "b"]))), c.connectionError(E.PROTOCOL_ERROR)) },
  { section: "9113 6.10", what: "CONTINUATION after HEADERS with END_HEADERS: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, request("/hold")), frame(T.CONTINUATION, F.END_HEADERS, 1, c.block(["x-a", "b"]))), c.streamError(1, E.PROTOCOL_ERROR, E.STREAM_CLOSED)) },
  { section: "9113 6.10", what: "CONTINUATION after a CONTINUATION with END_HEADERS: PROTOCOL_ERROR", run: async (c) => { await c.handshake(); const b = c.block(request("/hold")); c.send(frame(T.HEADERS, F.END_STREAM, 1, b.subarray(0, 2)), frame(T.CONTINUATION, F.END_HEADERS, 1, b.subarray(2)), frame(T.CONTINUATION, F.END_HEADERS, 1, c.block(["x-a", "b"]))); await c.streamError(1, E.PROTOCOL_ERROR, E.STREAM_CLOSED); } },
  { section: "9113 6.10", what: "CONTINUATION after DATA: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, POST("/hold"), F.END_HEADERS), frame(T.DATA, 0, 1, Buffer.from("x")), frame(T.CONTINUATION, F.END_HEADERS, 1, c.block(["x-a", "b"]))), c.connectionError(E.PROTOCOL_ERROR)) },
  // §7 error codes
  { section: "9113 7", what: "GOAWAY with an unknown error code is not an error", run: async (c) => (await c.handshake(), c.send(frame(T.GOAWAY, 0, 0, Buffer.concat([u32(0), u32(0xff)]))), c.alive()) },
  { section: "9113 7", what: "RST_STREAM with an unknown error code is not an error", run: async (c) => (await c.handshake(), c.send(c.headers(1, POST("/hold"), F.END_HEADERS), frame(T.RST_STREAM, 0, 1, u32(0xff))), c.alive()) },
  // §8.1 HTTP message framing
  { section: "9113 8.1", what: "a second HEADERS without END_STREAM: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, POST("/hold"), F.END_HEADERS), c.headers(1, ["x-trailer", "t"], F.END_HEADERS)), c.streamError(1, E.PROTOCOL_ERROR)) },
  { section: "9113 8.1", what: "trailers carrying a pseudo-header: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, POST("/hold"), F.END_HEADERS), c.headers(1, [":method", "GET"])), c.streamError(1, E.PROTOCOL_ERROR)) },
  {
    section: "9113 8.1",
    what: "request trailers reach the app",
    run: async (c) => {
      await c.handshake();
      c.send(c.headers(1, POST(), F.END_HEADERS), frame(T.DATA, 0, 1, Buffer.from("abc")), c.headers(1, ["x-trailer", "t"]));
      assert.equal((await c.answered(1)).body.toString(), "abc");
    },
  },
  // §8.1.1 malformed messages: content-length
  { section: "9113 8.1.1", what: "content-length larger than the DATA: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, request("/", ["content-length", "10"], "POST"), F.END_HEADERS), frame(T.DATA, F.END_STREAM, 1, Buffer.from("abc"))), c.streamError(1, E.PROTOCOL_ERROR)) },
  { section: "9113 8.1.1", what: "content-length smaller than the sum of DATA frames: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, request("/", ["content-length", "4"], "POST"), F.END_HEADERS), frame(T.DATA, 0, 1, Buffer.from("abc")), frame(T.DATA, F.END_STREAM, 1, Buffer.from("def"))), c.streamError(1, E.PROTOCOL_ERROR)) },
  { section: "9113 8.1.1", what: "content-length that matches is accepted", run: async (c) => (await c.handshake(), c.send(c.headers(1, request("/", ["content-length", "6"], "POST"), F.END_HEADERS), frame(T.DATA, 0, 1, Buffer.from("abc")), frame(T.DATA, F.END_STREAM, 1, Buffer.from("def"))), assert.equal((await c.answered(1)).body.toString(), "abcdef")) },
  // §8.2.1 field validity
  { section: "9113 8.2.1", what: "an uppercase field name: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, [...GET, "X-Upper", "1"])), c.streamError(1, E.PROTOCOL_ERROR)) },
  { section: "9113 8.2.1", what: "a field name with a space or colon: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, [...GET, "x bad", "1"]), c.headers(3, [...GET, "x:bad", "1"])), await c.streamError(1, E.PROTOCOL_ERROR), c.streamError(3, E.PROTOCOL_ERROR)) },
  { section: "9113 8.2.1", what: "a field value with NUL, CR or LF: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, [...GET, "x-a", "a\r\nb"]), c.headers(3, [...GET, "x-a", "a\0b"])), await c.streamError(1, E.PROTOCOL_ERROR), c.streamError(3, E.PROTOCOL_ERROR)) },
  { section: "9113 8.2.1", what: "a field value with leading or trailing whitespace: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, [...GET, "x-a", " a"]), c.headers(3, [...GET, "x-a", "a\t"])), await c.streamError(1, E.PROTOCOL_ERROR), c.streamError(3, E.PROTOCOL_ERROR)) },
  // §8.2.2 connection-specific fields
  { section: "9113 8.2.2", what: "a connection-specific field: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, [...GET, "connection", "keep-alive"]), c.headers(3, [...GET, "transfer-encoding", "chunked"])), await c.streamError(1, E.PROTOCOL_ERROR), c.streamError(3, E.PROTOCOL_ERROR)) },
  { section: "9113 8.2.2", what: "te other than \"trailers\": PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, [...GET, "te", "trailers, deflate"])), c.streamError(1, E.PROTOCOL_ERROR)) },
  { section: "9113 8.2.2", what: "te: trailers is accepted", run: async (c) => (await c.handshake(), c.send(c.headers(1, [...GET, "te", "trailers"])), c.answered(1).then(() => {})) },
  // §8.3 control data (pseudo-header fields)
  { section: "9113 8.3", what: "an unknown pseudo-header: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, [...GET, ":custom", "x"])), c.streamError(1, E.PROTOCOL_ERROR)) },
  { section: "9113 8.3", what: "a response pseudo-header in a request: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, [...GET, ":status", "200"])), c.streamError(1, E.PROTOCOL_ERROR)) },
  { section: "9113 8.3", what: "a pseudo-header after a regular field: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, ["x-first", "1", ...GET])), c.streamError(1, E.PROTOCOL_ERROR)) },
  { section: "9113 8.3.1", what: "an empty :path: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, [":method", "GET", ":scheme", "http", ":path", "", ":authority", "x"])), c.streamError(1, E.PROTOCOL_ERROR)) },
  { section: "9113 8.3.1", what: "no :method: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, [":scheme", "http", ":path", "/", ":authority", "x"])), c.streamError(1, E.PROTOCOL_ERROR)) },
  { section: "9113 8.3.1", what: "no :scheme: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, [":method", "GET", ":path", "/", ":authority", "x"])), c.streamError(1, E.PROTOCOL_ERROR)) },
  { section: "9113 8.3.1", what: "no :path: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, [":method", "GET", ":scheme", "http", ":authority", "x"])), c.streamError(1, E.PROTOCOL_ERROR)) },
  { section: "9113 8.3.1", what: ":method twice: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, [":method", "GET", ...GET])), c.streamError(1, E.PROTOCOL_ERROR)) },
  { section: "9113 8.3.1", what: ":scheme twice: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, [":scheme", "http", ...GET])), c.streamError(1, E.PROTOCOL_ERROR)) },
  { section: "9113 8.3.1", what: ":path twice: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, [":path", "/", ...GET])), c.streamError(1, E.PROTOCOL_ERROR)) },
  { section: "9113 8.5", what: "CONNECT with :path: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(c.headers(1, [":method", "CONNECT", ":authority", "x:443", ":path", "/"])), c.streamError(1, E.PROTOCOL_ERROR)) },
  // §8.4 server push
  { section: "9113 8.4", what: "PUSH_PROMISE from a client: PROTOCOL_ERROR", run: async (c) => (await c.handshake(), c.send(frame(T.PUSH_PROMISE, F.END_HEADERS, 1, Buffer.concat([u32(2), c.block(GET)]))), c.connectionError(E.PROTOCOL_ERROR)) },
  // RFC 7541
  { section: "7541 2.3.3", what: "an indexed field past the tables: COMPRESSION_ERROR", run: async (c) => (await c.handshake(), c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, Buffer.from([0xff, 0x3f]))), c.connectionError(E.COMPRESSION_ERROR)) },
  { section: "7541 2.3.3", what: "a literal whose name index is past the tables: COMPRESSION_ERROR", run: async (c) => (await c.handshake(), c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, Buffer.from([0x7f, 0x3f, 0x01, 0x61]))), c.connectionError(E.COMPRESSION_ERROR)) },
  { section: "7541 4.2", what: "a dynamic table size update after a field: COMPRESSION_ERROR", run: async (c) => (await c.handshake(), c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, Buffer.concat([c.block(GET), Buffer.from([0x3f, 0xe1, 0x1f])]))), c.connectionError(E.COMPRESSION_ERROR)) },
  { section: "7541 5.2", what: "Huffman padding longer than 7 bits: COMPRESSION_ERROR", run: async (c) => (await c.handshake(), c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, Buffer.concat([c.block(GET), Buffer.from([0x00, 0x82, ...huffmanEncode("a"), 0xff, 0x01, 0x61])]))), c.connectionError(E.COMPRESSION_ERROR)) },
  { section: "7541 5.2", what: "Huffman padding that is not the EOS prefix: COMPRESSION_ERROR", run: async (c) => (await c.handshake(), c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, Buffer.concat([c.block(GET), Buffer.from([0x00, 0x81, 0x18, 0x01, 0x61])]))), c.connectionError(E.COMPRESSION_ERROR)) },
  { section: "7541 5.2", what: "a Huffman string with the EOS symbol: COMPRESSION_ERROR", run: async (c) => (await c.handshake(), c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, Buffer.concat([c.block(GET), Buffer.from([0x00, 0x84, 0xff, 0xff, 0xff, 0xff, 0x01, 0x61])]))), c.connectionError(E.COMPRESSION_ERROR)) },
  { section: "7541 6.1", what: "an indexed field with index 0: COMPRESSION_ERROR", run: async (c) => (await c.handshake(), c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, Buffer.concat([c.block(GET), Buffer.from([0x80])]))), c.connectionError(E.COMPRESSION_ERROR)) },
  { section: "7541 6.3", what: "a table size update above SETTINGS_HEADER_TABLE_SIZE: COMPRESSION_ERROR", run: async (c) => (await c.handshake(), c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, Buffer.concat([Buffer.from([0x3f, 0xe2, 0x1f]), c.block(GET)]))), c.connectionError(E.COMPRESSION_ERROR)) },
  {
    section: "7541 6.2",
    what: "every literal representation is decoded (indexing, without, never; new and indexed names; Huffman) and indexed entries are referenced",
    run: async (c) => {
      await c.handshake();
      // :path and :authority with incremental indexing (static names 4 and 1), then new names; user-agent is static 58 (a two-octet integer).
      const first = Buffer.concat([Buffer.from([0x82, 0x86, 0x44]), str("/headers"), Buffer.from([0x41]), str("test"), literal(0x40, "x-incremental", "i"), literal(0x00, "x-without", "w"), literal(0x10, "x-never", "n"), literal(0x40, "x-huffman", "huffman value", true), Buffer.from([0x0f, 0x2b]), str("tether-test", true)]);
      // The dynamic table, newest first: 62 x-huffman, 63 x-incremental, 64 :authority, 65 :path.
      const second = Buffer.from([0x82, 0x86, 0xc1, 0xc0, 0xbf, 0xbe]);
      c.send(headersFrame(1, first, F.END_STREAM), headersFrame(3, second, F.END_STREAM));
      const seen1 = JSON.parse((await c.answered(1)).body.toString());
      const seen3 = JSON.parse((await c.answered(3)).body.toString());
      assert.deepEqual([seen1["x-incremental"], seen1["x-without"], seen1["x-never"], seen1["x-huffman"], seen1["user-agent"]], ["i", "w", "n", "huffman value", "tether-test"]);
      assert.deepEqual([seen3["x-incremental"], seen3["x-huffman"]], ["i", "huffman value"]);
    },
  },
  { section: "7541 4.2", what: "size updates at the start of a block (to 0, then back to 4096) are applied", run: async (c) => (await c.handshake(), c.send(headersFrame(1, Buffer.concat([Buffer.from([0x20, 0x3f, 0xe1, 0x1f]), getBlock("/")]), F.END_STREAM)), c.answered(1).then(() => {})) },
  {
    section: "7541 4.3",
    what: "a size update to 0 evicts every entry: a reference to one is a COMPRESSION_ERROR",
    run: async (c) => {
      await c.handshake();
      c.send(headersFrame(1, Buffer.concat([getBlock("/"), literal(0x40, "x-a", "b")]), F.END_STREAM));
      await c.answered(1);
      c.send(headersFrame(3, Buffer.concat([Buffer.from([0x20, 0x3f, 0xe1, 0x1f]), getBlock("/"), Buffer.from([0xbe])]), F.END_STREAM));
      await c.connectionError(E.COMPRESSION_ERROR);
    },
  },
  { section: "7541 5.2", what: "a string literal longer than the rest of the block: COMPRESSION_ERROR", run: async (c) => (await c.handshake(), c.send(headersFrame(1, Buffer.concat([getBlock("/"), Buffer.from([0x00, 0x05, 0x61])]), F.END_STREAM)), c.connectionError(E.COMPRESSION_ERROR)) },
  {
    section: "7541 4.2",
    what: "after SETTINGS_HEADER_TABLE_SIZE 0 the server's next block starts with a size update and uses no dynamic table",
    run: async (c) => {
      await c.handshake([[S.HEADER_TABLE_SIZE, 0]]);
      c.send(c.headers(1, GET), c.headers(3, GET), c.headers(5, GET));
      for (const id of [1, 3, 5]) await c.answered(id);
      const blocks = c.peer.frames.filter((f) => f.type === T.HEADERS).map((f) => f.payload);
      assert.equal(blocks[0]![0]! & 0xe0, 0x20, "a dynamic table size update first");
      const decoder = new HpackDecoder({ maxTableSize: 0 });
      for (const b of blocks) assert.equal(fieldValue(decoder.decode(b), ":status"), "200");
      assert.equal(decoder.dynamicTableSize, 0);
    },
  },
  {
    section: "7541 6.2.3",
    app: "raw",
    what: "a never-indexed request field is forwarded never indexed (§7.1.3), on every request",
    run: async (c) => {
      await c.handshake();
      const paths = [c.rawPath("/ok", 1), c.rawPath("/ok", 2)];
      c.send(...paths.map((path, i) => headersFrame(1 + 2 * i, Buffer.concat([getBlock(path), NEVER_INDEXED_SECRET]), F.END_STREAM)));
      for (const id of [1, 3]) await c.answered(id);
      for (const path of paths) assert.ok(rawRequestBlocks.get(path)?.includes(NEVER_INDEXED_SECRET), `the app got ${rawRequestBlocks.get(path)?.toString("hex")}`);
    },
  },
  {
    section: "7541 6.2.3",
    app: "raw",
    what: "a never-indexed response field is forwarded never indexed (§7.1.3)",
    run: async (c) => {
      await c.handshake();
      c.send(c.headers(1, request(c.rawPath("/never-indexed"))));
      await c.answered(1);
      const block = c.peer.frames.find((f) => f.type === T.HEADERS && f.streamId === 1)!.payload;
      assert.ok(block.includes(NEVER_INDEXED_SECRET), `the client got ${block.toString("hex")}`);
    },
  },
  // The sender's side of frame sizes (§4.2) and of flow control (§6.9.1).
  {
    section: "9113 4.2",
    what: "frames sent are at most the default SETTINGS_MAX_FRAME_SIZE (2^14)",
    run: async (c) => {
      await c.handshake();
      c.peer.autoCredit = true;
      c.send(c.headers(1, request("/big")));
      assert.equal((await c.answered(1)).body.length, BIG.length);
      c.framesAtMost(16_384);
    },
  },
  {
    section: "9113 4.2",
    what: "frames sent are at most a raised SETTINGS_MAX_FRAME_SIZE",
    run: async (c) => {
      await c.handshake([[S.MAX_FRAME_SIZE, 20_000]]);
      c.peer.autoCredit = true;
      c.send(c.headers(1, request("/big")));
      assert.equal((await c.answered(1)).body.length, BIG.length);
      c.framesAtMost(20_000);
    },
  },
  {
    section: "9113 6.10",
    app: "raw",
    what: "a response header block larger than a frame is sent as HEADERS and CONTINUATION",
    run: async (c) => {
      await c.handshake();
      c.send(c.headers(1, request(c.rawPath("/big-header"))));
      const r = await c.answered(1);
      assert.equal(fieldValue(r.fields!, "x-big")?.length, 20_000);
      assert.ok(c.peer.frames.some((f) => f.type === T.CONTINUATION && f.streamId === 1), "CONTINUATION frames");
      c.framesAtMost(16_384);
    },
  },
  {
    section: "9113 6.9.1",
    what: "DATA beyond the stream window the server advertised: FLOW_CONTROL_ERROR",
    run: async (c) => {
      await c.handshake();
      const window = c.serverSettings().get(S.INITIAL_WINDOW_SIZE) ?? 65_535;
      const data: Buffer[] = [];
      for (let left = window + 1; left > 0; left -= 16_384) data.push(frame(T.DATA, 0, 1, Buffer.alloc(Math.min(16_384, left))));
      c.send(c.headers(1, POST("/hold"), F.END_HEADERS), ...data);
      await c.streamError(1, E.FLOW_CONTROL_ERROR);
    },
  },
  // §3.4 an invalid preface
  {
    section: "9113 3.4",
    what: "an invalid preface: PROTOCOL_ERROR or closed (outbound: not HTTP/2, so relayed as opaque TCP)",
    run: async (c) => {
      const bad = Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", "latin1"), settings()]);
      c.send(bad);
      if (c.listener === "inbound") return c.connectionErrorOrClosed(E.PROTOCOL_ERROR); // ALPN said h2
      // Outbound, what is not HTTP/2 goes to the destination as it is: the app's own answer comes back.
      const direct = await RawPeer.connect(nodeAppPort, { handshake: false });
      direct.send(bad);
      await Promise.all([direct.closed(), c.peer.closed()]);
      assert.equal(c.peer.describe(), direct.describe());
    },
  },
  // §8.1 responses through the proxies (raw app): interim responses, trailers, and malformed responses never forwarded (§8.1.1)
  {
    section: "9113 8.1",
    app: "raw",
    what: "a response with DATA and trailers is forwarded unchanged",
    run: async (c) => {
      await c.handshake();
      c.send(c.headers(1, request(c.rawPath("/ok"))));
      const r = await c.peer.response(1);
      assert.deepEqual([r.fields, r.body.toString(), r.trailers], [[":status", "200", "x-a", "b"], "abc", ["x-trailer", "t"]]);
    },
  },
  {
    section: "9113 8.1",
    app: "raw",
    what: "an interim (1xx) response is forwarded before the final one",
    run: async (c) => {
      await c.handshake();
      c.send(c.headers(1, request(c.rawPath("/interim"))));
      await c.peer.response(1);
      const blocks = c.peer.frames.filter((f) => f.type === T.HEADERS && f.streamId === 1).map((f) => f.fields?.[1]);
      assert.deepEqual(blocks, ["103", "200"]);
    },
  },
  ...RESPONSE_CASES.map(([path, what]): Case => ({
    section: "9113 8.1.1",
    app: "raw",
    what: `a malformed response (${what}) is not forwarded`,
    run: async (c) => {
      await c.handshake();
      c.send(c.headers(1, request(c.rawPath(path))));
      await c.malformedNotForwarded(1);
      await c.alive();
    },
  })),
];

const results: { listener: string; c: Case; ok: boolean }[] = [];
for (const listener of ["outbound", "inbound"] as const) {
  for (const c of CASES) {
    test(`${listener} §${c.section}: ${c.what}`, { timeout: 20_000 }, async () => {
      const peer = await connect(listener, c.app ?? "node");
      try {
        await c.run(new Conn(peer, listener));
        results.push({ listener, c, ok: true });
      } catch (err) {
        results.push({ listener, c, ok: false });
        throw err;
      } finally {
        peer.destroy();
      }
    });
  }
}

after(() => {
  if (!process.env.CONFORMANCE_TABLE) return;
  const lines = ["| RFC section | case | outbound (h2c) | inbound (mTLS) |", "|---|---|---|---|"];
  for (const c of CASES) {
    const mark = (l: string) => (results.find((r) => r.c === c && r.listener === l)?.ok ? "pass" : "FAIL");
    lines.push(`| ${c.section} | ${c.what.replace(/\|/g, "\\|")} | ${mark("outbound")} | ${mark("inbound")} |`);
  }
  console.log(lines.join("\n"));
});
