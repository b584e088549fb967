import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as tls from "node:tls";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { createIssuer, createTrustAnchor, DAY_MS } from "../../src/ca/bootstrap.js";
import { CertificateError } from "../../src/core/errors.js";
import { toDnsName, workloadIdentity, type WorkloadIdentity } from "../../src/identity/names.js";
import {
  checkServerIdentityFor,
  clientConnectOptions,
  clientContextOptions,
  createClientSecureContext,
  peerIdentity,
  serverContextOptions,
  verifyChain,
  type Credentials,
} from "../../src/identity/tls.js";
import type { CertificateAgent } from "../../src/identity/agent.js";
import { startCaFixture, type CaFixture } from "../support/ca-fixture.js";
import { certifiedAgent } from "../support/identity-workloads.js";

let f: CaFixture;
let web: { agent: CertificateAgent; creds: Credentials };
let api: { agent: CertificateAgent; creds: Credentials };
let server: tls.Server;
let port: number;
const seen: (WorkloadIdentity | undefined)[] = [];

before(async () => {
  f = await startCaFixture();
  web = await certifiedAgent(f, "web", "shop");
  api = await certifiedAgent(f, "api", "shop");
  server = tls.createServer(serverContextOptions(api.creds, f.anchorsPem), (socket) => {
    seen.push(peerIdentity(socket));
    socket.end(`hello ${toDnsName(peerIdentity(socket)!)}`);
  });
  server.on("tlsClientError", () => undefined);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  port = (server.address() as AddressInfo).port;
});
after(async () => {
  web?.agent.stop();
  api?.agent.stop();
  server?.close();
  await f?.close();
});

function connect(options: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, ...options });
    let data = "";
    socket.setTimeout(3000, () => socket.destroy(new Error("timeout")));
    socket.on("data", (d) => (data += d));
    socket.on("end", () => resolve(data));
    socket.on("error", reject);
  });
}

test("two certified workloads talk mTLS 1.3 and each sees the other's identity", async () => {
  const reply = await connect({ secureContext: createClientSecureContext(web.creds, f.anchorsPem), ...clientConnectOptions(api.creds.identity) });
  assert.equal(reply, `hello ${web.creds.dnsName}`);
  assert.deepEqual(seen.at(-1), workloadIdentity("web", "shop"));
  const socket = tls.connect({ host: "127.0.0.1", port, secureContext: createClientSecureContext(web.creds, f.anchorsPem), ...clientConnectOptions(api.creds.identity) });
  await once(socket, "secureConnect");
  assert.equal(socket.getProtocol(), "TLSv1.3");
  assert.deepEqual(peerIdentity(socket), api.creds.identity);
  socket.destroy();
});

test("a client expecting another identity refuses the server", async () => {
  await assert.rejects(
    connect({ secureContext: createClientSecureContext(web.creds, f.anchorsPem), ...clientConnectOptions(workloadIdentity("db", "shop")) }),
    (err: CertificateError) => err.code === "TLS_WRONG_PEER_IDENTITY" && /presented identity api\.shop/.test(err.message),
  );
});

/** In TLS 1.3 the client may finish its handshake before the server's alert arrives: refused means no reply and no accepted connection. */
async function assertRefused(options: tls.ConnectionOptions): Promise<void> {
  const accepted = seen.length;
  const outcome = await connect(options).catch((err: Error) => err);
  assert.ok(outcome instanceof Error || outcome === "", `expected a refusal, got ${JSON.stringify(outcome)}`);
  assert.equal(seen.length, accepted, "the server accepted no connection");
}

test("the server refuses a client without a certificate", async () => {
  await assertRefused({ ca: f.anchorsPem, minVersion: "TLSv1.3", ...clientConnectOptions(api.creds.identity) });
});

