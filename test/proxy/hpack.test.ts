import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import http2 from "node:http2";
import fc from "fast-check";
import { frame } from "../../src/proxy/h2/frames.js";
import { forwardableFields, withoutField } from "../../src/proxy/h2/fields.js";
import { HpackDecoder, HpackEncoder, HpackError, NEVER_INDEXED, withNeverIndexed, type HeaderFields } from "../../src/proxy/h2/hpack.js";
import { huffmanDecode, huffmanEncode, HuffmanError } from "../../src/proxy/h2/huffman.js";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");

function decodeHuffman(bytes: Buffer): string {
  return huffmanDecode(bytes, 0, bytes.length);
}

// ---- RFC 7541 Appendix C ----

test("C.2: literal field representations", () => {
  const cases: [string, HeaderFields, HeaderFields][] = [
    // C.2.1 literal with indexing, C.2.2 without indexing, C.2.3 never indexed, C.2.4 indexed.
    ["400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572", ["custom-key", "custom-header"], ["custom-key", "custom-header"]],
    ["040c 2f73 616d 706c 652f 7061 7468", [":path", "/sample/path"], []],
    ["1008 7061 7373 776f 7264 0673 6563 7265 74", ["password", "secret"], []],
    ["82", [":method", "GET"], []],
  ];
  for (const [block, fields, table] of cases) {
    const decoder = new HpackDecoder();
    assert.deepEqual(decoder.decode(hex(block)), fields);
    assert.deepEqual(decoder.dynamicTableEntries(), table);
    assert.equal(decoder.dynamicTableSize, table.length === 0 ? 0 : 55);
  }
});

const REQUESTS: HeaderFields[] = [
  [":method", "GET", ":scheme", "http", ":path", "/", ":authority", "www.example.com"],
  [":method", "GET", ":scheme", "http", ":path", "/", ":authority", "www.example.com", "cache-control", "no-cache"],
  [":method", "GET", ":scheme", "https", ":path", "/index.html", ":authority", "www.example.com", "custom-key", "custom-value"],
];
const REQUEST_TABLES: [HeaderFields, number][] = [
  [[":authority", "www.example.com"], 57],
  [["cache-control", "no-cache", ":authority", "www.example.com"], 110],
  [["custom-key", "custom-value", "cache-control", "no-cache", ":authority", "www.example.com"], 164],
];

const DATE_1 = "Mon, 21 Oct 2013 20:13:21 GMT";
const DATE_2 = "Mon, 21 Oct 2013 20:13:22 GMT";
const LOCATION = "https://www.example.com";
const COOKIE = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
const RESPONSES: HeaderFields[] = [
  [":status", "302", "cache-control", "private", "date", DATE_1, "location", LOCATION],
  [":status", "307", "cache-control", "private", "date", DATE_1, "location", LOCATION],
  [":status", "200", "cache-control", "private", "date", DATE_2, "location", LOCATION, "content-encoding", "gzip", "set-cookie", COOKIE],
];
const RESPONSE_TABLES: [HeaderFields, number][] = [
  [["location", LOCATION, "date", DATE_1, "cache-control", "private", ":status", "302"], 222],
  [[":status", "307", "location", LOCATION, "date", DATE_1, "cache-control", "private"], 222],
  [["set-cookie", COOKIE, "content-encoding", "gzip", "date", DATE_2], 215],
];

const APPENDIX_C: { section: string; maxTableSize: number; blocks: string[]; fields: HeaderFields[]; tables: [HeaderFields, number][] }[] = [
  {
    section: "C.3 requests without Huffman",
    maxTableSize: 4096,
    blocks: [
      "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
      "8286 84be 5808 6e6f 2d63 6163 6865",
      "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
    ],
    fields: REQUESTS,
    tables: REQUEST_TABLES,
  },
  {
    section: "C.4 requests with Huffman",
    maxTableSize: 4096,
    blocks: [
      "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
      "8286 84be 5886 a8eb 1064 9cbf",
      "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
    ],
    fields: REQUESTS,
    tables: REQUEST_TABLES,
  },
  {
    section: "C.5 responses without Huffman, 256-octet table",
    maxTableSize: 256,
    blocks: [
      "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
      "4803 3330 37c1 c0bf",
      "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
    ],
    fields: RESPONSES,
    tables: RESPONSE_TABLES,
  },
  {
    section: "C.6 responses with Huffman, 256-octet table",
    maxTableSize: 256,
    blocks: [
      "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
      "4883 640e ffc1 c0bf",
      "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
    ],
    fields: RESPONSES,
    tables: RESPONSE_TABLES,
  },
];

