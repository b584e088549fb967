/** Plain-text tables for stat, top and edges. Missing figures print as "-", never as 0. */
import { formatTable } from "../core/table.js";
import type { Edge } from "./edges.js";
import type { StatRow, TopRow } from "./aggregate.js";

export function percent(x: number | undefined): string {
  return x === undefined ? "-" : `${(x * 100).toFixed(x === 1 || x === 0 ? 0 : 2)}%`;
}

export function rate(x: number): string {
  return `${x.toFixed(x >= 100 ? 0 : 1)}rps`;
}

/** Seconds as ms, with the precision a reader needs. */
export function latency(seconds: number | undefined): string {
  if (seconds === undefined) return "-";
  const ms = seconds * 1000;
  return `${ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2)}ms`;
}

const table = (header: readonly string[], rows: readonly (readonly string[])[]): string => formatTable(header, rows);

export function statTable(rows: readonly StatRow[], nameHeader: string): string {
  return table(
    ["NAMESPACE", nameHeader, "PODS", "SUCCESS", "RPS", "P50", "P95", "P99", "TCP", "MTLS"],
    rows.map((r) => [
      r.namespace,
      r.name,
      `${r.podsReporting}/${r.pods}`,
      percent(r.successRate),
      rate(r.rps),
      latency(r.p50),
      latency(r.p95),
      latency(r.p99),
      String(r.tcpConnections),
      percent(r.mtlsShare),
    ]),
  );
}

export function topTable(rows: readonly TopRow[]): string {
  return table(
    ["POD", "DIRECTION", "AUTHORITY", "RPS", "SUCCESS", "P50", "P99", "MTLS"],
    rows.map((r) => [`${r.namespace}/${r.pod}`, r.direction, r.authority || "-", rate(r.rps), percent(r.successRate), latency(r.p50), latency(r.p99), percent(r.mtlsShare)]),
  );
}

export function edgesTable(rows: readonly Edge[]): string {
  return table(
    ["SRC", "DST", "CLIENT_ID", "SERVER_ID", "MTLS", "RPS", "SEEN_BY"],
    rows.map((e) => [
      e.src.label,
      e.dst.label,
      e.clientIdentities.join(",") || "-",
      e.serverIdentities.join(",") || "-",
      e.mtls ? "yes" : "NO",
      rate(e.rps),
      e.seenBy,
    ]),
  );
}
