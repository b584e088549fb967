/**
 * Header hygiene shared by the forwarders: hop-by-hop headers (RFC 9110 §7.6.1) describe one
 * connection and must not be forwarded; HTTP/2 forbids them outright (RFC 9113 §8.2.2), except
 * `te: trailers`, which gRPC needs.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http2";

export const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);

/**
 * Copies `headers` without hop-by-hop headers, without the headers the Connection header names,
 * and without `te` unless it is exactly "trailers". Keeps pseudo-headers.
 */
export function forwardableHeaders(headers: IncomingHttpHeaders, drop: readonly string[] = []): OutgoingHttpHeaders {
  const named = new Set(drop.map((h) => h.toLowerCase()));
  const connection = headers["connection"];
  if (typeof connection === "string") for (const h of connection.split(",")) named.add(h.trim().toLowerCase());
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    if (name === "te" && String(value).trim().toLowerCase() !== "trailers") continue;
    out[name] = value;
  }
  return out;
}
