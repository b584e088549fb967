/**
 * `tether local net-check`: proves the substrate works on this machine, end to end, on a fresh
 * bridge and subnet of its own, and removes everything again (also when a check fails):
 * pod-to-pod TCP by pod IP, a Service VIP spreading connections over two pods through the
 * kube-proxy rules, refusal of a Service without endpoints, and no leftovers after `down`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { LocalMeshError } from "./errors.js";
import { findLeftovers, isEmpty } from "./down.js";
import { pickFreeSubnet } from "./network.js";
import { nameClientArgv, nameServerArgv, waitForTcp } from "./probe-apps.js";
import { LocalSubstrate } from "./substrate.js";
import type { Logger } from "./log.js";

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
}

export interface NetCheckOptions {
  stateDir?: string;
  subnet?: string;
  /** Connections through the VIP. */
  connections?: number;
  logger?: Logger;
}

const SERVER_PORT = 8080;
const SERVICE_PORT = 80;

export async function netCheck(options: NetCheckOptions = {}): Promise<CheckResult[]> {
  const instance = `nc${randomBytes(4).toString("hex").slice(0, 6)}`;
  const ownDir = options.stateDir === undefined;
  const stateDir = options.stateDir ?? mkdtempSync(join(tmpdir(), "tether-net-check-"));
  const connections = options.connections ?? 40;
  const results: CheckResult[] = [];
  const check = (name: string, ok: boolean, detail: string) => results.push({ name, ok, detail });
  const substrate = await LocalSubstrate.up({
    stateDir,
    instance,
    podSubnet: options.subnet ?? (await pickFreeSubnet()),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  try {
    const [client, a, b] = await Promise.all(["client", "server-a", "server-b"].map((n) => substrate.createPod(n)));
    if (!client || !a || !b) throw new LocalMeshError("LOCAL_CHECK_FAILED", "pods were not created");
    check("pods", true, `${client.ip}, ${a.ip}, ${b.ip} on bridge ${substrate.host.bridge} (${substrate.state.podSubnet})`);
    for (const pod of [a, b]) await substrate.exec(pod, nameServerArgv(pod.name, SERVER_PORT), { logName: "server" });
    await Promise.all([a, b].map((pod) => waitForTcp(pod.ip, SERVER_PORT)));

    const direct = JSON.parse(await substrate.run(client, nameClientArgv(a.ip, SERVER_PORT, 1))) as Record<string, number>;
    check("pod to pod", direct[a.name] === 1, `client -> ${a.ip}:${SERVER_PORT} answered ${JSON.stringify(direct)}`);

    const vip = substrate.serviceIp("check/server");
    const empty = substrate.serviceIp("check/empty");
    await substrate.syncServices(client, [
      { name: "check/server:80", vip, port: SERVICE_PORT, endpoints: [a, b].map((p) => ({ ip: p.ip, port: SERVER_PORT })) },
      { name: "check/empty:80", vip: empty, port: SERVICE_PORT, endpoints: [] },
    ]);
    const spread = JSON.parse(await substrate.run(client, nameClientArgv(vip, SERVICE_PORT, connections))) as Record<string, number>;
    const ca = spread[a.name] ?? 0;
    const cb = spread[b.name] ?? 0;
    check("service VIP spread", ca > 0 && cb > 0 && ca + cb === connections, `${connections} connections to ${vip}:${SERVICE_PORT}: ${JSON.stringify(spread)}`);

    const refused = JSON.parse(await substrate.run(client, nameClientArgv(empty, SERVICE_PORT, 1))) as Record<string, number>;
    check("service without endpoints", refused["<ECONNREFUSED>"] === 1, `${empty}:${SERVICE_PORT} answered ${JSON.stringify(refused)}`);
  } catch (err) {
    check("unexpected error", false, err instanceof Error ? err.message : String(err));
  } finally {
    try {
      await substrate.down(1_000);
      const left = await findLeftovers(instance);
      check("down leaves nothing", isEmpty(left), isEmpty(left) ? `instance ${instance} removed` : JSON.stringify(left));
    } catch (err) {
      check("down leaves nothing", false, err instanceof Error ? err.message : String(err));
    }
    if (ownDir) rmSync(stateDir, { recursive: true, force: true });
  }
  return results;
}
