import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { createCertifyClient } from "../../src/api/identity-client.js";
import { createTrustAnchor, DAY_MS } from "../../src/ca/bootstrap.js";
import { ServiceAccountTokenIssuer } from "../../src/local/service-account-tokens.js";
import { customCsr } from "../support/ca-csr.js";
import { startCaFixture, workload, type CaFixture } from "../support/ca-fixture.js";

let f: CaFixture;
let stranger: ServiceAccountTokenIssuer;
before(async () => {
  f = await startCaFixture();
  stranger = await ServiceAccountTokenIssuer.create();
});
after(async () => {
  await f?.close();
});

const web = workload("web", "shop");
const mint = (opts: Partial<Parameters<ServiceAccountTokenIssuer["mint"]>[0]> = {}, issuer?: ServiceAccountTokenIssuer): Promise<Buffer> =>
  (issuer ?? f.tokens).mint({ namespace: "shop", serviceAccount: "web", ...opts }).then((t) => Buffer.from(t));

interface Case {
  name: string;
  request: () => Promise<{ identity: string; token: Buffer; csrDer: Buffer }>;
  status: grpc.status;
  message: RegExp;
}

const cases: Case[] = [
  { name: "token of another service account", request: async () => ({ identity: web.dnsName, token: await mint({ serviceAccount: "api" }), csrDer: web.csr }), status: grpc.status.PERMISSION_DENIED, message: /IDENTITY_MISMATCH: token is for service account api in namespace shop/ },
  { name: "token of another namespace", request: async () => ({ identity: web.dnsName, token: await mint({ namespace: "prod" }), csrDer: web.csr }), status: grpc.status.PERMISSION_DENIED, message: /IDENTITY_MISMATCH/ },
  { name: "expired token", request: async () => ({ identity: web.dnsName, token: await mint({ now: Date.now() - 2 * 3600_000, lifetimeSeconds: 600 }), csrDer: web.csr }), status: grpc.status.UNAUTHENTICATED, message: /TOKEN_EXPIRED: token has expired/ },
  { name: "wrong audience", request: async () => ({ identity: web.dnsName, token: await mint({ audience: "https://kubernetes.default.svc" }), csrDer: web.csr }), status: grpc.status.UNAUTHENTICATED, message: /TOKEN_WRONG_AUDIENCE: token audience is not identity\.tether\.io/ },
  { name: "bad signature (another issuer's key)", request: async () => ({ identity: web.dnsName, token: await mint({}, stranger), csrDer: web.csr }), status: grpc.status.UNAUTHENTICATED, message: /TOKEN_BAD_SIGNATURE/ },
  {
    name: "tampered token payload",
    request: async () => {
      const [h, p, s] = (await mint()).toString().split(".");
      const claims = JSON.parse(Buffer.from(p!, "base64url").toString());
      claims.sub = "system:serviceaccount:shop:admin";
      return { identity: web.dnsName, token: Buffer.from(`${h}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${s}`), csrDer: web.csr };
    },
    status: grpc.status.UNAUTHENTICATED,
    message: /TOKEN_BAD_SIGNATURE/,
  },
  { name: "no token", request: async () => ({ identity: web.dnsName, token: Buffer.alloc(0), csrDer: web.csr }), status: grpc.status.UNAUTHENTICATED, message: /TOKEN_MISSING/ },
  { name: "garbage token", request: async () => ({ identity: web.dnsName, token: Buffer.from("not-a-jwt"), csrDer: web.csr }), status: grpc.status.UNAUTHENTICATED, message: /TOKEN_MALFORMED/ },
  {
    name: "CSR naming another identity",
    request: async () => ({ identity: web.dnsName, token: await mint(), csrDer: customCsr({ commonName: web.dnsName, dns: ["api.shop.serviceaccount.identity.tether.cluster.local"] }) }),
    status: grpc.status.PERMISSION_DENIED,
    message: /CSR_FOREIGN_IDENTITY: CSR subjectAltName DNS names identity api\.shop/,
  },
  {
    name: "CSR with another identity's SPIFFE ID",
    request: async () => ({ identity: web.dnsName, token: await mint(), csrDer: customCsr({ uri: ["spiffe://cluster.local/ns/kube-system/sa/admin"] }) }),
    status: grpc.status.PERMISSION_DENIED,
    message: /CSR_FOREIGN_IDENTITY/,
  },
  { name: "CSR asking for CA:true", request: async () => ({ identity: web.dnsName, token: await mint(), csrDer: customCsr({ commonName: web.dnsName, ca: true }) }), status: grpc.status.INVALID_ARGUMENT, message: /CSR_REQUESTS_CA: CSR asks for a CA certificate/ },
  {
    name: "RSA key",
    request: async () => ({ identity: web.dnsName, token: await mint(), csrDer: customCsr({ key: generateKeyPairSync("rsa", { modulusLength: 2048 }), commonName: web.dnsName }) }),
    status: grpc.status.INVALID_ARGUMENT,
    message: /CSR_KEY_NOT_P256: CSR key is RSA/,
  },
  {
    name: "P-384 key",
    request: async () => ({ identity: web.dnsName, token: await mint(), csrDer: customCsr({ key: generateKeyPairSync("ec", { namedCurve: "P-384" }), commonName: web.dnsName }) }),
    status: grpc.status.INVALID_ARGUMENT,
    message: /CSR_KEY_NOT_P256: CSR key is on curve secp384r1/,
  },
  {
    name: "extra SANs",
    request: async () => ({ identity: web.dnsName, token: await mint(), csrDer: customCsr({ dns: [web.dnsName, "evil.example.com"], uri: [web.spiffeId] }) }),
    status: grpc.status.INVALID_ARGUMENT,
    message: /CSR_EXTRA_NAME: CSR subjectAltName DNS "evil\.example\.com" is not allowed/,
  },
  { name: "malformed DER", request: async () => ({ identity: web.dnsName, token: await mint(), csrDer: Buffer.from("3082ffff0102", "hex") }), status: grpc.status.INVALID_ARGUMENT, message: /CSR_MALFORMED: CSR is not a well-formed DER PKCS#10 request/ },
  {
    name: "CSR signed by another key",
    request: async () => {
      const csr = Buffer.from(web.csr);
      csr[csr.length - 5] = csr[csr.length - 5]! ^ 0x01;
      return { identity: web.dnsName, token: await mint(), csrDer: csr };
    },
    status: grpc.status.INVALID_ARGUMENT,
    message: /CSR_(BAD_SIGNATURE|MALFORMED)/,
  },
  { name: "identity that is not a tether name", request: async () => ({ identity: "web.shop.svc.cluster.local", token: await mint(), csrDer: web.csr }), status: grpc.status.INVALID_ARGUMENT, message: /IDENTITY_MALFORMED/ },
  {
    name: "identity in another trust domain",
    request: async () => ({ identity: "web.shop.serviceaccount.identity.tether.example.org", token: await mint(), csrDer: web.csr }),
    status: grpc.status.PERMISSION_DENIED,
    message: /IDENTITY_WRONG_TRUST_DOMAIN/,
  },
  { name: "oversized request", request: async () => ({ identity: web.dnsName, token: await mint(), csrDer: Buffer.alloc(100 * 1024, 0x30) }), status: grpc.status.RESOURCE_EXHAUSTED, message: /larger than max/ },
  { name: "oversized CSR under the message limit", request: async () => ({ identity: web.dnsName, token: await mint(), csrDer: Buffer.alloc(20 * 1024, 0x30) }), status: grpc.status.INVALID_ARGUMENT, message: /CSR_TOO_LARGE/ },
];

async function issuesFine(): Promise<void> {
  const res = await f.client.certify({ identity: web.dnsName, token: await mint(), csrDer: web.csr });
  assert.ok(res.leafDer.length > 300);
}

for (const c of cases) {
  test(`refuses ${c.name} with ${grpc.status[c.status]}, and keeps serving`, async () => {
    await assert.rejects(f.client.certify(await c.request()), (err: grpc.ServiceError) => {
      assert.equal(err.code, c.status, `code ${grpc.status[err.code]}: ${err.details}`);
      assert.match(err.details, c.message);
      return true;
    });
    await issuesFine();
  });
}

test("refusals are counted by result and logged without the token", async () => {
  const text = await (await fetch(`http://127.0.0.1:${f.ca.adminPort}/metrics`)).text();
  for (const result of ["issued", "unauthenticated", "permission_denied", "invalid_argument"]) {
    assert.match(text, new RegExp(`tether_identity_certify_total\\{result="${result}"\\} [1-9]`));
  }
  assert.match(text, /tether_identity_certify_duration_seconds_bucket/);
  assert.match(text, /tether_identity_issuer_expiry_timestamp_seconds \d+/);
  assert.match(text, /tether_identity_trust_anchor_expiry_timestamp_seconds \d+/);
  assert.equal((await fetch(`http://127.0.0.1:${f.ca.adminPort}/ready`)).status, 200);
  assert.equal((await fetch(`http://127.0.0.1:${f.ca.adminPort}/live`)).status, 200);
  const refusals = f.logs.filter((l) => typeof l.msg === "string" && l.msg.startsWith("certify refused"));
  assert.ok(refusals.length >= cases.length - 1);
  const token = (await mint()).toString();
  const signature = token.split(".")[2]!;
  for (const line of f.logs) assert.ok(!JSON.stringify(line).includes(signature.slice(0, 20)), "no token material in logs");
});

test("a client that does not trust the CA's anchor refuses to talk to it", async () => {
  const foreign = createTrustAnchor({ trustDomain: "cluster.local", lifetimeMs: DAY_MS, now: Date.now() });
  const client = createCertifyClient({ address: f.ca.address, anchorsPem: foreign.certPem, serverName: f.ca.serverName, timeoutMs: 3000 });
  try {
    await assert.rejects(client.certify({ identity: web.dnsName, token: await mint(), csrDer: web.csr }), (err: grpc.ServiceError) => err.code === grpc.status.UNAVAILABLE);
  } finally {
    client.close();
  }
});

test("a client expecting another server identity refuses the CA", async () => {
  const client = createCertifyClient({ address: f.ca.address, anchorsPem: f.anchorsPem, serverName: "web.shop.serviceaccount.identity.tether.cluster.local", timeoutMs: 3000 });
  try {
    await assert.rejects(client.certify({ identity: web.dnsName, token: await mint(), csrDer: web.csr }), (err: grpc.ServiceError) => err.code === grpc.status.UNAVAILABLE);
  } finally {
    client.close();
  }
});
