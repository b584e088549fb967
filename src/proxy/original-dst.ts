/**
 * The address a redirected connection was originally sent to. iptables REDIRECT rewrites the
 * destination to the proxy's port; conntrack remembers the original, and the kernel returns it
 * through getsockopt(SOL_IP, SO_ORIGINAL_DST) (IPv6: SOL_IPV6, IP6T_SO_ORIGINAL_DST). Node has no
 * binding for it, so we call libc through koffi on the accepted socket's file descriptor.
 */
import type { Socket } from "node:net";
import { createRequire } from "node:module";
import { TetherError, type CodeOf } from "../core/errors.js";

export const SOL_IP = 0;
export const SOL_IPV6 = 41;
export const SO_ORIGINAL_DST = 80;
export const IP6T_SO_ORIGINAL_DST = 80;
const AF_INET = 2;
const AF_INET6 = 10;
const SOCKADDR_IN6_SIZE = 28;
const ENOENT = 2;

export interface OriginalDestination {
  address: string;
  port: number;
  family: 4 | 6;
}

/**
 * Codes: ORIGINAL_DST_NOT_REDIRECTED (no NAT entry: the connection did not come through the
 * iptables rules), ORIGINAL_DST_NO_FD (socket has no kernel fd, e.g. a TLS-wrapped or closed
 * socket), ORIGINAL_DST_FAILED (any other errno), ORIGINAL_DST_UNSUPPORTED (not Linux).
 */
export class OriginalDstError extends TetherError<CodeOf<"OriginalDstError">> {}

/** Decodes a struct sockaddr_in / sockaddr_in6 (Linux layout; port and address in network order). */
export function decodeSockaddr(buf: Buffer): OriginalDestination {
  const family = buf.readUInt16LE(0);
  const port = buf.readUInt16BE(2);
  if (family === AF_INET && buf.length >= 8) {
    return { address: `${buf[4]}.${buf[5]}.${buf[6]}.${buf[7]}`, port, family: 4 };
  }
  if (family === AF_INET6 && buf.length >= 24) {
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(8 + i * 2).toString(16));
    return { address: compressIpv6(groups), port, family: 6 };
  }
  throw new OriginalDstError("ORIGINAL_DST_FAILED", `unexpected socket address family ${family}`);
}

/** RFC 5952 text form: the longest run (>= 2) of zero groups becomes "::". */
function compressIpv6(groups: string[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}

type GetSockOpt = (fd: number, level: number, name: number, value: Buffer, length: number[]) => number;
let native: { getsockopt: GetSockOpt; errno: () => number } | undefined;

/** Loaded on first use, so importing this module costs nothing where it is never called. */
function loadNative(): { getsockopt: GetSockOpt; errno: () => number } {
  if (native) return native;
  if (process.platform !== "linux") {
    throw new OriginalDstError("ORIGINAL_DST_UNSUPPORTED", "SO_ORIGINAL_DST needs Linux (iptables NAT)");
  }
  const koffi = createRequire(import.meta.url)("koffi") as typeof import("koffi");
  const libc = koffi.load("libc.so.6");
  const fn = libc.func("int getsockopt(int fd, int level, int optname, _Out_ uint8_t *optval, _Inout_ uint32_t *optlen)");
  native = { getsockopt: fn as unknown as GetSockOpt, errno: () => koffi.errno() };
  return native;
}

/** The kernel fd of a plain net.Socket (libuv TCP handle), or undefined. */
export function socketFd(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === "number" && fd >= 0 ? fd : undefined;
}

/**
 * Reads the original destination of an accepted, iptables-redirected socket. A connection that
 * conntrack tracked but did not NAT reports its own local address; one it never tracked throws
 * ORIGINAL_DST_NOT_REDIRECTED. Callers compare with the local address to spot direct connections.
 */
export function originalDestination(socket: Socket): OriginalDestination {
  const { getsockopt, errno } = loadNative();
  const fd = socketFd(socket);
  if (fd === undefined) {
    throw new OriginalDstError(
      "ORIGINAL_DST_NO_FD",
      "socket has no file descriptor: read the original destination on the accepted TCP socket, before TLS or closing",
    );
  }
  const v6 = socket.localFamily === "IPv6" && !socket.localAddress?.startsWith("::ffff:");
  const value = Buffer.alloc(SOCKADDR_IN6_SIZE);
  const length = [value.length];
  const rc = getsockopt(fd, v6 ? SOL_IPV6 : SOL_IP, v6 ? IP6T_SO_ORIGINAL_DST : SO_ORIGINAL_DST, value, length);
  if (rc !== 0) {
    const code = errno();
    if (code === ENOENT) {
      throw new OriginalDstError(
        "ORIGINAL_DST_NOT_REDIRECTED",
        `connection from ${socket.remoteAddress}:${socket.remotePort} has no NAT original destination: it did not pass the tether-init iptables rules (run \`tether proxy-init\`)`,
      );
    }
    throw new OriginalDstError("ORIGINAL_DST_FAILED", `getsockopt(SO_ORIGINAL_DST) failed with errno ${code}`);
  }
  return decodeSockaddr(value.subarray(0, length[0]));
}
