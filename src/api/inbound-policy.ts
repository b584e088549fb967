/**
 * Evaluation of an InboundServer (the compiled policy of one pod port) against one connection and,
 * for HTTP and gRPC, one request. Pure and allocation-light: it runs per request in the proxy.
 * The controller (src/policy) produces InboundServers; this module only reads them, so it lives in
 * the api layer where both the proxy and the controller can import it.
 *
 * Semantics:
 * - Without a request (opaque TCP, or a connection-level check), only the server-wide
 *   authorizations apply.
 * - With a request on a non-opaque server that has routes, the request must match a route (the most
 *   specific match wins, Gateway API precedence); the server-wide authorizations and the matched
 *   route's own authorizations then apply. No matching route: "no-route".
 * - An authorization allows when the client address is in one of its networks (none: any address)
 *   and, for "mtls", the connection is TLS with a verified identity matching one of its identities.
 * - A server with `audit` allows what would be denied; the decision says so (`audited`).
 */
import { inCidr, parseCidr, parseIp, type Cidr, type Ip } from "../core/ip.js";
import type { Authorization, InboundServer, Network, RouteMatch } from "./index.js";

export interface ConnectionFacts {
  tls: boolean;
  /** The verified DNS-style identity of the client certificate (only meaningful with tls). */
  clientIdentity?: string;
  clientIp: string;
}

export interface RequestFacts {
  method: string;
  /** Request target as sent (`/pkg.Svc/Method`, `/path?query`). */
  path: string;
  /** Header names in lower case, as node:http and node:http2 present them. */
  headers: Record<string, string | string[] | undefined>;
}

export type DenyReason =
  | "no-route"
  | "unauthenticated"
  | "identity-not-allowed"
  | "network-not-allowed"
  | "default-deny";

export interface Decision {
  allowed: boolean;
  /** The authorization that allowed the request (absent when denied). */
  authorization?: string;
  /** The route the request matched (absent without routes or without a request). */
  route?: string;
  /** "authorized" when allowed, else why it was (or, in audit mode, would have been) denied. */
  reason: "authorized" | DenyReason;
  /** Allowed only because the server is in audit mode. */
  audited: boolean;
}

// ---- IP addresses: 4 x 32-bit words; IPv4 (and IPv4-mapped IPv6) as ::ffff:a.b.c.d ----

// Clients repeat: remember recent parses (bounded; cleared wholesale when full).
const ipCache = new Map<string, Ip | undefined>();
const IP_CACHE_MAX = 4096;

function clientIp(text: string): Ip | undefined {
  let ip = ipCache.get(text);
  if (ip === undefined && !ipCache.has(text)) {
    ip = parseIp(text);
    if (ipCache.size >= IP_CACHE_MAX) ipCache.clear();
    ipCache.set(text, ip);
  }
  return ip;
}

// ---- compiled form, cached per InboundServer object ----

interface CompiledNetwork {
  /** undefined: the CIDR did not parse, so the network matches nothing (fail closed). */
  cidr: Cidr | undefined;
  except: (Cidr | undefined)[];
}

interface CompiledAuthz {
  name: string;
  unauthenticated: boolean;
  anyIdentity: boolean;
  exact: Set<string>;
  /** Wildcard identities as labels; "*" matches exactly one label. */
  patterns: string[][];
  /** undefined: any address. */
  networks: CompiledNetwork[] | undefined;
}

type HeaderTest = { name: string; test: (v: string) => boolean };

interface CompiledMatch {
  route: CompiledRoute;
  /** The one path this match can match (exact path, or exact gRPC service and method). */
  exactPath?: string;
  specificity: number;
  path?: (p: string) => boolean;
  method?: string;
  grpc?: (service: string, method: string) => boolean;
  headers: HeaderTest[];
}

interface CompiledRoute {
  name: string;
  authz: CompiledAuthz[];
}

