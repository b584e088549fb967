import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { openSource, printEdges, printStat, printTop } from "../../src/viz/commands.js";
import type { StatRow } from "../../src/viz/aggregate.js";
import type { Edge } from "../../src/viz/edges.js";
import { parsePrometheusText } from "../../src/viz/prom-text.js";
import { AUTHORITY, identityOf, startFakeMesh } from "./fake-mesh.js";

const root = new URL("../..", import.meta.url).pathname;

function capture(): { write: (t: string) => void; text: () => string } {
  let out = "";
  return { write: (t) => void (out += t), text: () => out };
}

test("stat, edges and top over scraped fake proxies", { timeout: 20_000 }, async (t) => {
  const mesh = await startFakeMesh();
  t.after(() => mesh.close());
  const source = openSource({ targets: mesh.targetsFile, windowMs: 1000 });
  const first = await source.poll();
  assert.ok(first.every((w) => /first scrape/.test(w.error ?? "")), "the first scrape cannot give figures yet");
  mesh.traffic(300);
  mesh.deny();
  const windows = await source.poll();
  assert.deepEqual(windows.map((w) => w.error), [undefined, undefined, undefined, undefined]);

  const json = capture();
  printStat(windows, { group: "pod", direction: "inbound", json: true }, json.write);
  const rows = JSON.parse(json.text()) as StatRow[];
  assert.deepEqual(rows.map((r) => r.name), ["client-0", "echo-0", "echo-1", "echo-2"]);
  const byName = new Map(rows.map((r) => [r.name, r]));
  for (const name of ["echo-0", "echo-1", "echo-2"]) {
    const r = byName.get(name)!;
    assert.equal(r.requests, 100, name);
    assert.ok(r.rps > 0, name);
    assert.equal(r.mtlsShare, 1, name);
    assert.equal(r.tcpConnections, 1, name);
    assert.ok(r.p50! > 0 && r.p50! <= r.p95! && r.p95! <= r.p99!, name);
  }
  assert.equal(byName.get("echo-0")!.successRate, 1);
  assert.equal(byName.get("echo-2")!.successRate, 0.9);
  // Replica i answers in about (i+1) ms: the percentiles must order the replicas the same way.
  assert.ok(byName.get("echo-0")!.p50! < byName.get("echo-2")!.p50!);
  assert.equal(byName.get("client-0")!.requests, 0, "the client serves nothing inbound");

  const deploy = capture();
  printStat(windows, { group: "deploy", direction: "outbound" }, deploy.write);
  const lines = deploy.text().trim().split("\n");
  assert.match(lines[0]!, /^NAMESPACE\s+DEPLOYMENT\s+PODS\s+SUCCESS\s+RPS\s+P50\s+P95\s+P99\s+TCP\s+MTLS$/);
  assert.match(lines[1]!, /^demo\s+client\s+1\/1\s+96\.67%\s+[\d.]+rps\s+[\d.]+ms\s+[\d.]+ms\s+[\d.]+ms\s+3\s+100%$/);
  assert.match(lines[2]!, /^demo\s+echo\s+3\/3\s+-\s+0\.0rps\s+-\s+-\s+-\s+0\s+-$/);

  const edgeOut = capture();
  printEdges(windows, { json: true }, edgeOut.write);
  const edges = JSON.parse(edgeOut.text()) as Edge[];
  assert.deepEqual(
    edges.map((e) => [e.src.label, e.dst.label, e.clientIdentities, e.serverIdentities, e.mtls, e.seenBy]),
    [["demo/client", "demo/echo", [identityOf("client")], [identityOf("echo")], true, "both"]],
  );
  const edgeTable = capture();
  printEdges(windows, {}, edgeTable.write);
  assert.match(edgeTable.text(), /demo\/client\s+demo\/echo\s+client\.demo\.serviceaccount\S+\s+echo\.demo\.serviceaccount\S+\s+yes/);

  const top = capture();
  printTop(windows, { limit: 3, json: true }, top.write);
  const topRows = JSON.parse(top.text()) as { pod: string; direction: string; authority: string }[];
  // The client sent 300, each replica served 100 (their order depends on each scrape's timing).
  assert.equal(topRows.length, 3);
  assert.deepEqual([topRows[0]!.pod, topRows[0]!.direction, topRows[0]!.authority], ["client-0", "outbound", AUTHORITY]);
  for (const r of topRows.slice(1)) assert.deepEqual([r.pod.startsWith("echo-"), r.direction, r.authority], [true, "inbound", AUTHORITY]);
});

test("an unreachable proxy shows as an error row, the others still report", { timeout: 20_000 }, async (t) => {
  const mesh = await startFakeMesh(2);
  t.after(() => mesh.close());
  const gone = mesh.echoes[1]!;
  await gone.admin.close();
  const source = openSource({ targets: mesh.targetsFile, windowMs: 1000 });
  await source.poll();
  mesh.traffic(10);
  const windows = await source.poll();
  const out = capture();
  printStat(windows, { group: "deploy", direction: "inbound" }, out.write);
  assert.match(out.text(), /demo\s+echo\s+1\/2\s+100%/);
  assert.match(out.text(), /! demo\/echo-1: cannot scrape http:\/\/127\.0\.0\.1:\d+/);
});

test("a targets file with a bad entry is refused with the entry and field named", async (t) => {
  const mesh = await startFakeMesh(1);
  t.after(() => mesh.close());
  const bad = join(mesh.dir, "bad.json");
  await writeFile(bad, JSON.stringify({ targets: [{ namespace: "demo", pod: "x", workload: "x" }] }));
  await assert.rejects(openSource({ targets: bad, windowMs: 1000 }).poll(), { code: "VIZ_TARGETS_INVALID", message: /targets\[0\]\.adminUrl/ });
  await assert.rejects(openSource({ targets: join(mesh.dir, "missing.json"), windowMs: 1000 }).poll(), { code: "VIZ_TARGETS_UNREADABLE" });
  assert.throws(() => openSource({ targets: bad, prometheus: "http://x", windowMs: 1000 }), { code: "VIZ_SOURCE_CONFLICT" });
});

