/**
 * The HTTP/2 connection state machine (src/proxy/h2/connection.ts), live: an H2Connection on an
 * in-memory socket, in server and in client role, is sent frame sequences built by a generator that
 * knows the frame types and keeps a model of every stream's state (RFC 9113 §5.1). A sequence is
 * valid frames, then (usually) one violation from a catalogue that names the RFC's answer; or, for
 * crash search, random frames after the handshake.
 *
 * Oracle: nothing escapes the connection (no exception, no "h2-internal" error); memory stays
 * bounded (open streams within the limit, output proportional to input); valid frames get no error
 * and every PING and SETTINGS its ACK; a connection violation ends in one GOAWAY with the RFC's
 * code and nothing after it; a stream violation gets RST_STREAM with the RFC's code on that stream
 * and the connection goes on.
 */
import fc from "fast-check";
import { H2Connection, type H2Stream } from "../../../src/proxy/h2/connection.js";
import { ErrorCode as E, Flags as F, FrameType as T, frame, FrameReader, rstStreamFrame, settingsFrame, Setting as S, windowUpdateFrame, type Frame } from "../../../src/proxy/h2/frames.js";
import { HpackEncoder, type HeaderFields } from "../../../src/proxy/h2/hpack.js";
import { MemorySocket } from "../../proxy/fixtures/memory-socket.js";
import { expect, target } from "./target.js";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const MAX_STREAMS = 4;
const LIMITS = { maxConcurrentStreams: MAX_STREAMS, maxRefusedStreams: 1000, initialWindowSize: 65_535, connectionWindowSize: 65_535 };

/** One step of the generator: which kind of frame, and numbers the interpreter turns into its fields. */
interface Choice {
  kind: number;
  a: number;
  b: number;
  bytes: Uint8Array;
}

interface Input {
  role: "server" | "client";
  steps: Choice[];
  /** Index into the violation catalogue (modulo its length), or -1 for none. */
  violation: number;
  /** Crash search: random frames instead of the model's. */
  random: Uint8Array[] | undefined;
}

const choice: fc.Arbitrary<Choice> = fc.record({ kind: fc.nat(40), a: fc.nat(1000), b: fc.nat(1000), bytes: fc.uint8Array({ maxLength: 24 }) });

const arbitrary: fc.Arbitrary<Input> = fc.record({
  role: fc.constantFrom("server" as const, "client" as const),
  steps: fc.array(choice, { maxLength: 16 }),
  violation: fc.oneof({ weight: 1, arbitrary: fc.constant(-1) }, { weight: 4, arbitrary: fc.nat(200) }),
  random: fc.option(fc.array(fc.uint8Array({ minLength: 9, maxLength: 40 }), { minLength: 1, maxLength: 8 }), { freq: 5, nil: undefined }),
});

type StreamState = "open" | "half-closed-remote" | "ended" | "reset-by-peer" | "reset-by-us";

/** What the frames sent so far should have produced. */
interface Expected {
  pings: number;
  settings: number;
  /** Streams that must have been reset, and with which code. */
  resets: Map<number, number>;
  /** Code of the GOAWAY that must end the connection, if a connection violation was sent. */
  goaway?: number;
  /** The violation (for messages). */
  what?: string;
}

/** The generator's model of one connection, and the bytes it sends. */
class Model {
  readonly out: Buffer[] = [];
  readonly streams = new Map<number, StreamState>();
  readonly encoder = new HpackEncoder();
  /** Server role: next id the client may open. Client role: ids we opened. */
  nextId = 1;
  /** Server role: ids skipped by the client (never opened, lower than a later stream). */
  readonly skipped: number[] = [];
  readonly expected: Expected = { pings: 0, settings: 0, resets: new Map() };
  /** Streams the server role's app answered (ended by the client's END_STREAM, not held). */
  held = new Set<number>();

  constructor(readonly role: "server" | "client") {}

  send(...frames: Buffer[]): void {
    this.out.push(...frames);
  }

