import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { CertifyError } from "../../src/ca/errors.js";
import { VerifiedCsrCache, checkCsr } from "../../src/ca/csr-policy.js";
import { boolean, octetString, oid, sequence } from "../../src/identity/der.js";
import { OID } from "../../src/identity/pkix.js";
import { toDnsName, toSpiffeId, workloadIdentity } from "../../src/identity/names.js";
import { customCsr, p256 } from "../support/ca-csr.js";
import { workload } from "../support/ca-fixture.js";

const id = workloadIdentity("web", "shop");
const want = { identity: id, dnsName: toDnsName(id), spiffeId: toSpiffeId(id) };
const ext = (o: string, value: Buffer, critical = false): Buffer => (critical ? sequence(oid(o), boolean(true), octetString(value)) : sequence(oid(o), octetString(value)));

const accepted: [string, () => Buffer][] = [
  ["the agent's CSR", () => workload("web", "shop").csr],
  ["an empty subject and no extensions", () => customCsr({})],
  ["only the URI SAN", () => customCsr({ uri: [want.spiffeId] })],
  ["CA:FALSE spelled out", () => customCsr({ commonName: want.dnsName, ca: false })],
];

const refused: [string, () => Buffer, string, string][] = [
  ["empty", () => Buffer.alloc(0), "INVALID_ARGUMENT", "CSR_MISSING"],
  ["CN of another identity", () => customCsr({ commonName: "api.shop.serviceaccount.identity.tether.cluster.local" }), "PERMISSION_DENIED", "CSR_FOREIGN_IDENTITY"],
  ["CN that is no identity", () => customCsr({ commonName: "localhost" }), "INVALID_ARGUMENT", "CSR_EXTRA_NAME"],
  ["a URI SAN in another trust domain", () => customCsr({ uri: ["spiffe://example.org/ns/shop/sa/web"] }), "PERMISSION_DENIED", "CSR_FOREIGN_IDENTITY"],
  ["CA:TRUE", () => customCsr({ ca: true }), "INVALID_ARGUMENT", "CSR_REQUESTS_CA"],
  ["a keyUsage extension", () => customCsr({ extraExtensions: [ext(OID.keyUsage, Buffer.from([3, 2, 1, 6]), true)] }), "INVALID_ARGUMENT", "CSR_UNEXPECTED_EXTENSION"],
  ["two SAN extensions", () => customCsr({ dns: [want.dnsName], extraExtensions: [ext(OID.subjectAltName, sequence())] }), "INVALID_ARGUMENT", "CSR_DUPLICATE_EXTENSION"],
  ["an Ed25519 key", () => customCsr({ key: generateKeyPairSync("ed25519") }), "INVALID_ARGUMENT", "CSR_KEY_NOT_P256"],
];

for (const [name, make] of accepted) {
  test(`accepts ${name}`, () => {
    const out = checkCsr(make(), want);
    assert.equal(out.keyBits.length, 65);
  });
}

for (const [name, make, status, code] of refused) {
  test(`refuses ${name} with ${status} ${code}`, () => {
    assert.throws(() => checkCsr(make(), want), (e: unknown) => e instanceof CertifyError && e.status === status && e.code === code && e.message.length > 20);
  });
}

test("the verified-CSR cache skips only the signature check, and only for identical bytes", () => {
  const cache = new VerifiedCsrCache(2);
  const w = workload("web", "shop");
  checkCsr(w.csr, want, cache);
  assert.equal(cache.size, 1);
  // Same bytes, different requested identity: the name checks still run.
  const api = workloadIdentity("api", "shop");
  assert.throws(() => checkCsr(w.csr, { identity: api, dnsName: toDnsName(api), spiffeId: toSpiffeId(api) }, cache), (e: CertifyError) => e.code === "CSR_FOREIGN_IDENTITY");
  // A bad signature is never cached.
  const bad = Buffer.from(customCsr({ key: p256(), uri: [want.spiffeId] }));
  bad[bad.length - 3] = bad[bad.length - 3]! ^ 0x40;
  assert.throws(() => checkCsr(bad, want, cache), (e: CertifyError) => e.code === "CSR_BAD_SIGNATURE" || e.code === "CSR_MALFORMED");
  assert.throws(() => checkCsr(bad, want, cache));
  assert.equal(cache.size, 1);
  // Bounded: the oldest entry goes.
  checkCsr(customCsr({}), want, cache);
  checkCsr(customCsr({}), want, cache);
  assert.equal(cache.size, 2);
});
