import { test, after } from "node:test";
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import { once } from "node:events";
import { proxyHttp2ServerOptions, PROXY_H2_LIMITS } from "../../src/proxy/forward/server-options.js";

const server = http2.createServer(proxyHttp2ServerOptions());
let open = 0;
let maxOpen = 0;
let streams = 0;
server.on("stream", (stream) => {
  streams++;
  open++;
  maxOpen = Math.max(maxOpen, open);
  stream.on("error", () => {});
  stream.on("close", () => open--);
  stream.respond({ ":status": 200 });
  stream.end("ok");
});
server.on("sessionError", () => {});
server.listen(0, "127.0.0.1");
await once(server, "listening");
const port = (server.address() as net.AddressInfo).port;
after(() => server.close());

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

async function stillServes(): Promise<void> {
  const c = http2.connect(`http://127.0.0.1:${port}`);
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

test("the limits are advertised in SETTINGS", async () => {
  const c = http2.connect(`http://127.0.0.1:${port}`);
  await once(c, "remoteSettings");
  assert.equal(c.remoteSettings.maxConcurrentStreams, PROXY_H2_LIMITS.maxConcurrentStreams);
  assert.equal(c.remoteSettings.maxHeaderListSize, PROXY_H2_LIMITS.maxHeaderListSize);
  assert.equal(c.remoteSettings.enablePush, false);
  c.close();
});

test("a CONTINUATION flood is cut off long before it exhausts memory", { timeout: 20_000 }, async () => {
  const sock = net.connect(port, "127.0.0.1");
  sock.on("error", () => {});
  sock.on("data", () => {});
  await once(sock, "connect");
  // HPACK literal header field without indexing, new name: "x-a: aaaa…" (106 bytes).
  const field = Buffer.concat([Buffer.from([0, 3]), Buffer.from("x-a"), Buffer.from([100]), Buffer.alloc(100, 0x61)]);
  sock.write(Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
  sock.write(frame(4, 0, 0, Buffer.alloc(0))); // SETTINGS
  sock.write(frame(1, 1, 1, Buffer.concat([Buffer.from([0x82, 0x84, 0x86]), field]))); // HEADERS, END_STREAM, no END_HEADERS
  let sent = 0;
  const budget = 20 * 1024 * 1024;
  while (!sock.destroyed && sent < budget) {
    const chunk = frame(9, 0, 1, Buffer.concat(Array(100).fill(field))); // CONTINUATION, no END_HEADERS
    sent += chunk.length;
    sock.write(chunk);
    await new Promise((r) => setImmediate(r));
  }
  assert.ok(sock.destroyed, `server still reading after ${sent} bytes of one header block`);
  assert.ok(sent < 2 * 1024 * 1024, `cut off after ${sent} bytes`);
  await stillServes();
});

test("rapid reset: opening and cancelling streams in a loop gets the session closed; others unaffected", { timeout: 20_000 }, async () => {
  const c = http2.connect(`http://127.0.0.1:${port}`);
  c.on("error", () => {});
  await once(c, "connect");
  const before = streams;
  let opened = 0;
  for (let i = 0; i < 20_000 && !c.destroyed && !c.closed; i++) {
    try {
      const req = c.request({ ":path": "/" });
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
  assert.ok(streams - before < 20_000, "the server stopped accepting streams from it");
  assert.ok(maxOpen <= PROXY_H2_LIMITS.maxConcurrentStreams);
  await stillServes();
});
