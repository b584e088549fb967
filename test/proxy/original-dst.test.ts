import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { once } from "node:events";
import { decodeSockaddr, originalDestination, OriginalDstError, socketFd } from "../../src/proxy/original-dst.js";
import { TetherError } from "../../src/core/errors.js";

function sockaddrIn(ip: number[], port: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(2, 0);
  b.writeUInt16BE(port, 2);
  Buffer.from(ip).copy(b, 4);
  return b;
}

function sockaddrIn6(groups: number[], port: number): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt16LE(10, 0);
  b.writeUInt16BE(port, 2);
  groups.forEach((g, i) => b.writeUInt16BE(g, 8 + i * 2));
  return b;
}

test("decodes sockaddr_in with the port in network order", () => {
  assert.deepEqual(decodeSockaddr(sockaddrIn([10, 96, 0, 10], 8080)), { address: "10.96.0.10", port: 8080, family: 4 });
});

const v6: [number[], string][] = [
  [[0xfd00, 0, 0, 0, 0, 0, 0, 0x10], "fd00::10"],
  [[0, 0, 0, 0, 0, 0, 0, 1], "::1"],
  [[0x2001, 0xdb8, 0, 1, 0, 0, 0, 1], "2001:db8:0:1::1"],
  [[0x2001, 0xdb8, 1, 2, 3, 4, 5, 6], "2001:db8:1:2:3:4:5:6"],
  [[0, 0, 0, 0, 0, 0, 0, 0], "::"],
];
for (const [groups, text] of v6) {
  test(`decodes sockaddr_in6 ${text}`, () => {
    const got = decodeSockaddr(sockaddrIn6(groups, 443));
    assert.deepEqual(got, { address: text, port: 443, family: 6 });
    assert.equal(net.isIPv6(got.address), true);
  });
}

test("an unknown address family is a typed error", () => {
  assert.throws(() => decodeSockaddr(Buffer.alloc(16)), (e: unknown) => e instanceof OriginalDstError && e.code === "ORIGINAL_DST_FAILED");
});

test("on a connection that was not redirected: a typed refusal, or (if conntrack tracked it) its own address", async () => {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;
  const accepted = once(server, "connection") as Promise<[net.Socket]>;
  const client = net.connect(port, "127.0.0.1");
  const [socket] = await accepted;
  try {
    assert.ok(socketFd(socket)! >= 0);
    let result: unknown;
    try {
      result = originalDestination(socket);
    } catch (err) {
      result = err;
    }
    if (result instanceof TetherError) assert.equal(result.code, "ORIGINAL_DST_NOT_REDIRECTED");
    else assert.deepEqual(result, { address: "127.0.0.1", port, family: 4 });
  } finally {
    client.destroy();
    socket.destroy();
    server.close();
  }
  assert.throws(() => originalDestination(socket), (e: unknown) => e instanceof OriginalDstError && e.code === "ORIGINAL_DST_NO_FD");
});