  openCount(): number {
    return [...this.streams.values()].filter((s) => s === "open" || s === "half-closed-remote").length;
  }

  pick(states: StreamState[], n: number): number | undefined {
    const ids = [...this.streams].filter(([, s]) => states.includes(s)).map(([id]) => id);
    return ids.length === 0 ? undefined : ids[n % ids.length];
  }

  block(fields: HeaderFields): Buffer {
    return this.encoder.encode(fields);
  }
}

const request = (path: string, extra: HeaderFields = []): HeaderFields => [":method", "POST", ":scheme", "http", ":path", path, ":authority", "fuzz", ...extra];

// ---- valid steps ----

/** Server role: one valid client frame (or a few), updating the model. */
function clientStep(m: Model, c: Choice): void {
  switch (c.kind % 11) {
    case 0:
    case 1: {
      // A new request; sometimes skipping ids, sometimes split with CONTINUATION, padded or with priority.
      if (c.a % 5 === 0) m.skipped.push(m.nextId), (m.nextId += 2);
      const id = m.nextId;
      m.nextId += 2;
      const hold = c.b % 3 === 0;
      const end = c.b % 2 === 0;
      const block = m.block(request(hold ? "/hold" : "/answer"));
      let flags = end ? F.END_STREAM : 0;
      // The HEADERS frame: pad length and priority fields, (part of) the block, padding.
      const split = c.a % 3 === 0 && block.length > 1 ? 1 : block.length;
      let first = block.subarray(0, split);
      if (c.a % 7 === 1) (flags |= F.PRIORITY), (first = Buffer.concat([Buffer.from([0, 0, 0, (id + 2) & 0xff, 16]), first]));
      if (c.a % 7 === 2) (flags |= F.PADDED), (first = Buffer.concat([Buffer.from([3]), first, Buffer.alloc(3)]));
      if (split < block.length) m.send(frame(T.HEADERS, flags, id, first), frame(T.CONTINUATION, F.END_HEADERS, id, block.subarray(split)));
      else m.send(frame(T.HEADERS, flags | F.END_HEADERS, id, first));
      if (m.openCount() >= MAX_STREAMS) {
        m.streams.set(id, "reset-by-us");
        m.expected.resets.set(id, E.REFUSED_STREAM);
        return;
      }
      if (hold) m.held.add(id);
      return void m.streams.set(id, end ? (hold ? "half-closed-remote" : "ended") : "open");
    }
    case 2:
    case 3: {
      const id = m.pick(["open"], c.a);
      if (id === undefined) return;
      const end = c.b % 3 === 0;
      m.send(frame(T.DATA, end ? F.END_STREAM : 0, id, Buffer.from(c.bytes)));
      if (end) m.streams.set(id, m.held.has(id) ? "half-closed-remote" : "ended");
      return;
    }
    case 4: {
      const id = m.pick(["open"], c.a);
      if (id === undefined) return;
      m.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, id, m.block(["x-trailer", "t"])));
      return void m.streams.set(id, m.held.has(id) ? "half-closed-remote" : "ended");
    }
    case 5: {
      const id = m.pick(["open", "half-closed-remote"], c.a);
      if (id === undefined) return;
      m.send(rstStreamFrame(id, c.b % 14));
      return void m.streams.set(id, "reset-by-peer");
    }
    case 6:
      m.expected.pings++;
      return m.send(frame(T.PING, 0, 0, Buffer.alloc(8, c.a)));
    case 7: {
      const pairs: [number, number][] = [
        [S.HEADER_TABLE_SIZE, c.a * 8],
        [S.ENABLE_PUSH, c.b % 2],
        [S.MAX_CONCURRENT_STREAMS, c.a],
        [S.INITIAL_WINDOW_SIZE, 16 + c.b * 64],
        [S.MAX_FRAME_SIZE, 16_384 + c.a],
        [0x20 + (c.b % 100), c.a],
      ];
      m.expected.settings++;
      return m.send(settingsFrame(pairs.filter((_, i) => (c.a >> i) & 1)));
    }
    case 8: {
      const id = c.a % 2 === 0 ? 0 : m.pick(["open", "half-closed-remote", "ended", "reset-by-peer", "reset-by-us"], c.b);
      return m.send(windowUpdateFrame(id ?? 0, 1 + c.b));
    }
    case 9: {
      const id = 1 + 2 * (c.a % 20);
      return m.send(frame(T.PRIORITY, 0, id, Buffer.from([0, 0, 0, (id + 2) & 0xff, c.b & 0xff])));
    }
    default:
      // An extension frame: ignored (§4.1, §5.5).
      return m.send(frame(10 + (c.a % 200), c.b & 0xff, c.a % 5, Buffer.from(c.bytes)));
  }
}

