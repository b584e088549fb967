/**
 * Whether a header list is a well-formed HTTP/2 request, response or trailer section (RFC 9113
 * §8.1.1, §8.2, §8.3). A malformed message is a stream error (PROTOCOL_ERROR) and must not be
 * forwarded (§8.1.1), so the connection checks every header block before anyone sees it. Pure:
 * fields in, the reason it is malformed (or undefined) out.
 */
import type { HeaderFields } from "./hpack.js";

/** Connection-specific fields (§8.2.2): a message carrying one is malformed; `te` only as "trailers". */
const CONNECTION_SPECIFIC = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);

const REQUEST_PSEUDO = new Set([":method", ":scheme", ":authority", ":path"]);

/**
 * §8.2.1: a name is lowercase token characters (no 0x00-0x20, A-Z, 0x7f-0xff, no colon but the
 * pseudo-header's first); a value has no NUL, CR or LF and no whitespace at either end.
 */
function fieldProblem(name: string, value: string): string | undefined {
  if (name.length === 0) return "an empty field name";
  for (let i = name.charCodeAt(0) === 58 ? 1 : 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c <= 0x20 || (c >= 0x41 && c <= 0x5a) || c >= 0x7f || c === 58) return `field name ${JSON.stringify(name)} has a character not allowed in HTTP/2 (uppercase, space, colon, control or non-ASCII)`;
  }
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0 || c === 0x0a || c === 0x0d) return `field ${name} has a NUL, CR or LF in its value`;
  }
  if (value.length > 0) {
    const first = value.charCodeAt(0);
    const last = value.charCodeAt(value.length - 1);
    if (first === 0x20 || first === 0x09 || last === 0x20 || last === 0x09) return `field ${name} has a value starting or ending with whitespace`;
  }
  if (CONNECTION_SPECIFIC.has(name)) return `connection-specific field ${name} is not allowed in HTTP/2`;
  if (name === "te" && value !== "trailers") return `te may only be "trailers" in HTTP/2`;
  return undefined;
}

/** Checks every field and the pseudo-header rules common to all sections; returns the pseudo-headers seen. */
function scan(fields: HeaderFields, allowed: ReadonlySet<string>, what: string): { problem?: string; pseudo: Map<string, string> } {
  const pseudo = new Map<string, string>();
  let regular = false;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    const problem = fieldProblem(name, value);
    if (problem) return { problem, pseudo };
    if (name.charCodeAt(0) !== 58) {
      regular = true;
      continue;
    }
    if (regular) return { problem: `pseudo-header ${name} after a regular field`, pseudo };
    if (!allowed.has(name)) return { problem: `pseudo-header ${name} is not allowed in ${what}`, pseudo };
    if (pseudo.has(name)) return { problem: `pseudo-header ${name} appears twice`, pseudo };
    pseudo.set(name, value);
  }
  return { pseudo };
}

/** §8.3.1 (and §8.5 for CONNECT): the reason a request's header section is malformed, if it is. */
export function requestProblem(fields: HeaderFields): string | undefined {
  const { problem, pseudo } = scan(fields, REQUEST_PSEUDO, "a request");
  if (problem) return problem;
  const method = pseudo.get(":method");
  if (method === undefined || method === "") return "the request has no :method";
  if (method === "CONNECT") {
    if (pseudo.has(":scheme") || pseudo.has(":path")) return "a CONNECT request carries :scheme or :path";
    if (!pseudo.get(":authority")) return "a CONNECT request has no :authority";
    return undefined;
  }
  if (!pseudo.get(":scheme")) return "the request has no :scheme";
  const path = pseudo.get(":path");
  if (path === undefined || path === "") return "the request has no :path, or an empty one";
  return undefined;
}

const RESPONSE_PSEUDO = new Set([":status"]);

/** §8.3.2: the reason a response's header section is malformed, if it is. */
export function responseProblem(fields: HeaderFields): string | undefined {
  const { problem, pseudo } = scan(fields, RESPONSE_PSEUDO, "a response");
  if (problem) return problem;
  const status = pseudo.get(":status");
  if (status === undefined || !/^[1-9]\d\d$/.test(status)) return "the response has no valid :status";
  return undefined;
}

const NONE = new Set<string>();

/** §8.1: trailers carry no pseudo-headers. */
export function trailersProblem(fields: HeaderFields): string | undefined {
  return scan(fields, NONE, "trailers").problem;
}

/**
 * The declared content-length of a message (§8.1.1: it must equal the DATA received): a number,
 * undefined without one, or NaN when it is not a single non-negative integer (malformed).
 */
export function declaredContentLength(fields: HeaderFields): number | undefined {
  let found: number | undefined;
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] !== "content-length") continue;
    const value = fields[i + 1]!;
    const n = /^\d{1,15}$/.test(value) ? Number(value) : NaN;
    if (found !== undefined && found !== n) return NaN;
    found = n;
  }
  return found;
}
