/**
 * A few fake proxies for the visibility tests: real proxy admin servers (src/proxy/admin.ts) serving
 * real registries (createProxyMetrics), whose counters the test moves as a client -> 3 echo
 * replicas mesh would. Writes the targets file `tether local up` would write.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startProxyAdmin, type AdminServer } from "../../src/proxy/admin.js";
import { createProxyMetrics, type ProxyMetrics } from "../../src/proxy/metrics.js";
import type { ProxyTarget } from "../../src/viz/targets.js";

export const NS = "demo";
export const AUTHORITY = "echo.demo.svc.cluster.local:8080";
export const identityOf = (sa: string) => `${sa}.${NS}.serviceaccount.identity.tether.cluster.local`;

export interface FakeProxy {
  target: ProxyTarget;
  metrics: ProxyMetrics;
  admin: AdminServer;
}

export interface FakeMesh {
  client: FakeProxy;
  echoes: FakeProxy[];
  all: FakeProxy[];
  dir: string;
  targetsFile: string;
  /** `calls` calls from the client, round-robin over the echoes; echo-2 fails every 10th. */
  traffic(calls: number): void;
  /** A denied call to echo-0 from an identity with no authorization. */
  deny(): void;
  close(): Promise<void>;
}

async function fakeProxy(pod: string, workload: string, sa: string): Promise<FakeProxy> {
  const metrics = createProxyMetrics({ pod, namespace: NS, workload });
  metrics.certExpiry.set(Date.now() / 1000 + 20 * 3600);
  const admin = await startProxyAdmin({ host: "127.0.0.1", port: 0, registry: metrics.registry, notReadyReason: () => undefined, shutdown: () => {} });
  return { metrics, admin, target: { namespace: NS, pod, workload, identity: identityOf(sa), adminUrl: `http://127.0.0.1:${admin.port}` } };
}

export async function startFakeMesh(replicas = 3): Promise<FakeMesh> {
  const client = await fakeProxy("client-0", "client", "client");
  const echoes: FakeProxy[] = [];
  for (let i = 0; i < replicas; i++) echoes.push(await fakeProxy(`echo-${i}`, "echo", "echo"));
  const all = [client, ...echoes];
  const dir = await mkdtemp(join(tmpdir(), "tether-viz-"));
  const targetsFile = join(dir, "targets.json");
  await writeFile(targetsFile, JSON.stringify({ targets: all.map((p) => p.target) }, null, 2));
  client.metrics.tcpOpenConnections.set({ direction: "outbound", peer: "dst", tls: "true" }, replicas);
  for (const e of echoes) e.metrics.tcpOpenConnections.set({ direction: "inbound", peer: "src", tls: "true" }, 1);

  let n = 0;
  return {
    client,
    echoes,
    all,
    dir,
    targetsFile,
    traffic(calls) {
      for (let c = 0; c < calls; c++, n++) {
        const i = n % echoes.length;
        const echo = echoes[i]!;
        const ok = !(i === 2 && n % 10 === 2);
        const classification = ok ? "success" : "failure";
        const grpc = ok ? "0" : "14";
        // Replica i answers in about (i + 1) ms, so the percentiles differ per pod.
        const seconds = (i + 1) / 1000 + (n % 7) / 10_000;
        const out = { direction: "outbound", authority: AUTHORITY, peer_identity: identityOf("echo"), dst_pod: echo.target.pod, tls: "true" } as const;
        client.metrics.requests.inc(out);
        client.metrics.responses.inc({ ...out, status_code: "200", grpc_status: grpc, classification });
        client.metrics.responseLatency.observe({ direction: "outbound", authority: AUTHORITY, dst_pod: echo.target.pod, classification }, seconds + 0.0003);
        const inb = { direction: "inbound", authority: AUTHORITY, peer_identity: identityOf("client"), dst_pod: "", tls: "true" } as const;
        echo.metrics.requests.inc(inb);
        echo.metrics.responses.inc({ ...inb, status_code: "200", grpc_status: grpc, classification });
        echo.metrics.responseLatency.observe({ direction: "inbound", authority: AUTHORITY, dst_pod: "", classification }, seconds);
        echo.metrics.authorizations.inc({ port: "8080", decision: "allow", authorization: "echo-clients", route: "", reason: "", client_identity: identityOf("client") });
      }
    },
    deny() {
      echoes[0]!.metrics.authorizations.inc({ port: "8080", decision: "deny", authorization: "", route: "", reason: "unauthorized", client_identity: identityOf("intruder") });
    },
    async close() {
      await Promise.all(all.map((p) => p.admin.close()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