/** Client role: one valid server frame, on the streams we opened. */
function serverStep(m: Model, c: Choice): void {
  switch (c.kind % 8) {
    case 0:
    case 1: {
      const id = m.pick(["open"], c.a);
      if (id === undefined || m.held.has(id)) return;
      m.held.add(id); // here: the response headers were sent
      const end = c.b % 3 === 0;
      m.send(frame(T.HEADERS, F.END_HEADERS | (end ? F.END_STREAM : 0), id, m.block([":status", String(200 + (c.b % 300)), "x-r", "1"])));
      if (end) m.streams.set(id, "ended");
      return;
    }
    case 2: {
      const id = m.pick(["open"], c.a);
      if (id === undefined || !m.held.has(id)) return;
      const end = c.b % 2 === 0;
      m.send(frame(T.DATA, end ? F.END_STREAM : 0, id, Buffer.from(c.bytes)));
      if (end) m.streams.set(id, "ended");
      return;
    }
    case 3: {
      const id = m.pick(["open"], c.a);
      if (id === undefined || !m.held.has(id)) return;
      m.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, id, m.block(["grpc-status", "0"])));
      return void m.streams.set(id, "ended");
    }
    case 4: {
      const id = m.pick(["open"], c.a);
      if (id === undefined) return;
      m.send(rstStreamFrame(id, c.b % 14));
      return void m.streams.set(id, "reset-by-peer");
    }
    case 5:
      m.expected.pings++;
      return m.send(frame(T.PING, 0, 0, Buffer.alloc(8, c.a)));
    case 6:
      m.expected.settings++;
      return m.send(settingsFrame([[S.MAX_CONCURRENT_STREAMS, c.a], [S.INITIAL_WINDOW_SIZE, 16 + c.b]]));
    default:
      return m.send(windowUpdateFrame(0, 1 + c.a));
  }
}

// ---- violations ----

type Violation = (m: Model, c: Choice) => boolean;

/** A connection error with `code` (the connection must end with GOAWAY(code)). */
function conn(m: Model, code: number, what: string, ...frames: Buffer[]): boolean {
  m.send(...frames);
  m.expected.goaway = code;
  m.expected.what = what;
  return true;
}

/** A stream error with `code` on `id` (RST_STREAM; the connection goes on). */
function streamError(m: Model, id: number, code: number, what: string, state: StreamState, ...frames: Buffer[]): boolean {
  m.send(...frames);
  m.expected.resets.set(id, code);
  m.expected.what = what;
  m.streams.set(id, state);
  return true;
}

