/** The bits of the gRPC wire protocol a proxy needs: status codes, timeouts, trailers-only answers. */
import { fieldValue, type HeaderFields } from "../h2/fields.js";

export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

/** Whether a request is gRPC (its content type is application/grpc or application/grpc+…). */
export function isGrpc(fields: HeaderFields): boolean {
  const ct = fieldValue(fields, "content-type");
  return ct !== undefined && ct.startsWith("application/grpc");
}

const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/** Parses a `grpc-timeout` value ("1S", "250m", at most 8 digits) to ms; undefined if absent or malformed. */
export function parseGrpcTimeout(value: string | string[] | undefined): number | undefined {
  if (typeof value !== "string") return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value.trim());
  if (!m) return undefined;
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

/** grpc-message is percent-encoded (gRPC HTTP/2 spec): printable ASCII except '%' passes. */
export function encodeGrpcMessage(message: string): string {
  return Array.from(Buffer.from(message, "utf8"))
    .map((b) => (b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, "0")}`))
    .join("");
}

/** A trailers-only response: HTTP 200 whose only HEADERS frame carries the status (ends the stream). */
export function trailersOnly(status: number, message: string, extra: HeaderFields = []): HeaderFields {
  return [":status", "200", "content-type", "application/grpc", "grpc-status", String(status), "grpc-message", encodeGrpcMessage(message), ...extra];
}

/** gRPC status (as a number) in a header block, if any. */
export function grpcStatusOf(fields: HeaderFields): number | undefined {
  const v = fieldValue(fields, "grpc-status");
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
}
