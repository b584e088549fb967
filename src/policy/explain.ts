/**
 * A human description of a compiled InboundServer: which routes exist and which rules allow whom.
 * Pure; `tether authz` prints it.
 */
import type { Authorization, InboundServer, RouteMatch } from "../api/index.js";
import { NEVER } from "./compile.js";

export interface ExplainRow {
  route: string;
  match: string;
  authorization: string;
  allows: string;
}

export function describeMatch(m: RouteMatch): string {
  if (m.pathType === "RegularExpression" && m.path === NEVER) return "nothing (route not accepted)";
  const parts: string[] = [];
  if (m.method) parts.push(m.method);
  if (m.grpcService || m.grpcMethod) {
    const op = m.grpcMatchType === "RegularExpression" ? "~" : "";
    parts.push(`gRPC ${op}${m.grpcService || "*"}/${m.grpcMethod || "*"}`);
  } else if (m.path) {
    parts.push(m.pathType === "Exact" ? m.path : m.pathType === "RegularExpression" ? `~${m.path}` : `${m.path}*`);
  }
  for (const h of m.headers) parts.push(`${h.name}${h.regex ? "~" : "="}${h.value}`);
  return parts.length > 0 ? parts.join(" ") : "everything";
}

export function describeAuthorization(a: Authorization): string {
  const who =
    a.authentication === "unauthenticated"
      ? "any client (no mTLS needed)"
      : a.identities.includes("*")
        ? "any meshed identity (mTLS)"
        : `mTLS identities ${a.identities.join(", ")}`;
  const where = a.networks.length === 0 ? "" : ` from ${a.networks.map((n) => (n.except.length > 0 ? `${n.cidr} except ${n.except.join(", ")}` : n.cidr)).join("; ")}`;
  return who + where;
}

export function explainInboundServer(server: InboundServer): ExplainRow[] {
  const rows: ExplainRow[] = [];
  const serverWide = server.authorizations.map((a) => ({ authorization: a.name, allows: describeAuthorization(a) }));
  const routes = server.protocol === "opaque" || server.routes.length === 0 ? [{ name: "(connection)", matches: [], authorizations: [] }] : server.routes;
  for (const r of routes) {
    const match = r.matches.length === 0 ? "everything" : r.matches.map(describeMatch).join(" | ");
    const rules = [...serverWide, ...r.authorizations.map((a) => ({ authorization: a.name, allows: describeAuthorization(a) }))];
    if (rules.length === 0) rows.push({ route: r.name, match, authorization: "-", allows: server.audit ? "nobody (audit: allowed and logged)" : "nobody (denied)" });
    for (const rule of rules) rows.push({ route: r.name, match, ...rule });
  }
  return rows;
}