interface CompiledServer {
  opaque: boolean;
  authz: CompiledAuthz[];
  /**
   * Exact-path and exact gRPC method matches by path, most specific first. They outrank every
   * other kind of match, so they are looked up first instead of scanned.
   */
  exact: Map<string, CompiledMatch[]>;
  /** Every other match, most specific first. */
  matches: CompiledMatch[];
  hasRoutes: boolean;
  needsIp: boolean;
}

const cache = new WeakMap<InboundServer, CompiledServer>();

function compileNetwork(n: Network): CompiledNetwork {
  return { cidr: parseCidr(n.cidr), except: (n.except ?? []).map(parseCidr) };
}

function compileAuthz(a: Authorization): CompiledAuthz {
  const exact = new Set<string>();
  const patterns: string[][] = [];
  let anyIdentity = false;
  for (const id of a.identities ?? []) {
    if (id === "*") anyIdentity = true;
    else if (id.includes("*")) patterns.push(id.split("."));
    else exact.add(id);
  }
  return {
    name: a.name,
    unauthenticated: a.authentication === "unauthenticated",
    anyIdentity,
    exact,
    patterns,
    networks: a.networks && a.networks.length > 0 ? a.networks.map(compileNetwork) : undefined,
  };
}

/** A regex that must match the whole string; an invalid one matches nothing (fail closed). */
function fullRegex(source: string): (s: string) => boolean {
  try {
    const re = new RegExp(`^(?:${source})$`);
    return (s) => re.test(s);
  } catch {
    return () => false;
  }
}

/** Gateway API PathPrefix: matches whole path elements ("/foo" matches "/foo/x", not "/foobar"). */
function pathPrefix(prefix: string): (p: string) => boolean {
  const base = prefix.length > 1 && prefix.endsWith("/") ? prefix.slice(0, -1) : prefix;
  if (base === "/" || base === "") return () => true;
  return (p) => p === base || (p.startsWith(base) && p.charCodeAt(base.length) === 47 /* / */);
}

// Specificity (Gateway API precedence): exact path > longer prefix > regex; then a method match;
// then more header matches. Encoded in one number so sorting is cheap.
const KIND_EXACT = 4;
const KIND_PREFIX = 3;
const KIND_REGEX = 2;
const KIND_ANY = 1;

function specificity(kind: number, length: number, method: boolean, headers: number): number {
  return kind * 1e12 + Math.min(length, 1e6) * 1e4 + (method ? 1000 : 0) + Math.min(headers, 999);
}

function compileMatch(m: RouteMatch, route: CompiledRoute): CompiledMatch {
  const headers: HeaderTest[] = (m.headers ?? []).map((h) => ({
    name: h.name.toLowerCase(),
    test: h.regex ? fullRegex(h.value) : (v: string) => v === h.value,
  }));
  const method = m.method ? m.method.toUpperCase() : undefined;
  let kind = KIND_PREFIX;
  let length = 1;
  let path: CompiledMatch["path"];
  let grpc: CompiledMatch["grpc"];
  let exactPath: string | undefined;
  if (m.grpcService || m.grpcMethod) {
    if (m.grpcMatchType === "RegularExpression") {
      const s = m.grpcService ? fullRegex(m.grpcService) : () => true;
      const me = m.grpcMethod ? fullRegex(m.grpcMethod) : () => true;
      grpc = (service, method) => s(service) && me(method);
      kind = KIND_REGEX;
    } else {
      const s = m.grpcService;
      const me = m.grpcMethod;
      grpc = (service, method) => (!s || s === service) && (!me || me === method);
      kind = s && me ? KIND_EXACT : KIND_PREFIX;
      if (s && me) exactPath = `/${s}/${me}`;
    }
    length = (m.grpcService ?? "").length + (m.grpcMethod ?? "").length;
  } else if (m.path) {
    if (m.pathType === "Exact") {
      const p = m.path;
      path = (x) => x === p;
      kind = KIND_EXACT;
      exactPath = p;
    } else if (m.pathType === "RegularExpression") {
      path = fullRegex(m.path);
      kind = KIND_REGEX;
    } else {
      path = pathPrefix(m.path);
      kind = KIND_PREFIX;
    }
    length = m.path.length;
  }
  return { route, exactPath, specificity: specificity(kind, length, method !== undefined, headers.length), path, method, grpc, headers };
}

