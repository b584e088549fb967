import { test } from "node:test";
import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { startDashboard } from "../../src/viz/dashboard.js";
import { openSource } from "../../src/viz/commands.js";
import { startFakeMesh } from "./fake-mesh.js";
import { chromiumSkip, openBrowserPage } from "../support/chromium.js";


test(
  "dashboard in a browser: charts show non-zero traffic for every replica",
  { timeout: 90_000, skip: chromiumSkip },
  async (t) => {
    const mesh = await startFakeMesh();
    t.after(() => mesh.close());
    let ticks = 0;
    const timer = setInterval(() => {
      mesh.traffic(15);
      if (ticks++ % 5 === 0) mesh.deny();
    }, 50);
    t.after(() => clearInterval(timer));
    const dashboard = await startDashboard({ source: openSource({ targets: mesh.targetsFile, windowMs: 500 }), intervalMs: 500, logger: pino({ level: "silent" }) });
    t.after(() => dashboard.close());

    const page = await openBrowserPage(t);
    const consoleErrors: string[] = [];
    page.on("console", (m) => void (m.type() === "error" && consoleErrors.push(m.text())));
    page.on("pageerror", (e) => consoleErrors.push(e.message));
    await page.goto(dashboard.url);
    await page.waitForFunction(() => (globalThis as unknown as { tetherDashboard: { state: { points: unknown[] } } }).tetherDashboard.state.points.length >= 4, undefined, { timeout: 30_000 });

    // Saved before the checks, so a failure can be looked at.
    const shot = join(tmpdir(), `tether-dashboard-${process.pid}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`dashboard screenshot: ${shot}`);

    // Per chart: the largest value each pod's series reached.
    const maxima = await page.evaluate(() => {
      const charts = (globalThis as unknown as { tetherDashboard: { charts: Record<string, { chart: { series: { label?: string }[]; data: (number | null)[][] } }> } }).tetherDashboard.charts;
      const out: Record<string, Record<string, number>> = {};
      for (const [name, { chart }] of Object.entries(charts)) {
        out[name] = {};
        chart.series.slice(1).forEach((s, i) => {
          out[name]![String(s.label)] = Math.max(0, ...(chart.data[i + 1] ?? []).map((v) => v ?? 0));
        });
      }
      return out;
    });
    for (const pod of ["echo-0", "echo-1", "echo-2"]) {
      assert.ok(maxima.rps![pod]! > 0, `request rate of ${pod}: ${JSON.stringify(maxima.rps)}`);
      assert.ok(maxima.success![pod]! > 50, `success rate of ${pod}: ${JSON.stringify(maxima.success)}`);
      assert.ok(maxima.latency![pod]! > 0, `latency of ${pod}: ${JSON.stringify(maxima.latency)}`);
      const row = page.locator(`tr[data-pod="demo/${pod}"] td.rps`);
      assert.match(await row.innerText(), /^[1-9][\d.]*$|^0\.[1-9]/);
    }
    // The edge graph names both workloads and the identities; denials and certificates are listed.
    const edgesText = await page.locator("#edges svg").textContent();
    assert.match(edgesText ?? "", /demo\/client/);
    assert.match(edgesText ?? "", /demo\/echo/);
    assert.match(edgesText ?? "", /mTLS/);
    assert.match(await page.locator("#certs").innerText(), /echo-2[\s\S]*(19|20)\.\d h/);
    assert.match(await page.locator("#denials").innerText(), /intruder\.demo\.serviceaccount/);
    assert.deepEqual(consoleErrors, []);

  },
);