for (const example of APPENDIX_C) {
  test(`${example.section}: fields and dynamic table after each block`, () => {
    const decoder = new HpackDecoder({ maxTableSize: example.maxTableSize });
    for (const [i, block] of example.blocks.entries()) {
      assert.deepEqual(decoder.decode(hex(block)), example.fields[i], `block ${i + 1}`);
      const [entries, size] = example.tables[i]!;
      assert.deepEqual(decoder.dynamicTableEntries(), entries, `table after block ${i + 1}`);
      assert.equal(decoder.dynamicTableSize, size, `table size after block ${i + 1}`);
    }
  });
}

// ---- Huffman ----

test("Huffman: RFC strings, round trips of arbitrary bytes, and the three ways to be invalid", () => {
  assert.equal(huffmanEncode("www.example.com").toString("hex"), "f1e3c2e5f23a6ba0ab90f4ff");
  assert.equal(decodeHuffman(hex("aec3 771a 4b")), "private");
  assert.equal(decodeHuffman(Buffer.alloc(0)), "");
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 300 }), (bytes) => {
      const value = String.fromCharCode(...bytes);
      assert.equal(decodeHuffman(huffmanEncode(value)), value);
    }),
    { numRuns: 300 },
  );
  // 'a' is 00011: padded with 111 it is valid; with 000, or with 8+ more ones, it is not.
  assert.equal(decodeHuffman(hex("1f")), "a");
  const invalid: [string, RegExp][] = [
    ["18", /not the most significant bits of EOS/],
    ["1f ff", /longer than 7 bits/],
    ["ff", /longer than 7 bits/],
    ["ffff fffc", /EOS symbol/], // 30 ones: EOS
    ["1f ff ff ff fc", /EOS symbol/],
  ];
  for (const [bytes, message] of invalid) assert.throws(() => decodeHuffman(hex(bytes)), (err) => err instanceof HuffmanError && message.test(err.message));
});

// ---- Malformed blocks ----

test("malformed blocks throw HpackError with a code saying what was wrong", () => {
  const cases: [string, string, HpackDecoder?][] = [
    ["80", "HPACK_BAD_INDEX"], // index 0
    ["be", "HPACK_BAD_INDEX"], // index 62, table empty
    ["7f00 00", "HPACK_BAD_INDEX"], // literal naming index 63
    ["1f", "HPACK_TRUNCATED"], // integer continues past the end
    ["40", "HPACK_TRUNCATED"], // literal name missing
    ["41", "HPACK_TRUNCATED"], // literal value missing
    ["0005 61", "HPACK_TRUNCATED"], // 5-octet name, 1 octet present
    ["ffff ffff ffff 0f", "HPACK_INTEGER_OVERFLOW"],
    ["ff80 8080 8080 8000", "HPACK_INTEGER_OVERFLOW"], // endless zero continuation
    ["0084 ffff ffff 00", "HPACK_BAD_HUFFMAN"], // EOS in the name
    ["0082 1fff 00", "HPACK_BAD_HUFFMAN"], // 11 bits of padding
    ["0081 18 00", "HPACK_BAD_HUFFMAN"], // padding of zeros
    ["8220", "HPACK_TABLE_SIZE"], // size update after a field
    ["3fe2 1f", "HPACK_TABLE_SIZE"], // update to 4097 > 4096
    ["3f01", "HPACK_TABLE_SIZE", new HpackDecoder({ maxTableSize: 0 })], // update to 32 > 0
    ["828282", "HPACK_HEADER_LIST_TOO_LARGE", new HpackDecoder({ maxHeaderListSize: 100 })], // 3 × 42
  ];
  for (const [block, code, decoder = new HpackDecoder()] of cases) {
    assert.throws(
      () => decoder.decode(hex(block)),
      (err) => err instanceof HpackError && err.code === code && err.message.length > 0,
      `${block} → ${code}`,
    );
  }
  // Two updates at the start are allowed (§4.2), and the table may be emptied and regrown.
  const decoder = new HpackDecoder();
  assert.deepEqual(decoder.decode(hex("20 3f e1 1f 82")), [":method", "GET"]);
});

// Random and mutated blocks, and decode(encode(x)) == x on what they decode to: test/fuzz (target hpack).

// ---- Encoder ----

const GRPC_REQUEST: HeaderFields = [
  ":method", "POST",
  ":scheme", "http",
  ":path", "/shop.Cart/AddItem",
  ":authority", "cart.shop.svc.cluster.local:8080",
  "content-type", "application/grpc",
  "te", "trailers",
  "user-agent", "grpc-node-js/1.14.7",
  "grpc-accept-encoding", "identity,deflate,gzip",
  "grpc-timeout", "4999m",
  "tether-client-id", "web.shop.serviceaccount.identity.tether.cluster.local",
  "authorization", "Bearer abc",
];

