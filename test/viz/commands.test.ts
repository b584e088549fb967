import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { parseDirection, parseDuration, parseGroup } from "../../src/viz/commands.js";
import { prometheusSource, scrapeSource } from "../../src/viz/sources.js";
import { staticTargets } from "../../src/viz/targets.js";

test("flag parsing: durations, resources and directions, with coded refusals", () => {
  const durations: [string, number][] = [["10s", 10_000], ["1m", 60_000], ["500ms", 500], ["2", 2000], ["1.5s", 1500]];
  for (const [text, ms] of durations) assert.equal(parseDuration(text), ms, text);
  for (const bad of ["", "10h", "-1s", "s", "50ms"]) assert.throws(() => parseDuration(bad), { code: "VIZ_BAD_DURATION" }, bad);
  const groups: [string, string][] = [["deploy", "deploy"], ["deployments", "deploy"], ["po", "pod"], ["Pods", "pod"], ["ns", "ns"], ["namespace", "ns"]];
  for (const [text, g] of groups) assert.equal(parseGroup(text), g, text);
  assert.throws(() => parseGroup("svc"), { code: "VIZ_BAD_RESOURCE" });
  assert.equal(parseDirection("outbound"), "outbound");
  assert.throws(() => parseDirection("both"), { code: "VIZ_BAD_DIRECTION" });
});

async function server(handler: http.RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const s = http.createServer(handler);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, close: () => new Promise((r) => { s.closeAllConnections(); s.close(() => r()); }) };
}

test("Prometheus refusals and an unreachable Prometheus are coded errors", async (t) => {
  const prom = await server((_req, res) => res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ status: "error", error: "parse error at char 3" })));
  t.after(() => prom.close());
  await assert.rejects(prometheusSource({ url: prom.url, windowSeconds: 10 }).poll(), { code: "VIZ_PROMETHEUS_QUERY_FAILED", message: /parse error at char 3/ });
  const gone = await server(() => {});
  await gone.close();
  await assert.rejects(prometheusSource({ url: gone.url, windowSeconds: 10 }).poll(), { code: "VIZ_PROMETHEUS_UNREACHABLE" });
});

test("a target answering something other than Prometheus text is an error row, not zeros", async (t) => {
  const html = await server((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end("<html><body>hello</body></html>\n"));
  t.after(() => html.close());
  const source = scrapeSource({ targets: staticTargets([{ namespace: "demo", pod: "web-0", workload: "web", adminUrl: html.url }]) });
  const [w] = await source.poll();
  assert.match(w?.error ?? "", /did not answer Prometheus text \(first line: "<html><body>hello<\/body><\/html>"\)/);
});
