/**
 * Reads the server name (SNI) from a TLS ClientHello without consuming it. The inbound proxy
 * terminates TLS only when the client asked for the proxy's own identity; any other TLS (an
 * application's own TLS) passes through as opaque bytes.
 */
export type ClientHelloPeek =
  | { kind: "tls"; serverName: string | undefined }
  | { kind: "not-tls" }
  | { kind: "incomplete" };

const RECORD_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const EXTENSION_SERVER_NAME = 0x0000;
const NAME_TYPE_HOST = 0x00;

/** Classifies the first bytes of a connection. Never throws on malformed input. */
export function peekClientHello(buf: Buffer): ClientHelloPeek {
  if (buf.length === 0) return { kind: "incomplete" };
  if (buf[0] !== RECORD_HANDSHAKE) return { kind: "not-tls" };
  if (buf.length < 6) return { kind: "incomplete" };
  if (buf[1] !== 0x03) return { kind: "not-tls" };
  const recordLength = buf.readUInt16BE(3);
  if (buf[5] !== HANDSHAKE_CLIENT_HELLO) return { kind: "not-tls" };
  if (buf.length < 5 + recordLength) return { kind: "incomplete" };
  const body = buf.subarray(5, 5 + recordLength);
  return { kind: "tls", serverName: readServerName(body) };
}

/** Walks a ClientHello handshake message; any inconsistency yields undefined (no SNI). */
function readServerName(hello: Buffer): string | undefined {
  let at = 4 + 2 + 32; // handshake header, client_version, random
  const skip = (lengthBytes: 1 | 2): boolean => {
    if (at + lengthBytes > hello.length) return false;
    const n = lengthBytes === 1 ? hello[at]! : hello.readUInt16BE(at);
    at += lengthBytes + n;
    return at <= hello.length;
  };
  if (!skip(1) || !skip(2) || !skip(1)) return undefined; // session_id, cipher_suites, compression
  if (at + 2 > hello.length) return undefined;
  const end = Math.min(hello.length, at + 2 + hello.readUInt16BE(at));
  at += 2;
  while (at + 4 <= end) {
    const type = hello.readUInt16BE(at);
    const length = hello.readUInt16BE(at + 2);
    const data = hello.subarray(at + 4, at + 4 + length);
    at += 4 + length;
    if (type !== EXTENSION_SERVER_NAME || data.length < 5) continue;
    if (data[2] !== NAME_TYPE_HOST) return undefined;
    const nameLength = data.readUInt16BE(3);
    if (5 + nameLength > data.length) return undefined;
    return data.subarray(5, 5 + nameLength).toString("ascii");
  }
  return undefined;
}