test("repeated fields cost one octet; per-request and sensitive fields stay literal", () => {
  const encoder = new HpackEncoder();
  const decoder = new HpackDecoder();
  const first = encoder.encode(GRPC_REQUEST);
  assert.deepEqual(decoder.decode(first), GRPC_REQUEST);
  const second = encoder.encode(GRPC_REQUEST);
  assert.deepEqual(decoder.decode(second), GRPC_REQUEST);
  // 9 indexed fields (1 octet each) + grpc-timeout without indexing (1 + 1 + 12 + 1 + 5)
  // + authorization never indexed, naming static entry 23 (2 + 1 + 10).
  assert.equal(second.length, 9 + 20 + 13);
  assert.deepEqual([...second.subarray(-13, -11)], [0x10 | 0x0f, 23 - 0x0f], "authorization is never indexed");
  assert.ok(!decoder.dynamicTableEntries().includes("authorization"));
  assert.equal(decoder.dynamicTableSize, encoder.dynamicTableSize);
});

test("a field received never indexed is re-encoded never indexed (RFC 7541 §7.1.3), through the forwarder's copies too", () => {
  // x-secret: s, never indexed with a new name (0x10), then the same pair with incremental indexing (0x40).
  const block = Buffer.concat([hex("10 08"), Buffer.from("x-secret"), hex("01 73"), hex("40 08"), Buffer.from("x-public"), hex("01 70")]);
  const fields = new HpackDecoder().decode(block);
  assert.deepEqual(fields, ["x-secret", "s", "x-public", "p"]);
  assert.deepEqual([...(fields[NEVER_INDEXED] ?? [])], ["x-secret"]);
  // forwardableFields copies only when it removes something (here te: gzip).
  const withHopField = withNeverIndexed([...fields, "te", "gzip"], fields[NEVER_INDEXED]);
  for (const copy of [fields, forwardableFields(withHopField), withoutField(fields, "x-public")]) {
    const encoder = new HpackEncoder();
    for (let i = 0; i < 2; i++) {
      const out = encoder.encode(copy);
      assert.ok(out.includes(Buffer.concat([hex("10 08"), Buffer.from("x-secret"), hex("01 73")])), `never indexed: ${out.toString("hex")}`);
    }
  }
  // Lists without the mark (the common case) carry no property at all.
  assert.equal(new HpackDecoder().decode(hex("82"))[NEVER_INDEXED], undefined);
});

test("the encoder follows the peer's table size with size updates", () => {
  const encoder = new HpackEncoder();
  const decoder = new HpackDecoder();
  decoder.decode(encoder.encode(GRPC_REQUEST));
  encoder.setMaxTableSize(0);
  encoder.setMaxTableSize(100);
  const block = encoder.encode(GRPC_REQUEST);
  // Smallest size in between first (§4.2), then the final one.
  assert.deepEqual([...block.subarray(0, 3)], [0x20, 0x3f, 100 - 31]);
  assert.deepEqual(decoder.decode(block), GRPC_REQUEST);
  assert.equal(decoder.dynamicTableSize, encoder.dynamicTableSize);
  assert.ok(decoder.dynamicTableSize <= 100);
  // A peer allowing more than our own limit changes nothing: we stay at 4096 and owe no update.
  encoder.setMaxTableSize(4096);
  encoder.encode([]);
  encoder.setMaxTableSize(1 << 20);
  assert.equal(encoder.encode([]).length, 0);
});

const NAMES = [
  ":path", ":authority", "content-type", "user-agent", "authorization", "cookie", "set-cookie", "proxy-authorization",
  "grpc-timeout", "content-length", "x-custom", "tether-client-id", "accept", "date",
];
const latin1String = (maxLength: number) =>
  fc.array(fc.integer({ min: 0, max: 255 }), { maxLength }).map((codes) => String.fromCharCode(...codes));
const fieldsArb: fc.Arbitrary<HeaderFields> = fc
  .array(
    fc.tuple(
      fc.oneof(fc.constantFrom(...NAMES), fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/)),
      fc.oneof(fc.constantFrom("", "a", "/x?y=1", "application/grpc", "GET"), latin1String(40), latin1String(400)),
    ),
    { maxLength: 12 },
  )
  .map((pairs) => pairs.flat());

