import { test } from "node:test";
import assert from "node:assert/strict";
import { Counter, Registry } from "prom-client";
import { startAdminServer } from "../../src/api/admin-server.js";

test("admin server: metrics of every registry, ready with a reason, live, component routes, 404 naming the routes", async (t) => {
  const registries = [new Registry(), new Registry()];
  new Counter({ name: "tether_a_total", help: "a", registers: [registries[0]!] }).inc(2);
  new Counter({ name: "tether_b_total", help: "b", registers: [registries[1]!] }).inc(3);
  let reason: string | undefined = "the cluster cache is not synced";
  const admin = await startAdminServer({
    host: "127.0.0.1",
    port: 0,
    registries,
    notReadyReason: () => reason,
    routes: { "/hello": (req, reply) => reply(200, `hello ${req.method}\n`) },
  });
  t.after(() => admin.close());
  const base = `http://127.0.0.1:${admin.port}`;
  const metrics = await fetch(`${base}/metrics`);
  assert.equal(metrics.status, 200);
  const text = await metrics.text();
  assert.match(text, /tether_a_total 2/);
  assert.match(text, /tether_b_total 3/);
  const notReady = await fetch(`${base}/ready`);
  assert.equal(notReady.status, 503);
  assert.equal(await notReady.text(), "not ready: the cluster cache is not synced\n");
  reason = undefined;
  const ready = await fetch(`${base}/ready?verbose`);
  assert.equal(ready.status, 200);
  assert.equal(await ready.text(), "ready\n");
  assert.equal((await fetch(`${base}/live`)).status, 200);
  assert.equal(await (await fetch(`${base}/hello`, { method: "POST" })).text(), "hello POST\n");
  const missing = await fetch(`${base}/nope`);
  assert.equal(missing.status, 404);
  assert.match(await missing.text(), /\/metrics, \/ready, \/live, \/hello/);
  assert.equal(missing.headers.get("cache-control"), "no-store");
});