test("the Prometheus source turns increase() and gauge queries into the same figures", { timeout: 20_000 }, async (t) => {
  const mesh = await startFakeMesh();
  t.after(() => mesh.close());
  mesh.traffic(300);
  // A fake Prometheus: increase(NAME{ns}[W]) answers each series' whole value (it started
  // inside the window), a bare NAME answers the gauge. Series carry the proxies' default labels.
  const queries: string[] = [];
  const prom = http.createServer(async (req, res) => {
    const q = new URL(req.url ?? "/", "http://x").searchParams.get("query") ?? "";
    queries.push(q);
    const m = /^(?:increase\()?([a-z_]+)(\{[^}]*\})?(?:\[\d+s\]\))?$/.exec(q);
    const name = m?.[1] ?? "";
    const result = [];
    for (const p of mesh.all) {
      const samples = parsePrometheusText(await p.metrics.registry.metrics()).samples;
      for (const s of samples) if (s.name === name) result.push({ metric: { ...s.labels, job: "tether-proxy" }, value: [Date.now() / 1000, String(s.value)] });
    }
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ status: "success", data: { resultType: "vector", result } }));
  });
  await new Promise<void>((r) => prom.listen(0, "127.0.0.1", r));
  t.after(() => new Promise<void>((r) => { prom.closeAllConnections(); prom.close(() => r()); }));
  const url = `http://127.0.0.1:${(prom.address() as AddressInfo).port}`;
  const source = openSource({ prometheus: url, namespace: "demo", windowMs: 10_000 });
  assert.equal(source.needsPriming, false);
  const windows = await source.poll();
  assert.ok(queries.includes('increase(tether_proxy_requests_total{namespace="demo"}[10s])'), queries.join("\n"));
  const out = capture();
  printStat(windows, { group: "pod", direction: "inbound", json: true }, out.write);
  const rows = JSON.parse(out.text()) as StatRow[];
  assert.deepEqual(rows.map((r) => [r.name, r.requests, r.rps, r.successRate]), [
    ["client-0", 0, 0, undefined],
    ["echo-0", 100, 10, 1],
    ["echo-1", 100, 10, 1],
    ["echo-2", 100, 10, 0.9],
  ]);
});

test("`tether stat` and `tether edges` as commands, against proxies with live traffic", { timeout: 60_000 }, async (t) => {
  const mesh = await startFakeMesh();
  t.after(() => mesh.close());
  const timer = setInterval(() => mesh.traffic(20), 20);
  t.after(() => clearInterval(timer));
  const run = (args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [join(root, "bin/tether.mjs"), ...args], { cwd: root });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      const kill = setTimeout(() => child.kill("SIGKILL"), 45_000);
      child.on("close", (code) => {
        clearTimeout(kill);
        resolve({ code, stdout, stderr });
      });
    });
  const [stat, edges, top] = await Promise.all([
    run(["stat", "pod", "--targets", mesh.targetsFile, "--window", "500ms"]),
    run(["edges", "--targets", mesh.targetsFile, "--window", "500ms"]),
    run(["top", "--once", "--limit", "2", "--targets", mesh.targetsFile, "--window", "500ms"]),
  ]);
  assert.equal(top.code, 0, top.stderr);
  const topLines = top.stdout.trim().split("\n");
  assert.equal(topLines.length, 3, top.stdout);
  assert.match(topLines[1]!, /^demo\/client-0\s+outbound\s+echo\.demo\.svc\.cluster\.local:8080\s+[1-9]/);
  assert.equal(stat.code, 0, stat.stderr);
  for (const pod of ["echo-0", "echo-1", "echo-2"]) {
    assert.match(stat.stdout, new RegExp(`demo\\s+${pod}\\s+1/1\\s+\\d+(\\.\\d+)?%\\s+[1-9][\\d.]*rps`), stat.stdout);
  }
  assert.equal(edges.code, 0, edges.stderr);
  assert.match(edges.stdout, /demo\/client\s+demo\/echo\s+client\.demo\S+\s+echo\.demo\S+\s+yes\s+[1-9][\d.]*rps\s+both/);
  const bad = await run(["stat", "widgets", "--targets", mesh.targetsFile]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /"widgets" is not a resource stat knows: use deploy, pod or ns \[VIZ_BAD_RESOURCE\]/);
});

test("`tether dashboard` serves until SIGTERM, then exits cleanly", { timeout: 60_000 }, async (t) => {
  const mesh = await startFakeMesh(1);
  t.after(() => mesh.close());
  const child = spawn(process.execPath, [join(root, "bin/tether.mjs"), "dashboard", "--port", "0", "--targets", mesh.targetsFile, "--window", "200ms"], { cwd: root });
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  const kill = setTimeout(() => child.kill("SIGKILL"), 45_000);
  t.after(() => clearTimeout(kill));
  let stdout = "";
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on("data", (d) => {
      stdout += d;
      const m = /tether dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stdout);
      if (m) resolve(m[1]!);
    });
    child.on("close", () => reject(new Error(`dashboard exited early: ${stdout}`)));
  });
  const state = (await (await fetch(`${url}api/state`)).json()) as { source: string };
  assert.match(state.source, /targets\.json/);
  child.kill("SIGTERM");
  assert.equal(await exited, 0);
});