test("round trip: encoder → decoder over many blocks of one connection, with table size changes", () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof({ weight: 6, arbitrary: fieldsArb }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 5000 }) }), { maxLength: 60 }),
      (steps) => {
        const encoder = new HpackEncoder();
        const decoder = new HpackDecoder();
        for (const step of steps) {
          if (typeof step === "number") {
            encoder.setMaxTableSize(step);
            continue;
          }
          // The same block twice exercises the dynamic table hits.
          for (let i = 0; i < 2; i++) {
            assert.deepEqual(decoder.decode(encoder.encode(step)), step);
            assert.equal(decoder.dynamicTableSize, encoder.dynamicTableSize);
          }
        }
      },
    ),
    { numRuns: 200 },
  );
});

// ---- Interop with nghttp2 (node:http2) ----

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const GOAWAY = 0x7;
const ACK = 0x1;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;
const SETTINGS_HEADER_TABLE_SIZE = 0x1;
/** A frame that never comes fails the test instead of hanging it. */
const INTEROP = { timeout: 60_000 };

interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** Calls `onFrame` for each frame read from `socket`, after skipping `skip` octets (a preface). */
function readFrames(socket: net.Socket, skip: number, onFrame: (frame: Frame) => void): void {
  let pending = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    if (skip > 0) {
      const skipped = Math.min(skip, pending.length);
      pending = pending.subarray(skipped);
      skip -= skipped;
    }
    while (pending.length >= 9) {
      const length = pending.readUIntBE(0, 3);
      if (pending.length < 9 + length) break;
      onFrame({ type: pending[3]!, flags: pending[4]!, streamId: pending.readUInt32BE(5) & 0x7fffffff, payload: pending.subarray(9, 9 + length) });
      pending = pending.subarray(9 + length);
    }
  });
}

/** The header block fragment of a HEADERS frame: without padding and priority fields. */
function headerBlock(headers: Frame): Buffer {
  assert.ok(headers.flags & END_HEADERS, "no CONTINUATION expected for these small blocks");
  let payload = headers.payload;
  if (headers.flags & PADDED) payload = payload.subarray(1, payload.length - payload[0]!);
  if (headers.flags & PRIORITY) payload = payload.subarray(5);
  return payload;
}

function pairs(fields: HeaderFields): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < fields.length; i += 2) out.push([fields[i]!, fields[i + 1]!]);
  return out.sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : 0));
}

/** Header names node:http2 handles specially (connection-specific, pseudo, merged) or that sort oddly. */
const RESERVED_NAMES = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "host", "http2-settings", "cookie", "set-cookie", "content-length", "priority"]);
const nameArb = fc.stringMatching(/^[a-z][a-z0-9!#$%&'*+.^_`|~-]{0,24}$/).filter((name) => !RESERVED_NAMES.has(name));
const valueArb = fc.stringMatching(/^[\x21-\x7e]([\x20-\x7e]{0,150}[\x21-\x7e])?$/);

test("decodes the header blocks of nghttp2's encoder (node:http2 client), dynamic table and Huffman included", INTEROP, async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(fc.tuple(nameArb, valueArb), { selector: ([name]) => name, minLength: 1, maxLength: 12 }),
      fc.array(fc.tuple(fc.stringMatching(/^\/[A-Za-z0-9._~/-]{0,40}$/), fc.array(fc.nat(), { maxLength: 8 })), { minLength: 1, maxLength: 25 }),
      async (pool, requests) => {
        const server = net.createServer();
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        const port = (server.address() as net.AddressInfo).port;
        const decoded: HeaderFields[] = [];
        const allDecoded = new Promise<void>((resolve, reject) => {
          server.once("connection", (socket) => {
            const decoder = new HpackDecoder();
            socket.write(frame(SETTINGS, 0, 0));
            readFrames(socket, PREFACE.length, (f) => {
              if (f.type === SETTINGS && !(f.flags & ACK)) socket.write(frame(SETTINGS, ACK, 0));
              if (f.type !== HEADERS) return;
              try {
                decoded[(f.streamId - 1) / 2] = decoder.decode(headerBlock(f));
              } catch (err) {
                reject(err);
              }
              if (decoded.filter(Boolean).length === requests.length) resolve();
            });
          });
        });

        const client = http2.connect(`http://127.0.0.1:${port}`);
        client.on("error", () => {});
        const expected = requests.map(([path, picks]) => {
          const headers: Record<string, string> = { ":method": "GET", ":path": path, ":scheme": "http", ":authority": `127.0.0.1:${port}` };
          for (const pick of picks) {
            const [name, value] = pool[pick % pool.length]!;
            headers[name] = value;
          }
          client.request(headers, { endStream: true }).on("error", () => {});
          return Object.entries(headers).flat();
        });
        try {
          await allDecoded;
        } finally {
          client.destroy();
          server.close();
        }
        for (const [i, fields] of expected.entries()) assert.deepEqual(pairs(decoded[i]!), pairs(fields), `request ${i}`);
      },
    ),
    { numRuns: 15 },
  );
});

