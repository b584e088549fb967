/**
 * Pods as network namespaces on a bridge (root only): addressing, processes, and Services through
 * the kube-proxy rules, alone and beside the proxy's interception chain.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { netnsSkip, podsOnFreshBridge, testInstance, waitForLog } from "../support/netns-harness.js";
import { LocalSubstrate } from "../../src/local/substrate.js";
import { readState } from "../../src/local/state.js";
import { errorCode } from "../../src/core/errors.js";
import { nameClientArgv, nameServerArgv, waitForTcp } from "../../src/local/probe-apps.js";
import { pidsInNetns } from "../../src/local/procfs.js";
import { netnsPath } from "../../src/local/names.js";
import { parseIptablesSave, ruleOption } from "../../src/local/iptables-save.js";
import { PROXY_OUTBOUND_PORT, PROXY_UID } from "../../src/api/mesh.js";
import type { Pod } from "../../src/local/pods.js";

const PORT = 8080;
const tetherBin = new URL("../../bin/tether.mjs", import.meta.url).pathname;

async function serve(substrate: LocalSubstrate, pods: Pod[], port = PORT, name?: string): Promise<void> {
  for (const pod of pods) await substrate.exec(pod, nameServerArgv(name ?? pod.name, port), { logName: `server-${port}` });
  await Promise.all(pods.map((pod) => waitForTcp(pod.ip, port)));
}

async function connectMany(substrate: LocalSubstrate, from: Pod, host: string, port: number, count: number, uid?: number) {
  const out = await substrate.run(from, nameClientArgv(host, port, count), uid === undefined ? {} : { uid });
  return JSON.parse(out) as Record<string, number>;
}

test("pods get their own address on the bridge and reach each other by pod IP", { skip: netnsSkip, timeout: 20_000 }, async (t) => {
  const { substrate, pods } = await podsOnFreshBridge(t, ["a", "b"]);
  const [a, b] = pods as [Pod, Pod];
  assert.notEqual(a.ip, b.ip);
  assert.ok(substrate.host.contains(a.ip) && substrate.host.contains(b.ip));
  const addrs = await substrate.run(a, ["ip", "-4", "-o", "addr", "show"]);
  assert.match(addrs, new RegExp(`eth0\\s+inet ${a.ip.replace(/\./g, "\\.")}/24`));
  assert.match(addrs, /lo\s+inet 127\.0\.0\.1/);
  assert.match(await substrate.run(a, ["ip", "route", "show", "default"]), new RegExp(`default via ${substrate.host.gatewayIp}`));

  await serve(substrate, [b]);
  assert.deepEqual(await connectMany(substrate, a, b.ip, PORT, 3), { b: 3 });
  // Nothing listens in a: the pod's own namespace is separate from b's and the host's.
  assert.deepEqual(await connectMany(substrate, a, a.ip, PORT, 1), { "<ECONNREFUSED>": 1 });
});

test("exec runs in the pod as the given uid, logs to files, and deletePod stops it", { skip: netnsSkip, timeout: 20_000 }, async (t) => {
  const { substrate, pod } = await podsOnFreshBridge(t, ["app"]);
  const app = pod("app");
  const once = await substrate.exec(app, ["sh", "-c", 'id -u; id -G; echo "$GREETING"; echo oops >&2'], {
    uid: PROXY_UID,
    env: { GREETING: "hello" },
    logName: "once",
  });
  assert.deepEqual(await once.exited, { code: 0, signal: null });
  assert.deepEqual(readFileSync(once.stdoutPath, "utf8").trim().split("\n"), [String(PROXY_UID), String(PROXY_UID), "hello"]);
  assert.equal(readFileSync(once.stderrPath, "utf8").trim(), "oops");

  // A long-running process and a child of it (another process group) are both inside the pod.
  const long = await substrate.exec(app, ["sh", "-c", "setsid sleep 300 & sleep 300"]);
  const deadline = Date.now() + 5_000;
  while (pidsInNetns(netnsPath(app.netns)).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.ok(pidsInNetns(netnsPath(app.netns)).length >= 3);
  assert.ok(substrate.state.resources().some((r) => r.kind === "process" && r.pid === long.pid));
  await substrate.deletePod(app);
  assert.notEqual((await long.exited).signal, null);
  assert.deepEqual(pidsInNetns(netnsPath(app.netns)), []);
  assert.equal(substrate.state.resources().filter((r) => r.kind !== "bridge" && r.kind !== "hostRule").length, 0);
});

test("a Service VIP spreads connections over its endpoints and follows endpoint changes", { skip: netnsSkip, timeout: 20_000 }, async (t) => {
  const { substrate, pods } = await podsOnFreshBridge(t, ["client", "s1", "s2"]);
  const [client, s1, s2] = pods as [Pod, Pod, Pod];
  await serve(substrate, [s1, s2]);
  const vip = substrate.serviceIp("default/server");
  const service = (endpoints: Pod[]) => [{ name: "default/server:80", vip, port: 80, endpoints: endpoints.map((p) => ({ ip: p.ip, port: PORT })) }];

  await substrate.syncServices(client, service([s1, s2]));
  const spread = await connectMany(substrate, client, vip, 80, 40);
  assert.equal((spread.s1 ?? 0) + (spread.s2 ?? 0), 40, JSON.stringify(spread));
  assert.ok((spread.s1 ?? 0) > 0 && (spread.s2 ?? 0) > 0, `both endpoints get connections: ${JSON.stringify(spread)}`);

  await substrate.syncServices(client, service([s2]));
  assert.deepEqual(await connectMany(substrate, client, vip, 80, 10), { s2: 10 });
  await substrate.syncServices(client, service([]));
  assert.deepEqual(await connectMany(substrate, client, vip, 80, 2), { "<ECONNREFUSED>": 2 });
  // The VIP is nowhere but in the client's rules: another pod cannot use it.
  assert.deepEqual(await connectMany(substrate, s1, vip, 80, 1), { "<timeout>": 1 });
});

test("beside the proxy's TETHER_OUTPUT: apps are redirected to the proxy, the proxy uid reaches pods", { skip: netnsSkip, timeout: 20_000 }, async (t) => {
  const { substrate, pods } = await podsOnFreshBridge(t, ["meshed", "s1", "s2"]);
  const [meshed, s1, s2] = pods as [Pod, Pod, Pod];
  await serve(substrate, [s1, s2]);
  const vip = substrate.serviceIp("default/server");
  const services = [{ name: "default/server:80", vip, port: 80, endpoints: [s1, s2].map((p) => ({ ip: p.ip, port: PORT })) }];
  await substrate.syncServices(meshed, services);

  // The real init rules, installed after ours (the wrong order, which the next sync repairs).
  await substrate.run(meshed, [process.execPath, tetherBin, "proxy-init"]);
  await substrate.syncServices(meshed, services);
  const output = parseIptablesSave(await substrate.run(meshed, ["iptables-save", "-t", "nat"]))
    .get("nat")
    ?.rules.filter((r) => r.chain === "OUTPUT")
    .map((r) => ruleOption(r.args, "-j"));
  assert.deepEqual(output, ["TETHER_OUTPUT", "TETHER_LOCAL_SERVICES"]);

  // A stand-in proxy answering on the outbound port.
  // (Inbound is intercepted now too, so readiness comes from its log, not a connection from outside.)
  const stub = await substrate.exec(meshed, nameServerArgv("proxy", PROXY_OUTBOUND_PORT), { uid: PROXY_UID, logName: "proxy" });
  await waitForLog(stub.stdoutPath, "listening");
  assert.deepEqual(await connectMany(substrate, meshed, vip, 80, 5, 1000), { proxy: 5 });
  assert.deepEqual(await connectMany(substrate, meshed, s1.ip, PORT, 3, PROXY_UID), { s1: 3 });
  const viaVip = await connectMany(substrate, meshed, vip, 80, 20, PROXY_UID);
  assert.equal((viaVip.s1 ?? 0) + (viaVip.s2 ?? 0), 20, JSON.stringify(viaVip));
});

test("inside a pod, unprivileged uids may bind low ports (as in containers); the host's setting is untouched", { skip: netnsSkip, timeout: 20_000 }, async (t) => {
  const hostSetting = () => readFileSync("/proc/sys/net/ipv4/ip_unprivileged_port_start", "utf8").trim();
  const before = hostSetting();
  const { substrate, pod } = await podsOnFreshBridge(t, ["web", "client"]);
  const web = pod("web");
  assert.equal((await substrate.run(web, ["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"])).trim(), "0");
  await substrate.exec(web, nameServerArgv("web", 80), { uid: 1000 });
  await waitForTcp(web.ip, 80);
  assert.deepEqual(await connectMany(substrate, pod("client"), web.ip, 80, 1), { web: 1 });
  assert.equal(hostSetting(), before);
});

test("a second instance with a taken bridge name or an overlapping subnet is refused and touches nothing", { skip: netnsSkip, timeout: 20_000 }, async (t) => {
  const { substrate, instance, pods } = await podsOnFreshBridge(t, ["a"]);
  const dir = mkdtempSync(join(tmpdir(), "tether-second-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await assert.rejects(
    LocalSubstrate.up({ stateDir: dir, instance, podSubnet: "10.246.0.0/24" }),
    (e) => errorCode(e) === "LOCAL_STATE_STALE",
  );
  await assert.rejects(
    LocalSubstrate.up({ stateDir: dir, instance: testInstance(), podSubnet: substrate.state.podSubnet }),
    (e) => errorCode(e) === "LOCAL_SUBNET_OVERLAP",
  );
  // The first instance still works.
  await serve(substrate, pods);
  assert.equal(readState(dir), undefined);
});
