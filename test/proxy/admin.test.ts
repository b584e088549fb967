import { test } from "node:test";
import assert from "node:assert/strict";
import { startProxyAdmin } from "../../src/proxy/admin.js";
import { createProxyMetrics } from "../../src/proxy/metrics.js";

test("admin server: metrics, live, ready following the caller, shutdown by POST only", async (t) => {
  const metrics = createProxyMetrics({ pod: "web-1" });
  metrics.requests.inc({ direction: "inbound", authority: "web:80", peer_identity: "", dst_pod: "", tls: "true" });
  let reason: string | undefined = "no certificate";
  let shutdowns = 0;
  const admin = await startProxyAdmin({
    host: "127.0.0.1",
    port: 0,
    registry: metrics.registry,
    notReadyReason: () => reason,
    shutdown: () => shutdowns++,
  });
  t.after(() => admin.close());
  const base = `http://127.0.0.1:${admin.port}`;
  const body = await (await fetch(`${base}/metrics`)).text();
  assert.match(body, /tether_proxy_requests_total\{direction="inbound",authority="web:80",peer_identity="",dst_pod="",tls="true",pod="web-1"\} 1/);
  assert.equal((await fetch(`${base}/live`)).status, 200);
  const notReady = await fetch(`${base}/ready`);
  assert.equal(notReady.status, 503);
  assert.match(await notReady.text(), /no certificate/);
  reason = undefined;
  assert.equal((await fetch(`${base}/ready`)).status, 200);
  assert.equal((await fetch(`${base}/shutdown`)).status, 405);
  assert.equal(shutdowns, 0);
  assert.equal((await fetch(`${base}/shutdown`, { method: "POST" })).status, 202);
  assert.equal(shutdowns, 1);
  assert.equal((await fetch(`${base}/nope`)).status, 404);
});