function compile(server: InboundServer): CompiledServer {
  const authz = (server.authorizations ?? []).map(compileAuthz);
  const matches: CompiledMatch[] = [];
  let needsIp = authz.some((a) => a.networks);
  for (const r of server.routes ?? []) {
    const route: CompiledRoute = { name: r.name, authz: (r.authorizations ?? []).map(compileAuthz) };
    needsIp ||= route.authz.some((a) => a.networks);
    if (!r.matches || r.matches.length === 0) {
      matches.push({ route, specificity: specificity(KIND_ANY, 0, false, 0), headers: [] });
    } else for (const m of r.matches) matches.push(compileMatch(m, route));
  }
  // Stable sort: equal specificity keeps the controller's order (oldest route first).
  matches.sort((a, b) => b.specificity - a.specificity);
  const exact = new Map<string, CompiledMatch[]>();
  for (const m of matches) if (m.exactPath !== undefined) exact.set(m.exactPath, [...(exact.get(m.exactPath) ?? []), m]);
  const rest = matches.filter((m) => m.exactPath === undefined);
  return { opaque: server.protocol === "opaque", authz, exact, matches: rest, hasRoutes: matches.length > 0, needsIp };
}

function compiled(server: InboundServer): CompiledServer {
  let c = cache.get(server);
  if (!c) {
    c = compile(server);
    cache.set(server, c);
  }
  return c;
}

// ---- evaluation ----

function headerMatches(headers: RequestFacts["headers"], h: HeaderTest): boolean {
  const v = headers[h.name];
  if (v === undefined) return false;
  if (typeof v === "string") return h.test(v);
  for (const x of v) if (h.test(x)) return true;
  return false;
}

const UNRESERVED = /%(2[dDeE]|3[0-9]|[46][1-9a-fA-F]|[57][0-9aA]|5[fF]|7[eE])/g;

/**
 * The path as the application will most likely understand it, so that `/public/../admin` cannot
 * pass for a `/public` route: percent-encoded unreserved characters decoded, `.` and `..` segments
 * removed (RFC 3986 5.2.4), repeated slashes merged. Encoded slashes stay encoded. Most paths
 * have none of these and are returned as they are.
 */
