import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import fc from "fast-check";
import { peekClientHello } from "../../src/proxy/tls-sni.js";

/** Captures the real ClientHello Node sends for a given servername. */
async function captureClientHello(servername: string | undefined): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  const got = new Promise<Buffer>((resolve) => {
    server.once("connection", (socket) => {
      socket.once("data", (chunk: Buffer) => {
        resolve(chunk);
        socket.destroy();
      });
    });
  });
  const client = tls.connect({ host: "127.0.0.1", port, servername, rejectUnauthorized: false });
  client.on("error", () => {});
  const hello = await got;
  client.destroy();
  server.close();
  return hello;
}

test("reads the SNI of a real ClientHello", async () => {
  const hello = await captureClientHello("web.shop.serviceaccount.identity.tether.cluster.local");
  assert.deepEqual(peekClientHello(hello), { kind: "tls", serverName: "web.shop.serviceaccount.identity.tether.cluster.local" });
});

test("a ClientHello without SNI is TLS with no server name", async () => {
  const hello = await captureClientHello("");
  assert.deepEqual(peekClientHello(hello), { kind: "tls", serverName: undefined });
});

test("partial hellos ask for more bytes; plaintext protocols are not TLS", async () => {
  const hello = await captureClientHello("a.b.serviceaccount.identity.tether.cluster.local");
  assert.deepEqual(peekClientHello(hello.subarray(0, 3)), { kind: "incomplete" });
  assert.deepEqual(peekClientHello(hello.subarray(0, 100)), { kind: "incomplete" });
  assert.deepEqual(peekClientHello(Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")), { kind: "not-tls" });
  assert.deepEqual(peekClientHello(Buffer.from("GET / HTTP/1.1\r\n")), { kind: "not-tls" });
});

test("random and mutated input never throws", async () => {
  const hello = await captureClientHello("x.y.serviceaccount.identity.tether.cluster.local");
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), fc.nat(hello.length - 1), fc.integer({ min: 0, max: 255 }), (noise, at, byte) => {
      peekClientHello(Buffer.from(noise));
      const mutated = Buffer.from(hello);
      mutated[at] = byte;
      const result = peekClientHello(mutated);
      assert.ok(["tls", "not-tls", "incomplete"].includes(result.kind));
    }),
    { numRuns: 2000 },
  );
});
