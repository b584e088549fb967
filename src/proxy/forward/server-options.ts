/**
 * Resource bounds for the proxy's HTTP/2 servers. A client may open streams and reset them at once
 * (rapid reset, CVE-2023-44487), stream endless CONTINUATION frames (CVE-2024-27983), or send huge
 * header blocks; each limit below caps what one connection can make the proxy hold. Documented in
 * docs/proxy.md.
 */
import type { ServerOptions, SecureServerOptions } from "node:http2";

export const PROXY_H2_LIMITS = {
  /** Streams a client may have open at once; more are refused with REFUSED_STREAM. */
  maxConcurrentStreams: 256,
  /** Bytes of one header block (HPACK-decoded, RFC 9113 SETTINGS_MAX_HEADER_LIST_SIZE). */
  maxHeaderListSize: 64 * 1024,
  /** Header fields in one block. */
  maxHeaderListPairs: 256,
  /** nghttp2 memory per session in MB (frames, headers, buffered data) before new streams are refused. */
  maxSessionMemory: 32,
  /** Streams refused for the limits above before the whole session is closed (rapid-reset bound). */
  maxSessionRejectedStreams: 100,
  /** Protocol-invalid frames tolerated before the session is closed. */
  maxSessionInvalidFrames: 100,
  /** Flow-control window per stream: larger than the 64 KiB default for throughput, still bounded. */
  initialWindowSize: 1024 * 1024,
} as const;

/** HTTP/2 server options with the proxy's limits; `overrides` win (e.g. TLS options for inbound). */
export function proxyHttp2ServerOptions<T extends ServerOptions | SecureServerOptions = ServerOptions>(
  overrides: Partial<T> = {},
): T {
  const l = PROXY_H2_LIMITS;
  return {
    maxHeaderListPairs: l.maxHeaderListPairs,
    maxSessionMemory: l.maxSessionMemory,
    maxSessionRejectedStreams: l.maxSessionRejectedStreams,
    maxSessionInvalidFrames: l.maxSessionInvalidFrames,
    // Bytes sent by a client that never speaks HTTP/2 are not held forever.
    unknownProtocolTimeout: 10_000,
    ...overrides,
    settings: {
      maxConcurrentStreams: l.maxConcurrentStreams,
      maxHeaderListSize: l.maxHeaderListSize,
      initialWindowSize: l.initialWindowSize,
      enablePush: false,
      ...overrides.settings,
    },
  } as T;
}
