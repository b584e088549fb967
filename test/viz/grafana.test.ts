import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createProxyMetrics } from "../../src/proxy/metrics.js";

const dashboard = JSON.parse(readFileSync(new URL("../../deploy/grafana/tether.json", import.meta.url), "utf8")) as {
  panels: { title: string; type: string; targets?: { expr: string }[] }[];
  templating: { list: { name: string; type: string; query?: { query: string } | string }[] };
};

/** Metric names the proxy exports (histograms as their _bucket/_sum/_count series) with their labels. */
function proxyMetrics(): Map<string, Set<string>> {
  const defaults = ["pod", "namespace", "workload"];
  const m = createProxyMetrics(Object.fromEntries(defaults.map((l) => [l, "x"])));
  const out = new Map<string, Set<string>>();
  for (const metric of m.registry.getMetricsAsArray()) {
    const { name, labelNames, type } = metric as unknown as { name: string; labelNames: string[]; type: string };
    const labels = new Set([...labelNames, ...defaults]);
    if (type === "histogram") {
      out.set(`${name}_bucket`, new Set([...labels, "le"]));
      out.set(`${name}_sum`, labels);
      out.set(`${name}_count`, labels);
    } else out.set(name, labels);
  }
  return out;
}

const FUNCTIONS = new Set(["sum", "rate", "increase", "histogram_quantile", "min", "max", "avg", "time", "label_values", "count", "topk"]);
const KEYWORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"]);

interface Parsed {
  metrics: string[];
  labels: string[];
  functions: string[];
}

/** The metric names, label names and functions a PromQL expression uses. */
function parse(expr: string): Parsed {
  const out: Parsed = { metrics: [], labels: [], functions: [] };
  let rest = expr.replace(/\[[^\]]*\]/g, " "); // range selectors: [5m], [$__rate_interval]
  // Selector label names, then the selectors themselves (with their quoted values).
  rest = rest.replace(/\{([^}]*)\}/g, (_m, body: string) => {
    for (const matcher of body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"/g)) out.labels.push(matcher[1]!);
    return " ";
  });
  rest = rest.replace(/\b(by|without|on|ignoring)\s*\(([^)]*)\)/g, (_m, _kw, list: string) => {
    out.labels.push(...list.split(",").map((l) => l.trim()).filter(Boolean));
    return " ";
  });
  rest = rest.replace(/"(?:[^"\\]|\\.)*"/g, " ");
  for (const m of rest.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    const word = m[1]!;
    if (m[2]) out.functions.push(word);
    else if (!KEYWORDS.has(word)) out.metrics.push(word);
  }
  // label_values(metric, label): the second argument is a label.
  const lv = /label_values\((?:[^{},]|\{[^}]*\})*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)/.exec(expr);
  if (lv) {
    out.labels.push(lv[1]!);
    out.metrics.splice(out.metrics.indexOf(lv[1]!), 1);
  }
  return out;
}

function expressions(): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  for (const p of dashboard.panels) for (const t of p.targets ?? []) out.push({ where: `panel "${p.title}"`, expr: t.expr });
  for (const v of dashboard.templating.list) {
    if (v.type !== "query") continue;
    const q = typeof v.query === "string" ? v.query : v.query?.query;
    if (q) out.push({ where: `variable $${v.name}`, expr: q });
  }
  return out;
}

test("the PromQL parser of this test finds metrics, labels and functions", () => {
  assert.deepEqual(parse('sum by (a, b) (rate(m_total{x="1", y=~"a|b"}[$__rate_interval])) / on (a) other > 0'), {
    metrics: ["m_total", "other"],
    labels: ["x", "y", "a", "b", "a"],
    functions: ["sum", "rate"],
  });
  assert.deepEqual(parse('label_values(m{namespace=~"$namespace", a="b"}, pod)'), { metrics: ["m"], labels: ["namespace", "a", "pod"], functions: ["label_values"] });
});

test("every Grafana expression uses only metrics and labels the proxy exports", () => {
  const known = proxyMetrics();
  const exprs = expressions();
  assert.ok(exprs.length >= 15, `expected the dashboard's queries, found ${exprs.length}`);
  const used = new Set<string>();
  for (const { where, expr } of exprs) {
    const p = parse(expr);
    assert.ok(p.metrics.length > 0, `${where}: no metric in ${expr}`);
    const labels = new Set<string>();
    for (const name of p.metrics) {
      const metricLabels = known.get(name);
      assert.ok(metricLabels, `${where}: ${name} is not a metric of src/proxy/metrics.ts`);
      used.add(name);
      for (const l of metricLabels) labels.add(l);
    }
    for (const l of p.labels) assert.ok(labels.has(l), `${where}: label ${l} is on none of ${p.metrics.join(", ")}`);
    for (const f of p.functions) assert.ok(FUNCTIONS.has(f), `${where}: unexpected function ${f}`);
  }
  // What the dashboard promises to show.
  for (const name of [
    "tether_proxy_requests_total",
    "tether_proxy_responses_total",
    "tether_proxy_response_latency_seconds_bucket",
    "tether_proxy_inbound_authorizations_total",
    "tether_proxy_identity_cert_expiration_timestamp_seconds",
  ]) assert.ok(used.has(name), `the dashboard never queries ${name}`);
  assert.ok(exprs.some((e) => /histogram_quantile\(0\.99,/.test(e.expr)), "no p99");
  assert.ok(exprs.some((e) => /tls="true"/.test(e.expr)), "no mTLS share");
});

test("the Grafana dashboard is importable: unique ids, a datasource variable, grid positions", () => {
  const ids = dashboard.panels.map((p) => (p as unknown as { id: number }).id);
  assert.equal(new Set(ids).size, ids.length);
  assert.ok(dashboard.templating.list.some((v) => v.type === "datasource"));
  for (const p of dashboard.panels) {
    const g = (p as unknown as { gridPos: { x: number; y: number; w: number; h: number } }).gridPos;
    assert.ok(g.x >= 0 && g.x + g.w <= 24 && g.h > 0, `panel "${p.title}" is off the 24-column grid`);
  }
});
