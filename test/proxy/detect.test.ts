import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { once } from "node:events";
import { classify, detectProtocol, H2_PREFACE, MAX_REQUEST_LINE, type Detection } from "../../src/proxy/detect.js";

const cases: [string, Buffer, ReturnType<typeof classify>][] = [
  ["empty", Buffer.alloc(0), "more"],
  ["h2 preface", H2_PREFACE, "h2"],
  ["h2 preface and a SETTINGS frame", Buffer.concat([H2_PREFACE, Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]), "h2"],
  ["half an h2 preface", H2_PREFACE.subarray(0, 10), "more"],
  ["preface that goes wrong", Buffer.from("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"), "opaque"],
  ["GET request line", Buffer.from("GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n"), "http1"],
  ["POST absolute-form HTTP/1.0", Buffer.from("POST http://a.b/c?d=e HTTP/1.0\r\n"), "http1"],
  ["CONNECT authority-form", Buffer.from("CONNECT a.b:443 HTTP/1.1\r\n"), "http1"],
  ["partial request line", Buffer.from("GET /inde"), "more"],
  ["partial line ending in CR", Buffer.from("GET / HTTP/1.1\r"), "more"],
  ["HTTP/2.0 version text", Buffer.from("GET / HTTP/2.0\r\n"), "opaque"],
  ["lowercase version", Buffer.from("GET / http/1.1\r\n"), "opaque"],
  ["missing target", Buffer.from("GET HTTP/1.1\r\n"), "opaque"],
  ["TLS ClientHello", Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]), "opaque"],
  ["server-first protocol garbage", Buffer.from("\x00\x01binary"), "opaque"],
  ["control byte inside the line", Buffer.from("GET /\x01"), "opaque"],
  ["redis inline command", Buffer.from("PING\r\n"), "opaque"],
  ["request line too long", Buffer.from("GET /" + "a".repeat(MAX_REQUEST_LINE)), "opaque"],
];

for (const [name, bytes, expected] of cases) {
  test(`classify: ${name} -> ${expected}`, () => assert.equal(classify(bytes), expected));
}

/** A connected socket pair on loopback: `server` is the accepted side. */
async function pair(): Promise<{ client: net.Socket; server: net.Socket; close: () => void }> {
  const listener = net.createServer();
  listener.listen(0, "127.0.0.1");
  await once(listener, "listening");
  const { port } = listener.address() as net.AddressInfo;
  const accepted = once(listener, "connection") as Promise<[net.Socket]>;
  const client = net.connect(port, "127.0.0.1");
  const [server] = await accepted;
  return {
    client,
    server,
    close: () => {
      client.destroy();
      server.destroy();
      listener.close();
    },
  };
}

async function readAll(socket: net.Socket, bytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  socket.resume();
  for await (const chunk of socket) {
    chunks.push(chunk as Buffer);
    n += (chunk as Buffer).length;
    if (n >= bytes) break;
  }
  return Buffer.concat(chunks);
}

test("detectProtocol decides on bytes split across writes and replays them to the next reader", async () => {
  const { client, server, close } = await pair();
  try {
    const detection = detectProtocol(server, { timeoutMs: 5000 });
    client.write(H2_PREFACE.subarray(0, 5));
    await new Promise((r) => setTimeout(r, 20));
    client.write(Buffer.concat([H2_PREFACE.subarray(5), Buffer.from("rest")]));
    const d: Detection = await detection;
    assert.equal(d.protocol, "h2");
    assert.equal(d.timedOut, false);
    assert.equal(d.unshifted, true);
    const replay = await readAll(server, H2_PREFACE.length + 4);
    assert.deepEqual(replay, Buffer.concat([H2_PREFACE, Buffer.from("rest")]));
  } finally {
    close();
  }
});

test("detectProtocol: HTTP/1 request line, silence (timeout), early close, and opaque ports", async () => {
  {
    const { client, server, close } = await pair();
    const detection = detectProtocol(server, { timeoutMs: 5000 });
    client.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert.equal((await detection).protocol, "http1");
    close();
  }
  {
    const { server, close } = await pair();
    const d = await detectProtocol(server, { timeoutMs: 50 });
    assert.deepEqual([d.protocol, d.timedOut, d.buffered.length], ["opaque", true, 0]);
    close();
  }
  {
    const { client, server, close } = await pair();
    const detection = detectProtocol(server, { timeoutMs: 5000 });
    client.end("GE");
    const d = await detection;
    assert.deepEqual([d.protocol, d.timedOut, d.buffered.toString(), d.unshifted], ["opaque", false, "GE", false]);
    close();
  }
  {
    const { client, server, close } = await pair();
    client.write("GET / HTTP/1.1\r\n");
    const d = await detectProtocol(server, { timeoutMs: 5000, opaque: true });
    assert.equal(d.protocol, "opaque");
    assert.equal((await readAll(server, 16)).toString(), "GET / HTTP/1.1\r\n", "nothing was consumed");
    close();
  }
});
