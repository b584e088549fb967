/**
 * End to end in two network namespaces joined by a veth pair: "pod" (10.77.0.1) gets the real
 * `tether proxy-init` rules and listeners on the proxy ports; "peer" (10.77.0.2) plays the rest
 * of the cluster. Needs root (ip netns, iptables); skipped otherwise.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));
const isRoot = process.getuid?.() === 0 && spawnSync("ip", ["netns", "list"]).status === 0;
const id = randomBytes(3).toString("hex");
const POD = `tether-t-${id}p`;
const PEER = `tether-t-${id}q`;
const POD_IP = "10.77.0.1";
const PEER_IP = "10.77.0.2";
const APP_UID = 1000;
const POD_IP6 = "fd00:77::1";
const PEER_IP6 = "fd00:77::2";

function sh(...argv: string[]): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", cwd: root, timeout: 30_000 });
  if (r.status !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

interface Report {
  port: number;
  data: string;
  remote: string;
  original: { address?: string; port?: number; error?: string };
}

/** A listener process inside a namespace; collects its JSON reports. */
class Listener {
  readonly reports: Report[] = [];
  private waiters: (() => void)[] = [];
  readonly proc: ChildProcess;
  readonly ready: Promise<void>;

  constructor(ns: string, ports: (number | string)[]) {
    this.proc = spawn(
      "ip",
      ["netns", "exec", ns, process.execPath, "--import", "tsx", "test/proxy/fixtures/listener.ts", ...ports.map(String)],
      { cwd: root, stdio: ["ignore", "pipe", "inherit"] },
    );
    this.ready = new Promise((resolve, reject) => {
      this.proc.once("exit", (code) => reject(new Error(`listener in ${ns} exited ${code}`)));
      createInterface({ input: this.proc.stdout! }).on("line", (line) => {
        const msg = JSON.parse(line) as Report & { ready?: boolean };
        if (msg.ready) return resolve();
        this.reports.push(msg);
        for (const w of this.waiters.splice(0)) w();
      });
    });
  }

  async waitFor(tag: string, timeoutMs = 5000): Promise<Report | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.reports.find((r) => r.data === tag);
      if (found || Date.now() > deadline) return found;
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }
}

