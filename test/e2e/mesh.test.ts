/**
 * End to end, in network namespaces: the real control plane, real init rules and proxies, and the
 * demo gRPC app that knows nothing of the mesh. Runs the experiments of DESIGN.md through the same
 * code as `tether local demo`, asserting every goal that is not a wall-clock timing (those are
 * printed here and judged by the demo and bench).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pickFreeSubnet } from "../../src/local/network.js";
import {
  callFrom,
  DEMO_CERT_LIFETIME,
  experimentAttacks,
  experimentRotation,
  experimentScaling,
  experimentSlow,
  experimentSpread,
  startDemoMesh,
  type DemoMesh,
  type Goal,
} from "../../src/local/demo/scenario.js";
import { summarize } from "../../src/local/demo/echo.js";
import { netnsSkip, testInstance } from "../support/netns-harness.js";
import { chromiumSkip, openBrowserPage } from "../support/chromium.js";
import { pino } from "pino";
import { startDashboard } from "../../src/viz/dashboard.js";
import { openSource } from "../../src/viz/commands.js";


function judge(goals: Goal[]): void {
  for (const g of goals) console.log(`${g.ok ? "PASS" : "MISS"} exp ${g.experiment} ${g.timing ? "(timing, not asserted) " : ""}${g.what}: ${g.measured}`);
  for (const g of goals.filter((g) => !g.timing)) assert.ok(g.ok, `experiment ${g.experiment}: ${g.what} — measured ${g.measured}`);
}

/**
 * Captures what a pod sends and receives on its link to the bridge while `during` runs (frames
 * bridged between two pods never pass the bridge device itself, so the capture sits on the pod's
 * veth). Returns the raw capture.
 */
async function capture(link: string, dir: string, during: () => Promise<unknown>): Promise<Buffer> {
  const file = join(dir, `${link}-${Date.now()}.pcap`);
  // --immediate-mode: without it packets wait in the capture ring and a short capture may hold none.
  const dump = spawn("tcpdump", ["-i", link, "--immediate-mode", "-U", "-s", "0", "-w", file, "tcp"], { stdio: "ignore" });
  await new Promise((r) => setTimeout(r, 700));
  try {
    await during();
  } finally {
    await new Promise((r) => setTimeout(r, 300));
    dump.kill("SIGINT");
    await new Promise((r) => dump.once("exit", r));
  }
  return readFileSync(file);
}

const hasTcpdump = spawnSync("sh", ["-c", "command -v tcpdump"]).status === 0;

