import { test } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import { startDashboard } from "../../src/viz/dashboard.js";
import { openSource } from "../../src/viz/commands.js";
import type { DashboardState } from "../../src/viz/snapshot.js";
import { startFakeMesh } from "./fake-mesh.js";

test("dashboard API: state with per-pod figures, edges, certificates and denials; SSE pushes each poll; only known files served", { timeout: 20_000 }, async (t) => {
  const mesh = await startFakeMesh();
  t.after(() => mesh.close());
  const dashboard = await startDashboard({ source: openSource({ targets: mesh.targetsFile, windowMs: 60_000 }), intervalMs: 60_000, logger: pino({ level: "silent" }) });
  t.after(() => dashboard.close());
  await dashboard.pollNow(); // primes (first scrape); the loop's own first poll may have done it
  mesh.traffic(90);
  mesh.deny();

  const events = await fetch(`${dashboard.url}api/events`);
  assert.equal(events.headers.get("content-type"), "text/event-stream");
  const reader = events.body!.getReader();
  await dashboard.pollNow();
  let text = "";
  while (!text.includes("event: snapshot")) text += new TextDecoder().decode((await reader.read()).value);
  await reader.cancel();

  const state = (await (await fetch(`${dashboard.url}api/state`)).json()) as DashboardState & { source: string };
  assert.match(state.source, /targets\.json/);
  const latest = state.latest!;
  const echoes = latest.pods.filter((p) => p.workload === "echo");
  assert.equal(echoes.length, 3);
  for (const p of echoes) assert.ok(p.inbound.rps > 0 && p.inbound.requests === 30, `${p.pod}: ${JSON.stringify(p.inbound)}`);
  assert.equal(latest.edges.length, 1);
  assert.ok(latest.certificates.every((c) => c.remaining! > 19 * 3600));
  assert.deepEqual(state.denials.map((d) => [d.pod, d.reason, d.count]), [["echo-0", "unauthorized", 1]]);

  const page = await fetch(dashboard.url);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<script src="\/vendor\/uPlot\.iife\.min\.js">/);
  const uplot = await fetch(`${dashboard.url}vendor/uPlot.iife.min.js`);
  assert.equal(uplot.status, 200);
  assert.match(await uplot.text(), /uPlot/);
  assert.equal((await fetch(`${dashboard.url}../package.json`)).status, 404);
  assert.equal((await fetch(`${dashboard.url}static/../../stat.ts`)).status, 404);
  assert.equal((await fetch(dashboard.url, { method: "POST" })).status, 405);
});

test("dashboard reports a source that fails (a missing targets file) instead of going blank", { timeout: 20_000 }, async (t) => {
  const dashboard = await startDashboard({ source: openSource({ targets: "/nonexistent/targets.json", windowMs: 60_000 }), intervalMs: 60_000, logger: pino({ level: "silent" }) });
  t.after(() => dashboard.close());
  await dashboard.pollNow();
  const state = (await (await fetch(`${dashboard.url}api/state`)).json()) as { error?: string; points: unknown[] };
  assert.match(state.error ?? "", /cannot read the targets file \/nonexistent\/targets\.json/);
  assert.equal(state.points.length, 0);
});