/** Connects from inside `ns` as `uid`, sends `tag`, half-closes; resolves with the exit status. */
function connect(ns: string, uid: number, address: string, port: number, tag: string): number | null {
  const script = `const s=require("net").connect(${port},"${address}",()=>s.end(${JSON.stringify(tag)}));s.on("data",()=>{});s.on("close",()=>process.exit(0));s.on("error",e=>{console.error(e.message);process.exit(3)});setTimeout(()=>process.exit(4),3000)`;
  const r = spawnSync(
    "ip",
    ["netns", "exec", ns, "setpriv", `--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", process.execPath, "-e", script],
    { encoding: "utf8", timeout: 10_000 },
  );
  return r.status;
}

const listeners: Listener[] = [];
after(() => {
  for (const l of listeners) l.proc.kill();
  if (isRoot) {
    spawnSync("ip", ["netns", "del", POD]);
    spawnSync("ip", ["netns", "del", PEER]);
  }
});

test("proxy-init redirects a pod's TCP to the proxy ports and SO_ORIGINAL_DST reports the dialed address", { skip: !isRoot && "needs root for ip netns and iptables", timeout: 60_000 }, async () => {
  sh("ip", "netns", "add", POD);
  sh("ip", "netns", "add", PEER);
  sh("ip", "-n", POD, "link", "set", "lo", "up");
  sh("ip", "-n", PEER, "link", "set", "lo", "up");
  sh("ip", "-n", POD, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", PEER);
  sh("ip", "-n", POD, "addr", "add", `${POD_IP}/24`, "dev", "eth0");
  sh("ip", "-n", PEER, "addr", "add", `${PEER_IP}/24`, "dev", "eth0");
  sh("ip", "-n", POD, "addr", "add", `${POD_IP6}/64`, "dev", "eth0", "nodad");
  sh("ip", "-n", PEER, "addr", "add", `${PEER_IP6}/64`, "dev", "eth0", "nodad");
  sh("ip", "-n", POD, "link", "set", "eth0", "up");
  sh("ip", "-n", PEER, "link", "set", "eth0", "up");

  const init = ["ip", "netns", "exec", POD, process.execPath, "bin/tether.mjs", "proxy-init"];
  const flags = ["--skip-inbound-ports", "9091", "--skip-outbound-ports", "5432", "--ipv6"];
  sh(...init, ...flags);
  sh(...init, ...flags); // a second run must leave one set of rules
  const rules = sh("ip", "netns", "exec", POD, "iptables", "-t", "nat", "-S");
  assert.equal(rules.match(/-j TETHER_OUTPUT/g)?.length, 1, rules);
  assert.equal(rules.match(/-j TETHER_INBOUND/g)?.length, 1, rules);
  assert.equal(rules.match(/--dports 9091/g)?.length, 1, rules);

  const pod = new Listener(POD, [4143, 4140, 4191, 9091, "6:4140", "6:4143"]);
  const peer = new Listener(PEER, [8080, 5432]);
  listeners.push(pod, peer);
  await Promise.all([pod.ready, peer.ready]);

  // Outbound from the app (any uid but the proxy's) lands on :4140 with the dialed address.
  assert.equal(connect(POD, APP_UID, PEER_IP, 8080, "out-app"), 0);
  const out = await pod.waitFor("out-app");
  assert.equal(out?.port, 4140);
  assert.deepEqual(out?.original, { address: PEER_IP, port: 8080, family: 4 });
  assert.equal(await peer.waitFor("out-app", 300), undefined, "the peer never saw it directly");

  // IPv6: the ip6tables rules redirect too, and IP6T_SO_ORIGINAL_DST reports the dialed address.
  assert.equal(connect(POD, APP_UID, PEER_IP6, 8080, "out-app-v6"), 0);
  const out6 = await pod.waitFor("out-app-v6");
  assert.equal(out6?.port, 4140);
  assert.deepEqual(out6?.original, { address: PEER_IP6, port: 8080, family: 6 });
  assert.equal(connect(PEER, APP_UID, POD_IP6, 9090, "in-app-v6"), 0);
  const in6 = await pod.waitFor("in-app-v6");
  assert.equal(in6?.port, 4143);
  assert.deepEqual(in6?.original, { address: POD_IP6, port: 9090, family: 6 });

  // The proxy's own uid goes straight out.
  assert.equal(connect(POD, 2102, PEER_IP, 8080, "out-proxy"), 0);
  const direct = await peer.waitFor("out-proxy");
  assert.equal(direct?.remote, POD_IP);
  assert.equal(direct?.port, 8080);
  assert.equal(await pod.waitFor("out-proxy", 300), undefined);

  // A skipped outbound port goes straight out too.
  assert.equal(connect(POD, APP_UID, PEER_IP, 5432, "out-skipped"), 0);
  assert.equal((await peer.waitFor("out-skipped"))?.port, 5432);

  // Loopback is never redirected: the app reaches the pod's own port directly.
  assert.equal(connect(POD, APP_UID, "127.0.0.1", 9091, "loopback"), 0);
  assert.equal((await pod.waitFor("loopback"))?.port, 9091);

  // Inbound from another pod to any port lands on :4143 with the original port.
  assert.equal(connect(PEER, APP_UID, POD_IP, 9090, "in-app"), 0);
  const inbound = await pod.waitFor("in-app");
  assert.equal(inbound?.port, 4143);
  assert.deepEqual(inbound?.original, { address: POD_IP, port: 9090, family: 4 });

  // The admin port and skipped inbound ports are reached directly.
  assert.equal(connect(PEER, APP_UID, POD_IP, 4191, "in-admin"), 0);
  assert.equal((await pod.waitFor("in-admin"))?.port, 4191);
  assert.equal(connect(PEER, APP_UID, POD_IP, 9091, "in-skipped"), 0);
  assert.equal((await pod.waitFor("in-skipped"))?.port, 9091);

  // --remove takes everything out, and traffic flows directly again.
  sh(...init, "--remove", "--ipv6");
  assert.doesNotMatch(sh("ip", "netns", "exec", POD, "iptables", "-t", "nat", "-S"), /TETHER/);
  assert.doesNotMatch(sh("ip", "netns", "exec", POD, "ip6tables", "-t", "nat", "-S"), /TETHER/);
  assert.equal(connect(POD, APP_UID, PEER_IP, 8080, "after-remove"), 0);
  assert.equal((await peer.waitFor("after-remove"))?.port, 8080);
});