test("the local mesh: experiments 1-5 and packet-level proof of mTLS", { skip: netnsSkip, timeout: 600_000 }, async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), "tether-e2e-"));
  const instance = testInstance();
  let demo: DemoMesh | undefined;
  t.after(async () => {
    await demo?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });
  // Certificates of a few seconds: every experiment runs while they rotate.
  demo = await startDemoMesh({ stateDir, instance, certLifetime: DEMO_CERT_LIFETIME, podSubnet: await pickFreeSubnet() });
  const results = {};
  // DESIGN.md's figure: 3000 sequential calls, 1000 ± 10 per replica.
  const calls = 3000;

  await t.test("experiment 1: without the mesh one replica; with it an even split", async () => {
    judge(await experimentSpread(demo!, calls, results));
  });

  await t.test("traffic between pods is TLS on the wire (and the capture would see plaintext)", { skip: hasTcpdump ? undefined : "needs tcpdump" }, async () => {
    const link = (pod: string) => demo!.mesh.pods.get(pod)!.netns.hostLink;
    const meshed = await capture(link("client"), stateDir, () => callFrom(demo!.mesh, "client", demo!.echoVip, 50));
    const plain = await capture(link("client-plain"), stateDir, () => callFrom(demo!.mesh, "client-plain", demo!.plainVip!, 50));
    // The gRPC method path and the replica names travel in the clear without the mesh.
    // Positive control: without the mesh the replica names in the replies are readable on the wire.
    assert.ok(plain.includes("plain-"), "positive control: plaintext gRPC is visible in a capture");
    assert.ok(meshed.length > 10_000, `the meshed capture holds traffic (${meshed.length} bytes)`);
    for (const marker of ["echo-0", "echo-1", "echo-2", "hello", "grpc-status", "application/grpc"]) {
      assert.equal(meshed.includes(marker), false, `plaintext ${JSON.stringify(marker)} crossed the bridge between meshed pods`);
    }
  });

  await t.test("the dashboard shows live traffic for every replica of the running mesh", { skip: chromiumSkip }, async (st) => {
    const dashboard = await startDashboard({
      source: openSource({ targets: join(stateDir, "targets.json"), windowMs: 500 }),
      intervalMs: 500,
      port: 0,
      logger: pino({ level: "silent" }),
    });
    st.after(() => dashboard.close());
    const traffic = callFrom(demo!.mesh, "client", demo!.echoVip, 3000, { intervalMs: 2 });
    const page = await openBrowserPage(st);
    await page.goto(dashboard.url);
    // Scrapes under a loaded machine may take a few rounds: wait (bounded) until every replica shows traffic.
    await page
      .waitForFunction(
        () => {
          const charts = (globalThis as unknown as { tetherDashboard?: { charts?: Record<string, { chart: { series: { label?: string }[]; data: (number | null)[][] } }> } }).tetherDashboard?.charts;
          const chart = charts?.rps?.chart;
          if (!chart) return false;
          const live = chart.series.slice(1).filter((_, i) => (chart.data[i + 1] ?? []).some((v) => (v ?? 0) > 0));
          return live.length >= 3;
        },
        undefined,
        { timeout: 60_000, polling: 500 },
      )
      .catch(() => {});
    const shot = join(tmpdir(), `tether-e2e-dashboard-${process.pid}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`dashboard screenshot: ${shot}`);
    const rps = await page.evaluate(() => {
      const { chart } = (globalThis as unknown as { tetherDashboard: { charts: Record<string, { chart: { series: { label?: string }[]; data: (number | null)[][] } }> } }).tetherDashboard.charts.rps!;
      return Object.fromEntries(chart.series.slice(1).map((s, i) => [String(s.label), Math.max(0, ...(chart.data[i + 1] ?? []).map((v) => v ?? 0))]));
    });
    await traffic;
    for (const pod of ["echo-0", "echo-1", "echo-2"]) assert.ok((rps[pod] ?? 0) > 0, `request rate of ${pod} on the dashboard: ${JSON.stringify(rps)}`);
  });

  await t.test("experiment 2: replicas added and removed during the run", async () => {
    judge(await experimentScaling(demo!, 1500, results));
  });

  await t.test("experiment 3: one slow replica", async () => {
    judge(await experimentSlow(demo!, 1500, results));
  });

  await t.test("experiment 4: certificate and issuer rotation during the run", async () => {
    // 4000 calls 5 ms apart take well over 20 s: several lifetimes of a 5-second certificate.
    judge(await experimentRotation(demo!, 4000, results));
  });

  await t.test("experiment 5: attackers refused, authorized traffic unaffected", async () => {
    judge(await experimentAttacks(demo!, results));
  });

  await t.test("after all that, calls still spread evenly", async () => {
    const replicas = [...demo!.mesh.pods.keys()].filter((p) => p.startsWith("echo-"));
    const summary = summarize(await callFrom(demo!.mesh, "client", demo!.echoVip, 300));
    assert.equal(summary.failed, 0);
    for (const r of replicas) assert.ok((summary.perReplica[r] ?? 0) >= 90, JSON.stringify(summary.perReplica));
  });

  await demo.stop();
  demo = undefined;
  const leftovers = [
    spawnSync("ip", ["netns", "list"]).stdout.toString().split("\n").filter((l) => l.startsWith(`${instance}-`)),
    spawnSync("ip", ["-br", "link"]).stdout.toString().split("\n").filter((l) => l.startsWith(instance)),
    spawnSync("iptables-save").stdout.toString().split("\n").filter((l) => l.includes(`tether-local:${instance}`)),
  ].flat();
  assert.deepEqual(leftovers, [], "tether local down left something behind");
});
