import { test } from "node:test";
import assert from "node:assert/strict";
import { createPrivateKey, generateKeyPairSync, X509Certificate } from "node:crypto";
import { buildCaCertificate } from "../../src/ca/certificate.js";
import { createIssuer, createTrustAnchor, DAY_MS } from "../../src/ca/bootstrap.js";
import { Certifier } from "../../src/ca/certify.js";
import { IssuerError } from "../../src/ca/errors.js";
import { loadIssuer, type IssuerMaterial } from "../../src/ca/issuer.js";
import { systemClock } from "../../src/core/clock.js";
import { workloadIdentity } from "../../src/identity/names.js";
import { pemEncode, readCertificateParts, readSpki } from "../../src/identity/pkix.js";
import { readOnly } from "../../src/identity/der.js";

const now = Date.now();
const anchor = createTrustAnchor({ trustDomain: "cluster.local", lifetimeMs: 365 * DAY_MS, now });
const good = createIssuer({ anchor, lifetimeMs: 30 * DAY_MS, now });
const anchorKey = createPrivateKey(anchor.keyPem);
const anchorParts = readCertificateParts(new X509Certificate(anchor.certPem).raw);

function issuerWithKey(keyType: "rsa" | "ec"): { certPem: string; privateKey: ReturnType<typeof generateKeyPairSync>["privateKey"] } {
  const pair = keyType === "rsa" ? generateKeyPairSync("rsa", { modulusLength: 2048 }) : generateKeyPairSync("ec", { namedCurve: "P-384" });
  const der = buildCaCertificate({
    commonName: `issuer-${keyType}`,
    publicKey: pair.publicKey,
    pathLength: 0,
    issuer: { name: anchorParts.subject, keyId: anchorParts.subjectKeyId!, key: anchorKey },
    notBefore: now - 60_000,
    notAfter: now + DAY_MS,
  });
  return { certPem: pemEncode("CERTIFICATE", der), privateKey: pair.privateKey };
}

function signsVerifiableLeaf(material: IssuerMaterial): void {
  const issuer = loadIssuer(material, now);
  const certifier = new Certifier({ trustDomain: "cluster.local", lifetimeMs: DAY_MS, clockSkewMs: 0, tokenValidator: null as never, issuer: () => issuer, clock: systemClock });
  const spki = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ format: "der", type: "spki" });
  const leaf = new X509Certificate(certifier.issue(workloadIdentity("web", "shop"), spki, readSpki(readOnly(spki)).keyBits).leafDer);
  assert.ok(leaf.verify(issuer.cert.publicKey));
  assert.ok(leaf.checkIssued(issuer.cert));
}

test("accepts issuer keys in SEC1, PKCS#8 and PKCS#1 form, and EC P-384 / RSA issuers", () => {
  signsVerifiableLeaf({ ...good, anchorsPem: anchor.certPem });
  signsVerifiableLeaf({ certPem: good.certPem, keyPem: createPrivateKey(good.keyPem).export({ format: "pem", type: "pkcs8" }).toString(), anchorsPem: anchor.certPem });
  const rsa = issuerWithKey("rsa");
  signsVerifiableLeaf({ certPem: rsa.certPem, keyPem: rsa.privateKey.export({ format: "pem", type: "pkcs1" }).toString(), anchorsPem: anchor.certPem });
  const p384 = issuerWithKey("ec");
  signsVerifiableLeaf({ certPem: p384.certPem, keyPem: p384.privateKey.export({ format: "pem", type: "sec1" }).toString(), anchorsPem: anchor.certPem });
});

test("tls.crt may carry the issuer's chain; the chain sent to workloads excludes the anchor", () => {
  const issuer = loadIssuer({ certPem: good.certPem + anchor.certPem, keyPem: good.keyPem, anchorsPem: anchor.certPem }, now);
  assert.equal(issuer.chainDer.length, 1);
  assert.deepEqual(issuer.chainDer[0], new X509Certificate(good.certPem).raw);
});

const bad: { name: string; material: () => IssuerMaterial; at?: number; code: RegExp; message: RegExp }[] = [
  { name: "no certificate", material: () => ({ certPem: "", keyPem: good.keyPem, anchorsPem: anchor.certPem }), code: /ISSUER_BAD_CERT/, message: /contains no PEM CERTIFICATE/ },
  { name: "no anchors", material: () => ({ ...good, anchorsPem: "nothing" }), code: /ANCHORS_BAD/, message: /trust anchors contains no PEM/ },
  { name: "unreadable key", material: () => ({ ...good, keyPem: "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n", anchorsPem: anchor.certPem }), code: /ISSUER_BAD_KEY/, message: /PKCS#8, SEC1 or PKCS#1/ },
  { name: "not yet valid", material: () => ({ ...good, anchorsPem: anchor.certPem }), at: now - DAY_MS, code: /ISSUER_NOT_YET_VALID/, message: /not valid before/ },
  { name: "expired", material: () => ({ ...good, anchorsPem: anchor.certPem }), at: now + 31 * DAY_MS, code: /ISSUER_EXPIRED/, message: /expired at/ },
];

for (const b of bad) {
  test(`refuses an issuer with ${b.name}`, () => {
    assert.throws(
      () => loadIssuer(b.material(), b.at ?? now),
      (e: unknown) => e instanceof IssuerError && b.code.test(e.code) && b.message.test(e.message),
    );
  });
}
