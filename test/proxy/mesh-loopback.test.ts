/**
 * The proxy's two directions composed on loopback, with a real identity CA: an app's gRPC calls
 * go through an outbound proxy, over mTLS, into inbound proxies in front of echo servers. The
 * original destination is injected (no iptables here; the network-namespace tests cover that).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import type { InboundServer } from "../../src/api/index.js";
import { systemClock } from "../../src/core/clock.js";
import { InboundPolicyCache } from "../../src/proxy/inbound-policies.js";
import { InboundProxy } from "../../src/proxy/inbound.js";
import { createProxyMetrics } from "../../src/proxy/metrics.js";
import { TlsContexts } from "../../src/proxy/tls-contexts.js";
import { runEchoClient, summarize } from "../../src/local/demo/echo.js";
import { startCaFixture } from "../support/ca-fixture.js";
import { certifiedAgent } from "../support/identity-workloads.js";
import { allowAuthenticated, ECHO_IDENTITY, silent, startClientProxy, startReplica } from "./fixtures/mesh.js";

test("gRPC calls are balanced per request over mTLS across replicas", async (t) => {
  const f = await startCaFixture();
  t.after(() => f.close());
  const replicas = await Promise.all(["echo-0", "echo-1", "echo-2"].map((n) => startReplica(f, n, allowAuthenticated("default:all-authenticated"))));
  t.after(() => Promise.all(replicas.map((r) => r.close())));
  const client = await startClientProxy(f, replicas.map((r) => ({ port: r.port, name: r.name, identity: ECHO_IDENTITY })));
  t.after(() => client.close());

  const records = await runEchoClient({ target: `127.0.0.1:${client.port}`, calls: 300, concurrency: 1 });
  const summary = summarize(records);
  assert.equal(summary.failed, 0, JSON.stringify(records.find((r) => r.code !== 0)));
  for (const r of replicas) {
    const share = summary.perReplica[r.name] ?? 0;
    assert.ok(share >= 90 && share <= 110, `${r.name} got ${share} of 300: ${JSON.stringify(summary.perReplica)}`);
  }
  const inboundMetrics = await replicas[0]!.metrics.registry.metrics();
  assert.match(inboundMetrics, /tether_proxy_requests_total\{direction="inbound",[^}]*peer_identity="client\.demo\.serviceaccount\.identity\.tether\.cluster\.local"[^}]*tls="true"/);
  const outboundMetrics = await client.metrics.registry.metrics();
  assert.match(outboundMetrics, /tether_proxy_responses_total\{direction="outbound",[^}]*dst_pod="echo-1",tls="true",[^}]*grpc_status="0",classification="success"/);
});

test("a server that does not prove the promised identity gets no request", async (t) => {
  const f = await startCaFixture();
  t.after(() => f.close());
  const replica = await startReplica(f, "echo-0", allowAuthenticated("default:all-authenticated"));
  t.after(() => replica.close());
  const client = await startClientProxy(f, [{ port: replica.port, name: "echo-0", identity: "other.demo.serviceaccount.identity.tether.cluster.local" }]);
  t.after(() => client.close());
  const records = await runEchoClient({ target: `127.0.0.1:${client.port}`, calls: 3, concurrency: 1 });
  assert.ok(records.every((r) => r.code === 14), JSON.stringify(records));
  assert.match(await replica.metrics.registry.metrics(), /tether_proxy_requests_total 0|^(?![\s\S]*tether_proxy_requests_total\{)/m);
});

test("policy denies with PERMISSION_DENIED and the app never sees the call", async (t) => {
  const f = await startCaFixture();
  t.after(() => f.close());
  const onlyAdmin: InboundServer = {
    ...allowAuthenticated("server:demo/echo"),
    authorizations: [{ name: "admin-only", networks: [], authentication: "mtls", identities: ["admin.demo.serviceaccount.identity.tether.cluster.local"] }],
  };
  const replica = await startReplica(f, "echo-0", onlyAdmin);
  t.after(() => replica.close());
  const client = await startClientProxy(f, [{ port: replica.port, name: "echo-0", identity: ECHO_IDENTITY }]);
  t.after(() => client.close());
  const records = await runEchoClient({ target: `127.0.0.1:${client.port}`, calls: 2, concurrency: 1 });
  assert.deepEqual(records.map((r) => r.code), [7, 7]);
  assert.match(records[0]!.error ?? "", /identity-not-allowed/);
  assert.match(await replica.metrics.registry.metrics(), /tether_proxy_inbound_authorizations_total\{[^}]*decision="deny"[^}]*reason="identity-not-allowed"/);
});

test("the app sees the verified client identity, never one sent from outside", async (t) => {
  const f = await startCaFixture();
  t.after(() => f.close());
  // A raw HTTP/2 app that echoes the identity header it received.
  const app = http2.createServer();
  app.on("stream", (stream, headers) => {
    stream.respond({ ":status": 200 });
    stream.end(String(headers["tether-client-id"] ?? "none"));
  });
  await new Promise<void>((r) => app.listen(0, "127.0.0.1", r));
  t.after(() => app.close());
  const appPort = (app.address() as net.AddressInfo).port;
  const { agent, creds } = await certifiedAgent(f, "echo", "demo");
  t.after(() => agent.stop());
  const contexts = new TlsContexts(f.anchorsPem, systemClock);
  contexts.install(creds);
  const policies = new InboundPolicyCache({
    subscribe: () => (h) => (h.onMessage(allowAuthenticated("default:all-authenticated")), () => {}),
    clock: systemClock,
    backoff: { initialMs: 100, maxMs: 1000 },
  });
  t.after(() => policies.close());
  const inbound = new InboundProxy({
    listen: { host: "127.0.0.1", port: 0 },
    policies,
    contexts,
    metrics: createProxyMetrics(),
    logger: silent,
    clock: systemClock,
    appHost: "127.0.0.1",
    opaquePorts: new Set(),
    detectTimeoutMs: 1000,
    controlPlaneWaitMs: 1000,
    originalDestination: () => ({ address: "127.0.0.1", port: appPort, family: 4 }),
  });
  const inboundPort = await inbound.listen();
  t.after(() => inbound.drain(0));
  const client = await startClientProxy(f, [{ port: inboundPort, name: "app", identity: ECHO_IDENTITY }]);
  t.after(() => client.close());
  const session = http2.connect(`http://127.0.0.1:${client.port}`);
  t.after(() => session.close());
  const body = await new Promise<string>((resolve, reject) => {
    const req = session.request({ ":path": "/", "tether-client-id": "spoofed.identity" });
    let data = "";
    req.on("data", (d: Buffer) => (data += d));
    req.on("end", () => resolve(data));
    req.on("error", reject);
    req.end();
  });
  assert.equal(body, "client.demo.serviceaccount.identity.tether.cluster.local");
  // While the connection is open its balancer is reported, read at scrape time.
  assert.match(await client.metrics.registry.metrics(), /tether_proxy_balancer_endpoints\{authority="10\.96\.0\.10:50051",state="ready"[^}]*\} 1/);
});

test("a plaintext client (no certificate) is refused with PERMISSION_DENIED by the default policy", async (t) => {
  const f = await startCaFixture();
  t.after(() => f.close());
  const replica = await startReplica(f, "echo-0", allowAuthenticated("default:all-authenticated"));
  t.after(() => replica.close());
  // Straight to the inbound proxy, as an unmeshed pod would connect to a meshed one.
  const records = await runEchoClient({ target: `127.0.0.1:${replica.port}`, calls: 2, concurrency: 1 });
  assert.deepEqual(records.map((r) => r.code), [7, 7], JSON.stringify(records));
  assert.match(records[0]!.error ?? "", /unauthenticated/);
});

test("a client with a certificate from another anchor is cut off, and legitimate clients keep working", async (t) => {
  const f = await startCaFixture();
  t.after(() => f.close());
  const foreign = await startCaFixture();
  t.after(() => foreign.close());
  const replica = await startReplica(f, "echo-0", allowAuthenticated("default:all-authenticated"));
  t.after(() => replica.close());
  const { agent, creds } = await certifiedAgent(foreign, "client", "demo");
  t.after(() => agent.stop());
  const attack = await runEchoClient({
    target: `127.0.0.1:${replica.port}`,
    calls: 2,
    concurrency: 1,
    deadlineMs: 2000,
    tls: { caPem: f.anchorsPem, certPem: creds.certChainPem, keyPem: creds.keyPem, serverName: ECHO_IDENTITY },
  });
  assert.ok(attack.every((r) => r.code === 14), JSON.stringify(attack));
  assert.match(await replica.metrics.registry.metrics(), /tether_proxy_protocol_errors_total\{direction="inbound",kind="tls-untrusted-client"/);
  // A legitimate meshed client, on new connections, is served as before.
  for (let round = 0; round < 2; round++) {
    const client = await startClientProxy(f, [{ port: replica.port, name: "echo-0", identity: ECHO_IDENTITY }]);
    const records = await runEchoClient({ target: `127.0.0.1:${client.port}`, calls: 5, concurrency: 1 });
    await client.close();
    assert.deepEqual(records.map((r) => r.code), [0, 0, 0, 0, 0], JSON.stringify(records));
  }
});
