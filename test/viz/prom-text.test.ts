import { test } from "node:test";
import assert from "node:assert/strict";
import { parsePrometheusText } from "../../src/viz/prom-text.js";
import { createProxyMetrics } from "../../src/proxy/metrics.js";

test("parses samples, label escapes, special values and TYPE lines", () => {
  const text = [
    "# HELP x_total a counter",
    "# TYPE x_total counter",
    'x_total{a="1",b="quote \\" back\\\\slash\\nnewline"} 3',
    "y 4.5 1700000000000",
    'h_bucket{le="+Inf"} +Inf',
    "z NaN",
    "",
  ].join("\n");
  const out = parsePrometheusText(text);
  assert.equal(out.badLineCount, 0);
  assert.equal(out.types.get("x_total"), "counter");
  assert.deepEqual(out.samples[0], { name: "x_total", labels: { a: "1", b: 'quote " back\\slash\nnewline' }, value: 3 });
  assert.equal(out.samples[1]?.value, 4.5);
  assert.equal(out.samples[2]?.value, Infinity);
  assert.ok(Number.isNaN(out.samples[3]?.value));
});

test("bad lines are counted and skipped, not thrown", () => {
  const cases = ['x{a="1" 3', "x{a=1} 3", "x abc", "x 1 2 3", "{} 1", 'x{a="unterminated} 1'];
  for (const line of cases) {
    const out = parsePrometheusText(`ok 1\n${line}\n`);
    assert.equal(out.samples.length, 1, line);
    assert.equal(out.badLineCount, 1, line);
    assert.equal(out.badLines[0], line);
  }
});

test("reads what prom-client writes for the proxy's registry", async () => {
  const m = createProxyMetrics({ pod: "p-0", namespace: "demo", workload: "p" });
  m.requests.inc({ direction: "inbound", authority: 'we"ird', peer_identity: "a", dst_pod: "", tls: "true" }, 2);
  m.responseLatency.observe({ direction: "inbound", authority: "x", dst_pod: "", classification: "success" }, 0.003);
  const out = parsePrometheusText(await m.registry.metrics());
  assert.equal(out.badLineCount, 0);
  const req = out.samples.find((s) => s.name === "tether_proxy_requests_total");
  assert.deepEqual(req?.labels, { direction: "inbound", authority: 'we"ird', peer_identity: "a", dst_pod: "", tls: "true", pod: "p-0", namespace: "demo", workload: "p" });
  assert.equal(req?.value, 2);
  assert.equal(out.types.get("tether_proxy_response_latency_seconds"), "histogram");
  const inf = out.samples.find((s) => s.name === "tether_proxy_response_latency_seconds_bucket" && s.labels.le === "+Inf");
  assert.equal(inf?.value, 1);
});