export function normalizePath(raw: string): string {
  if (!/%|\/\.|\/\//.test(raw)) return raw;
  const decoded = raw.replace(UNRESERVED, (m) => String.fromCharCode(parseInt(m.slice(1), 16)));
  const out: string[] = [];
  const segments = decoded.split("/");
  for (let i = 1; i < segments.length; i++) {
    const seg = segments[i]!;
    const last = i === segments.length - 1;
    if (seg === "..") {
      out.pop();
      if (last) out.push("");
    } else if (seg === ".") {
      if (last) out.push("");
    } else if (seg !== "" || last) out.push(seg);
  }
  return `/${out.join("/")}`;
}

function findRoute(c: CompiledServer, req: RequestFacts): CompiledMatch | undefined {
  const q = req.path.indexOf("?");
  const path = normalizePath(q >= 0 ? req.path.slice(0, q) : req.path);
  let service: string | undefined;
  let method = "";
  // gRPC paths are /package.Service/Method.
  const slash = path.indexOf("/", 1);
  if (path.charCodeAt(0) === 47 && slash > 1 && path.indexOf("/", slash + 1) < 0 && slash < path.length - 1) {
    service = path.slice(1, slash);
    method = path.slice(slash + 1);
  }
  const reqMethod = req.method.toUpperCase();
  const exact = c.exact.get(path);
  return (exact && firstMatch(exact, req, path, service, method, reqMethod)) || firstMatch(c.matches, req, path, service, method, reqMethod);
}

function firstMatch(
  list: CompiledMatch[],
  req: RequestFacts,
  path: string,
  service: string | undefined,
  method: string,
  reqMethod: string,
): CompiledMatch | undefined {
  outer: for (const m of list) {
    if (m.grpc && (service === undefined || !m.grpc(service, method))) continue;
    if (m.path && !m.path(path)) continue;
    if (m.method !== undefined && m.method !== reqMethod) continue;
    for (const h of m.headers) if (!headerMatches(req.headers, h)) continue outer;
    return m;
  }
  return undefined;
}

function identityMatches(a: CompiledAuthz, id: string): boolean {
  if (a.anyIdentity || a.exact.has(id)) return true;
  if (a.patterns.length === 0) return false;
  const labels = id.split(".");
  for (const p of a.patterns) {
    if (p.length !== labels.length) continue;
    let ok = true;
    for (let i = 0; i < p.length && ok; i++) ok = p[i] === "*" ? labels[i] !== "" : p[i] === labels[i];
    if (ok) return true;
  }
  return false;
}

function networkMatches(a: CompiledAuthz, ip: Ip | undefined): boolean {
  if (!a.networks) return true;
  if (!ip) return false;
  for (const n of a.networks) {
    if (!n.cidr || !inCidr(ip, n.cidr)) continue;
    let excluded = false;
    // An unparsable except excludes everything it might have meant (fail closed).
    for (const e of n.except) if (!e || inCidr(ip, e)) excluded = true;
    if (!excluded) return true;
  }
  return false;
}

// How far a denied connection got, to name the most useful reason.
const NO_AUTHZ = 0;
const NETWORK = 1;
const UNAUTHENTICATED = 2;
const IDENTITY = 3;

function check(
  list: CompiledAuthz[],
  conn: ConnectionFacts,
  ip: Ip | undefined,
  progress: { stage: number },
): CompiledAuthz | undefined {
  for (const a of list) {
    if (!networkMatches(a, ip)) {
      progress.stage = Math.max(progress.stage, NETWORK);
      continue;
    }
    if (a.unauthenticated) return a;
    if (!conn.tls || !conn.clientIdentity) {
      progress.stage = Math.max(progress.stage, UNAUTHENTICATED);
      continue;
    }
    if (identityMatches(a, conn.clientIdentity)) return a;
    progress.stage = Math.max(progress.stage, IDENTITY);
  }
  return undefined;
}

const REASONS: DenyReason[] = ["default-deny", "network-not-allowed", "unauthenticated", "identity-not-allowed"];

export function authorize(server: InboundServer, conn: ConnectionFacts, request?: RequestFacts): Decision {
  const c = compiled(server);
  let route: CompiledRoute | undefined;
  if (request && !c.opaque && c.hasRoutes) {
    const m = findRoute(c, request);
    if (!m) return deny(server, "no-route", undefined);
    route = m.route;
  }
  const ip = c.needsIp ? clientIp(conn.clientIp) : undefined;
  const progress = { stage: NO_AUTHZ };
  const allowedBy = check(c.authz, conn, ip, progress) ?? (route ? check(route.authz, conn, ip, progress) : undefined);
  if (allowedBy) return { allowed: true, authorization: allowedBy.name, route: route?.name, reason: "authorized", audited: false };
  return deny(server, REASONS[progress.stage]!, route?.name);
}

function deny(server: InboundServer, reason: DenyReason, route: string | undefined): Decision {
  return server.audit
    ? { allowed: true, route, reason, audited: true }
    : { allowed: false, route, reason, audited: false };
}

/** Drops the compiled form of a server (only needed by benchmarks measuring compile cost). */
export function forgetCompiled(server: InboundServer): void {
  cache.delete(server);
}
