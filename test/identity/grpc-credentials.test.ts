/**
 * Control-plane mTLS over gRPC with agent-backed certificate providers: a server and a client that
 * already hold long-lived certificates (no rotation to come) must work from the first call.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { IdentityService } from "../../src/api/index.js";
import { AgentCertificateProvider, mtlsChannelCredentials, mtlsChannelOptions, mtlsServerCredentials } from "../../src/identity/grpc-credentials.js";
import { startCaFixture } from "../support/ca-fixture.js";
import { certifiedAgent } from "../support/identity-workloads.js";

test("two gRPC servers and a client on agent certificates talk mTLS from the first call", async (t) => {
  const f = await startCaFixture();
  t.after(() => f.close());
  const server = await certifiedAgent(f, "tether-destination", "tether");
  const client = await certifiedAgent(f, "web", "shop");
  t.after(() => (server.agent.stop(), client.agent.stop()));
  const provider = new AgentCertificateProvider(server.agent, f.anchorsPem);
  const seen: string[] = [];
  const ports: number[] = [];
  for (let i = 0; i < 2; i++) {
    const grpcServer = new grpc.Server();
    grpcServer.addService(IdentityService.service, {
      Certify: (call: grpc.ServerUnaryCall<{ identity: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        seen.push(call.request.identity);
        cb(null, { leafCertificate: Buffer.alloc(0), intermediateCertificates: [], validUntil: null });
      },
    });
    ports.push(await new Promise<number>((resolve, reject) => grpcServer.bindAsync("127.0.0.1:0", mtlsServerCredentials(provider), (e, p) => (e ? reject(e) : resolve(p)))));
    t.after(() => grpcServer.forceShutdown());
  }
  const serverName = server.creds.dnsName;
  const credentials = mtlsChannelCredentials(new AgentCertificateProvider(client.agent, f.anchorsPem), serverName);
  for (const port of ports) {
    const stub = new IdentityService(`127.0.0.1:${port}`, credentials, mtlsChannelOptions(serverName)) as unknown as grpc.Client & {
      Certify(req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null) => void): void;
    };
    await new Promise<void>((resolve, reject) =>
      stub.Certify({ identity: `call-${port}`, token: Buffer.alloc(0), certificateSigningRequest: Buffer.alloc(0) }, { deadline: Date.now() + 5000 }, (err) => (err ? reject(err) : resolve())),
    );
    stub.close();
  }
  assert.deepEqual(seen.sort(), ports.map((p) => `call-${p}`).sort());

  // A client presenting no certificate is refused by the server.
  const anonymous = new IdentityService(`127.0.0.1:${ports[0]}`, grpc.credentials.createSsl(Buffer.from(f.anchorsPem)), mtlsChannelOptions(serverName)) as unknown as grpc.Client & {
    Certify(req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null) => void): void;
  };
  const refused = await new Promise<grpc.ServiceError | null>((resolve) =>
    anonymous.Certify({ identity: "anon", token: Buffer.alloc(0), certificateSigningRequest: Buffer.alloc(0) }, { deadline: Date.now() + 3000 }, resolve),
  );
  anonymous.close();
  assert.equal(refused?.code, grpc.status.UNAVAILABLE);
  assert.equal(seen.includes("anon"), false);
});

test("the provider delivers the current certificate after add…Listener returns, never during it", async (t) => {
  // grpc-js servers read the credentials, then add their watcher; an update delivered inside
  // addIdentityCertificateListener would reach nobody and the server would drop every connection.
  const f = await startCaFixture();
  t.after(() => f.close());
  const { agent } = await certifiedAgent(f, "web", "shop");
  t.after(() => agent.stop());
  const provider = new AgentCertificateProvider(agent, f.anchorsPem);
  const events: string[] = [];
  provider.addIdentityCertificateListener((u) => events.push(u ? "identity" : "none"));
  provider.addCaCertificateListener((u) => events.push(u ? "ca" : "none"));
  events.push("returned");
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(events, ["returned", "identity", "ca"]);
  // A listener removed before delivery gets nothing.
  const late: string[] = [];
  const listener = () => late.push("called");
  provider.addIdentityCertificateListener(listener);
  provider.removeIdentityCertificateListener(listener);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(late, []);
});