const COMMON: Violation[] = [
  (m) => conn(m, E.PROTOCOL_ERROR, "DATA on stream 0", frame(T.DATA, 0, 0, Buffer.from("x"))),
  (m) => conn(m, E.PROTOCOL_ERROR, "HEADERS on stream 0", frame(T.HEADERS, F.END_HEADERS, 0, m.block(request("/")))),
  (m) => conn(m, E.PROTOCOL_ERROR, "SETTINGS on a stream", frame(T.SETTINGS, 0, 1, Buffer.alloc(0))),
  (m, c) => conn(m, E.FRAME_SIZE_ERROR, "SETTINGS of a length not a multiple of 6", frame(T.SETTINGS, 0, 0, Buffer.alloc(1 + (c.a % 5)))),
  (m) => conn(m, E.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload", frame(T.SETTINGS, F.ACK, 0, Buffer.alloc(6))),
  (m, c) => conn(m, E.PROTOCOL_ERROR, "SETTINGS_ENABLE_PUSH above 1", settingsFrame([[S.ENABLE_PUSH, 2 + c.a]])),
  (m, c) => conn(m, E.FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1", settingsFrame([[S.INITIAL_WINDOW_SIZE, 2 ** 31 + c.a]])),
  (m, c) => conn(m, E.PROTOCOL_ERROR, "SETTINGS_MAX_FRAME_SIZE out of range", settingsFrame([[S.MAX_FRAME_SIZE, c.a % 2 ? c.b : 2 ** 24 + c.b]])),
  (m) => conn(m, E.PROTOCOL_ERROR, "PING on a stream", frame(T.PING, 0, 1, Buffer.alloc(8))),
  (m, c) => conn(m, E.FRAME_SIZE_ERROR, "PING not 8 bytes", frame(T.PING, 0, 0, Buffer.alloc(9 + (c.a % 4)))),
  (m) => conn(m, E.PROTOCOL_ERROR, "GOAWAY on a stream", frame(T.GOAWAY, 0, 1, Buffer.alloc(8))),
  (m) => conn(m, E.PROTOCOL_ERROR, "WINDOW_UPDATE of 0 on the connection", windowUpdateFrame(0, 0)),
  (m) => conn(m, E.FRAME_SIZE_ERROR, "WINDOW_UPDATE not 4 bytes", frame(T.WINDOW_UPDATE, 0, 0, Buffer.alloc(5))),
  (m) => conn(m, E.FLOW_CONTROL_ERROR, "connection window above 2^31-1", windowUpdateFrame(0, 2 ** 31 - 1), windowUpdateFrame(0, 2 ** 31 - 1)),
  (m) => conn(m, E.PROTOCOL_ERROR, "RST_STREAM on stream 0", rstStreamFrame(0, 0)),
  (m) => conn(m, E.FRAME_SIZE_ERROR, "RST_STREAM not 4 bytes", frame(T.RST_STREAM, 0, 1, Buffer.alloc(3))),
  (m) => conn(m, E.PROTOCOL_ERROR, "RST_STREAM on an idle stream", rstStreamFrame(m.nextId + 40, 0)),
  (m) => conn(m, E.PROTOCOL_ERROR, "PRIORITY on stream 0", frame(T.PRIORITY, 0, 0, Buffer.alloc(5))),
  (m) => conn(m, E.FRAME_SIZE_ERROR, "PRIORITY not 5 bytes", frame(T.PRIORITY, 0, 1, Buffer.alloc(4))),
  (m) => conn(m, E.PROTOCOL_ERROR, "DATA on an idle stream", frame(T.DATA, 0, m.nextId + 40, Buffer.from("x"))),
  (m) => conn(m, E.PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream", windowUpdateFrame(m.nextId + 40, 1)),
  (m) => conn(m, E.PROTOCOL_ERROR, "CONTINUATION without a header block", frame(T.CONTINUATION, F.END_HEADERS, 1, Buffer.alloc(0))),
  (m) => conn(m, E.PROTOCOL_ERROR, "PUSH_PROMISE (push is disabled)", frame(T.PUSH_PROMISE, F.END_HEADERS, 1, Buffer.alloc(4))),
  (m) => conn(m, E.FRAME_SIZE_ERROR, "a frame larger than SETTINGS_MAX_FRAME_SIZE", frame(T.DATA, 0, 1, Buffer.alloc(16_385))),
  (m) => conn(m, E.PROTOCOL_ERROR, "HEADERS on an even (never opened) stream", frame(T.HEADERS, F.END_HEADERS, 2, m.block(request("/")))),
];

const SERVER_ONLY: Violation[] = [
  (m) => {
    const id = m.nextId;
    m.nextId += 2;
    return conn(m, E.PROTOCOL_ERROR, "a frame inside a header block", frame(T.HEADERS, 0, id, m.block(request("/"))), frame(T.PING, 0, 0, Buffer.alloc(8)));
  },
  (m) => conn(m, E.COMPRESSION_ERROR, "an HPACK index of 0", frame(T.HEADERS, F.END_HEADERS, m.nextId, Buffer.from([0x80]))),
  (m) => {
    const id = m.skipped[0];
    return id !== undefined && conn(m, E.PROTOCOL_ERROR, "HEADERS on an id lower than a stream already opened", frame(T.HEADERS, F.END_HEADERS, id, m.block(request("/"))));
  },
  (m, c) => {
    const id = m.pick(["ended"], c.a);
    return id !== undefined && conn(m, E.STREAM_CLOSED, "DATA on a stream both sides ended", frame(T.DATA, 0, id, Buffer.from("x")));
  },
  (m, c) => {
    const id = m.pick(["open"], c.a);
    return id !== undefined && conn(m, E.PROTOCOL_ERROR, "DATA with a pad length past its end", frame(T.DATA, F.PADDED, id, Buffer.from([9, 1, 2])));
  },
  (m, c) => {
    const id = m.pick(["open"], c.a);
    return id !== undefined && streamError(m, id, E.PROTOCOL_ERROR, "WINDOW_UPDATE of 0 on a stream", "reset-by-us", windowUpdateFrame(id, 0));
  },
  (m, c) => {
    const id = m.pick(["open"], c.a);
    return id !== undefined && streamError(m, id, E.FLOW_CONTROL_ERROR, "stream window above 2^31-1", "reset-by-us", windowUpdateFrame(id, 2 ** 31 - 1));
  },
  (m, c) => {
    const id = m.pick(["half-closed-remote"], c.a);
    return id !== undefined && streamError(m, id, E.STREAM_CLOSED, "DATA on a half-closed (remote) stream", "reset-by-us", frame(T.DATA, 0, id, Buffer.from("x")));
  },
  (m, c) => {
    const id = m.pick(["reset-by-peer"], c.a);
    return id !== undefined && streamError(m, id, E.STREAM_CLOSED, "DATA after the client's RST_STREAM", "reset-by-peer", frame(T.DATA, 0, id, Buffer.from("x")));
  },
  (m, c) => {
    const id = m.pick(["open"], c.a);
    return id !== undefined && streamError(m, id, E.PROTOCOL_ERROR, "HEADERS without END_STREAM after the request's headers", "reset-by-us", frame(T.HEADERS, F.END_HEADERS, id, m.block(["x-a", "b"])));
  },
  (m, c) => {
    const id = m.pick(["open"], c.a);
    return id !== undefined && streamError(m, id, E.PROTOCOL_ERROR, "PRIORITY: a stream depending on itself", "reset-by-us", frame(T.PRIORITY, 0, id, Buffer.from([0, 0, 0, id, 1])));
  },
  (m, c) => {
    if (m.openCount() >= MAX_STREAMS) return false;
    const id = m.nextId;
    m.nextId += 2;
    const bad: HeaderFields[] = [
      [":method", "GET", ":scheme", "http", ":authority", "x"],
      [...request("/"), "X-Upper", "1"],
      [...request("/"), "connection", "close"],
      [...request("/"), "te", "gzip"],
      ["x-first", "1", ...request("/")],
      [...request("/"), ":status", "200"],
      [":method", "GET", ":method", "GET", ":scheme", "http", ":path", "/"],
      [...request("/"), "x-bad", "a\nb"],
      [...request("/"), "x-space", " v"],
    ];
    const fields = bad[c.b % bad.length]!;
    return streamError(m, id, E.PROTOCOL_ERROR, `a malformed request: ${JSON.stringify(fields)}`, "reset-by-us", frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, id, m.block(fields)));
  },
  (m, c) => {
    if (m.openCount() >= MAX_STREAMS) return false;
    const id = m.nextId;
    m.nextId += 2;
    return streamError(
      m,
      id,
      E.PROTOCOL_ERROR,
      "DATA that does not add up to the content-length",
      "reset-by-us",
      frame(T.HEADERS, F.END_HEADERS, id, m.block(request("/hold", ["content-length", String(c.a % 10)]))),
      frame(T.DATA, F.END_STREAM, id, Buffer.alloc((c.a % 10) + 1 + (c.b % 5))),
    );
  },
];

const CLIENT_ONLY: Violation[] = [
  (m) => conn(m, E.PROTOCOL_ERROR, "HEADERS on a stream we never opened", frame(T.HEADERS, F.END_HEADERS, m.nextId + 40, m.block([":status", "200"]))),
  (m, c) => {
    const id = m.pick(["open"], c.a);
    return id !== undefined && !m.held.has(id) && streamError(m, id, E.PROTOCOL_ERROR, "a response without :status", "reset-by-us", frame(T.HEADERS, F.END_HEADERS, id, m.block(["x-a", "1"])));
  },
  (m, c) => {
    const id = m.pick(["open"], c.a);
    return id !== undefined && !m.held.has(id) && streamError(m, id, E.PROTOCOL_ERROR, "an informational response that ends the stream", "reset-by-us", frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, id, m.block([":status", "103"])));
  },
  (m, c) => {
    const id = m.pick(["ended"], c.a);
    return id !== undefined && conn(m, E.STREAM_CLOSED, "DATA on a stream both sides ended", frame(T.DATA, 0, id, Buffer.from("x")));
  },
];

// ---- running ----

interface Run {
  frames: Frame[];
  protocolErrors: string[];
  openStreams: number;
  inputBytes: number;
  outputBytes: number;
}

function parse(bytes: Buffer, skipPreface: boolean): Frame[] {
  const frames: Frame[] = [];
  new FrameReader(1 << 24).push(skipPreface ? bytes.subarray(PREFACE.length) : bytes, (f) => frames.push({ ...f, payload: Buffer.from(f.payload) }));
  return frames;
}

async function run(role: "server" | "client", chunks: Buffer[], onClient?: (c: H2Connection) => void): Promise<Run> {
  const socket = new MemorySocket();
  const protocolErrors: string[] = [];
  const connection = new H2Connection(socket, {
    role,
    limits: LIMITS,
    now: () => 0,
    events: {
      protocolError: (kind) => protocolErrors.push(kind),
      stream: (stream: H2Stream, fields: HeaderFields, endStream: boolean) => {
        const hold = fields[fields.indexOf(":path") + 1] === "/hold";
        const answer = () => {
          if (hold) return;
          stream.sendHeaders([":status", "200"], false);
          stream.sendData(Buffer.from("ok"), true);
        };
        stream.handler = { headers() {}, data: (chunk, end) => (stream.consumed(chunk.length), end && answer()), trailers: answer, reset() {}, closed() {} };
        if (endStream) answer();
      },
    },
  });
  onClient?.(connection);
  const input = Buffer.concat(chunks);
  socket.receive(input);
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  const output = socket.output();
  socket.destroy();
  return { frames: parse(output, role === "client"), protocolErrors, openStreams: connection.openStreams, inputBytes: input.length, outputBytes: output.length };
}

function handshake(m: Model): void {
  if (m.role === "server") m.send(PREFACE);
  m.send(settingsFrame([]));
}

/** Checks what every run must show, valid or not. */
function checkBounds(r: Run): void {
  expect(!r.protocolErrors.includes("h2-internal"), "the connection's own code threw (h2-internal)");
  expect(r.openStreams <= MAX_STREAMS + 3, `${r.openStreams} streams open`);
  expect(r.outputBytes <= 1024 + 4 * r.inputBytes, `${r.outputBytes} bytes written for ${r.inputBytes} received`);
  for (const f of r.frames.filter((x) => x.type === T.GOAWAY)) {
    expect(f.payload.readUInt32BE(4) <= E.HTTP_1_1_REQUIRED, `GOAWAY with code ${f.payload.readUInt32BE(4)}`);
  }
}

function checkExpected(m: Model, r: Run): void {
  const what = m.expected.what ?? "valid frames only";
  const goaways = r.frames.filter((f) => f.type === T.GOAWAY);
  if (m.expected.goaway !== undefined) {
    expect(goaways.length === 1, `${what}: ${goaways.length} GOAWAY frames`);
    const code = goaways[0]!.payload.readUInt32BE(4);
    expect(code === m.expected.goaway, `${what}: GOAWAY code ${code}, the RFC says ${m.expected.goaway}`);
    expect(r.frames.at(-1) === goaways[0], `${what}: frames after the GOAWAY`);
  } else {
    expect(goaways.length === 0, `${what}: GOAWAY ${goaways[0]?.payload.readUInt32BE(4)} (${goaways[0]?.payload.subarray(8).toString()})`);
    const acks = (type: number) => r.frames.filter((f) => f.type === type && f.flags & F.ACK).length;
    expect(acks(T.PING) === m.expected.pings, `${what}: ${acks(T.PING)} PING ACKs for ${m.expected.pings} PINGs`);
    expect(acks(T.SETTINGS) === m.expected.settings + 1, `${what}: ${acks(T.SETTINGS)} SETTINGS ACKs for ${m.expected.settings + 1} SETTINGS`);
  }
  const resets = new Map(r.frames.filter((f) => f.type === T.RST_STREAM).map((f) => [f.streamId, f.payload.readUInt32BE(0)] as const));
  for (const [id, code] of m.expected.resets) {
    if (m.expected.goaway !== undefined && !resets.has(id)) continue; // the connection error came first
    expect(resets.get(id) === code, `${what}: stream ${id} reset with ${resets.get(id)}, expected ${code}`);
  }
  if (m.expected.goaway === undefined) {
    for (const [id, code] of resets) expect(m.expected.resets.has(id), `${what}: unexpected RST_STREAM(${code}) on stream ${id}`);
  }
}

async function check(input: Input): Promise<void> {
  const m = new Model(input.role);
  handshake(m);
  if (input.random) {
    m.send(...input.random.map((b) => Buffer.from(b)));
    const r = await run(input.role, m.out, input.role === "client" ? openRequests(m) : undefined);
    return checkBounds(r);
  }
  let onClient: ((c: H2Connection) => void) | undefined;
  if (input.role === "client") onClient = openRequests(m);
  for (const step of input.steps) (input.role === "server" ? clientStep : serverStep)(m, step);
  if (input.violation >= 0) {
    const catalogue = [...COMMON, ...(input.role === "server" ? SERVER_ONLY : CLIENT_ONLY)];
    for (let i = 0; i < catalogue.length; i++) {
      if (catalogue[(input.violation + i) % catalogue.length]!(m, input.steps[0] ?? { kind: 0, a: input.violation, b: input.violation, bytes: new Uint8Array() })) break;
    }
  }
  const r = await run(input.role, m.out, onClient);
  checkBounds(r);
  checkExpected(m, r);
}

/** Client role: three requests opened (ended on our side) before the server's frames arrive. */
function openRequests(m: Model): (c: H2Connection) => void {
  for (const id of [1, 3, 5]) m.streams.set(id, "open");
  m.nextId = 7;
  const ignore = { headers() {}, data() {}, trailers() {}, reset() {}, closed() {} };
  return (c) => {
    for (let i = 0; i < 3; i++) c.request(request("/"), true, ignore);
  };
}

export const h2ConnectionTarget = target<Input>({
  name: "h2-connection",
  what: "H2Connection (server and client role) on modelled frame sequences: RFC 9113 error codes, bounded memory, no throw",
  testRuns: 1500,
  open: () => ({ arbitrary, check }),
});