test("the server refuses a client whose certificate comes from another trust anchor", async () => {
  const anchor = createTrustAnchor({ trustDomain: "cluster.local", lifetimeMs: DAY_MS, now: Date.now() });
  const issuer = createIssuer({ anchor, lifetimeMs: DAY_MS, now: Date.now() });
  // Self-consistent foreign credentials: the foreign issuer acting as the client's certificate.
  const foreign = { ...web.creds, keyPem: issuer.keyPem, certChainPem: issuer.certPem };
  await assertRefused({ ...clientContextOptions(foreign, f.anchorsPem), ...clientConnectOptions(api.creds.identity) });
});

test("TLS 1.2 clients are refused", async () => {
  await assert.rejects(connect({ ...clientContextOptions(web.creds, f.anchorsPem), maxVersion: "TLSv1.2", minVersion: "TLSv1.2", ...clientConnectOptions(api.creds.identity) }));
});

test("checkServerIdentityFor accepts exactly the expected identity", () => {
  const check = checkServerIdentityFor(api.creds.dnsName);
  const cert = { subjectaltname: `DNS:${api.creds.dnsName}, URI:spiffe://cluster.local/ns/shop/sa/api` } as tls.PeerCertificate;
  assert.equal(check("ignored", cert), undefined);
  // The URI SAN wins over the DNS SAN.
  const mixed = { subjectaltname: `DNS:${api.creds.dnsName}, URI:spiffe://cluster.local/ns/shop/sa/web` } as tls.PeerCertificate;
  assert.equal((check("x", mixed) as CertificateError).code, "TLS_WRONG_PEER_IDENTITY");
  assert.equal((check("x", { subjectaltname: "DNS:api.shop.svc.cluster.local" } as tls.PeerCertificate) as CertificateError).code, "TLS_NO_PEER_IDENTITY");
});

test("verifyChain returns the identity, and names expiry and untrusted chains", () => {
  const now = Date.now();
  assert.deepEqual(verifyChain(web.creds.certChainPem, f.anchorsPem, now), web.creds.identity);
  assert.throws(() => verifyChain(web.creds.certChainPem, f.anchorsPem, now + 2 * DAY_MS), (e: CertificateError) => e.code === "CERT_EXPIRED");
  const other = createTrustAnchor({ trustDomain: "cluster.local", lifetimeMs: DAY_MS, now });
  assert.throws(() => verifyChain(web.creds.certChainPem, other.certPem, now), (e: CertificateError) => e.code === "CERT_UNTRUSTED");
  const leafOnly = web.creds.certChainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n/)![0];
  assert.throws(() => verifyChain(leafOnly, f.anchorsPem, now), (e: CertificateError) => e.code === "CERT_UNTRUSTED");
  assert.throws(() => verifyChain("junk", f.anchorsPem, now), (e: CertificateError) => e.code === "CERT_MALFORMED");
});

test("setSecureContext swaps the server's certificate for new handshakes and keeps live connections", async () => {
  const live = tls.connect({ host: "127.0.0.1", port, secureContext: createClientSecureContext(web.creds, f.anchorsPem), ...clientConnectOptions(api.creds.identity) });
  await once(live, "secureConnect");
  const before = live.getPeerX509Certificate()!.fingerprint256;
  const renewed = await certifiedAgent(f, "api", "shop");
  try {
    server.setSecureContext(serverContextOptions(renewed.creds, f.anchorsPem));
    const fresh = tls.connect({ host: "127.0.0.1", port, secureContext: createClientSecureContext(web.creds, f.anchorsPem), ...clientConnectOptions(api.creds.identity) });
    await once(fresh, "secureConnect");
    assert.notEqual(fresh.getPeerX509Certificate()!.fingerprint256, before);
    fresh.destroy();
    assert.equal(live.destroyed, false);
    await assertRefused({ ca: f.anchorsPem, minVersion: "TLSv1.3", ...clientConnectOptions(api.creds.identity) });
  } finally {
    live.destroy();
    renewed.agent.stop();
  }
});