interface Received {
  rawHeaders: string[];
  sensitive: string[];
}

/**
 * Sends each header list, encoded by one HpackEncoder, as a request on one raw connection to a
 * node:http2 server, one at a time, and returns what the server saw. `onStream` may change the
 * server's settings mid-connection: the SETTINGS frame then reaches us before the response.
 */
async function sendToNodeServer(
  settings: http2.Settings,
  requests: HeaderFields[],
  onStream: (session: http2.Http2Session, index: number) => void = () => {},
): Promise<Received[]> {
  const server = http2.createServer({ settings });
  const received: Received[] = [];
  // rawHeaders (the 4th argument) keeps order and duplicates; @types/node's overload omits it.
  server.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
    received.push({ rawHeaders, sensitive: ((headers as Record<symbol, unknown>)[http2.sensitiveHeaders] as string[] | undefined) ?? [] });
    onStream(stream.session!, received.length - 1);
    stream.respond({ ":status": 200 }, { endStream: true });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const socket = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
  const encoder = new HpackEncoder();
  const responses: (() => void)[] = [];
  const failed = new Promise<never>((_, reject) => {
    socket.on("error", reject);
    readFrames(socket, 0, (f) => {
      if (f.type === SETTINGS && !(f.flags & ACK)) {
        for (let i = 0; i + 6 <= f.payload.length; i += 6) {
          if (f.payload.readUInt16BE(i) === SETTINGS_HEADER_TABLE_SIZE) encoder.setMaxTableSize(f.payload.readUInt32BE(i + 2));
        }
        socket.write(frame(SETTINGS, ACK, 0));
      }
      if (f.type === HEADERS) responses[(f.streamId - 1) / 2]?.();
      if (f.type === RST_STREAM) reject(new Error(`stream ${f.streamId} reset with error ${f.payload.readUInt32BE(0)}`));
      if (f.type === GOAWAY) reject(new Error(`GOAWAY error ${f.payload.readUInt32BE(4)}: ${f.payload.subarray(8).toString()}`));
    });
  });
  socket.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0)]));
  try {
    for (const [i, fields] of requests.entries()) {
      const answered = new Promise<void>((resolve) => (responses[i] = resolve));
      socket.write(frame(HEADERS, END_HEADERS | END_STREAM, 2 * i + 1, encoder.encode(fields)));
      await Promise.race([answered, failed]);
    }
  } finally {
    socket.destroy();
    server.close();
  }
  return received;
}

function request(i: number, extra: HeaderFields = []): HeaderFields {
  return [
    ":method", "POST", ":scheme", "http", ":path", `/shop.Cart/Op${i % 3}`, ":authority", "cart:8080",
    "content-type", "application/grpc", "te", "trailers", "grpc-timeout", `${i}m`,
    "authorization", `Bearer ${i}`, "cookie", "a=b", ...extra,
  ];
}

test("nghttp2's decoder (node:http2 server) accepts our blocks, with table size changes mid-connection", INTEROP, async () => {
  for (const headerTableSize of [4096, 100, 0]) {
    const requests = Array.from({ length: 12 }, (_, i) => request(i, ["x-filler", "v".repeat(20 + i * 10)]));
    // After request 4 the server shrinks its table to 50 octets, after request 8 it grows it back.
    const received = await sendToNodeServer({ headerTableSize }, requests, (session, index) => {
      if (index === 3) session.settings({ headerTableSize: 50 });
      if (index === 7) session.settings({ headerTableSize: 4096 });
    });
    assert.equal(received.length, requests.length);
    for (const [i, { rawHeaders, sensitive }] of received.entries()) {
      assert.deepEqual(rawHeaders, requests[i], `table ${headerTableSize}, request ${i}`);
      assert.deepEqual(sensitive.sort(), ["authorization", "cookie"]);
    }
  }
});

test("nghttp2's decoder accepts random header lists from one encoder", INTEROP, async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.uniqueArray(fc.tuple(nameArb, valueArb), { selector: ([name]) => name, maxLength: 10 }), { minLength: 1, maxLength: 20 }),
      fc.constantFrom(4096, 256, 0),
      async (lists, headerTableSize) => {
        const requests = lists.map((pairs, i) => request(i, pairs.flat()));
        const received = await sendToNodeServer({ headerTableSize }, requests);
        assert.deepEqual(received.map((r) => r.rawHeaders), requests);
      },
    ),
    { numRuns: 15 },
  );
});
