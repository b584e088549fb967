import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { execFileSync } from "node:child_process";
import fc from "fast-check";
import { TAG, children, oid, readElement, readOid, readOnly, readSmallInteger, sequence, smallInteger, time, tlv, unsignedInteger } from "../../src/identity/der.js";
import { buildCsr, parseCsr, verifyCsrSignature } from "../../src/identity/csr.js";
import { OID } from "../../src/identity/pkix.js";
import { CertificateError } from "../../src/core/errors.js";

test("lengths use the short form below 128 and minimal long forms above", () => {
  assert.deepEqual(tlv(0x04, Buffer.alloc(127)).subarray(0, 2), Buffer.from([0x04, 127]));
  assert.deepEqual(tlv(0x04, Buffer.alloc(128)).subarray(0, 3), Buffer.from([0x04, 0x81, 128]));
  assert.deepEqual(tlv(0x04, Buffer.alloc(300)).subarray(0, 4), Buffer.from([0x04, 0x82, 0x01, 0x2c]));
});

test("integers are minimal and positive", () => {
  assert.deepEqual(smallInteger(0), Buffer.from([0x02, 0x01, 0x00]));
  assert.deepEqual(smallInteger(2), Buffer.from([0x02, 0x01, 0x02]));
  assert.deepEqual(smallInteger(128), Buffer.from([0x02, 0x02, 0x00, 0x80]));
  assert.deepEqual(unsignedInteger(Buffer.from([0, 0, 0x7f])), Buffer.from([0x02, 0x01, 0x7f]));
  assert.deepEqual(unsignedInteger(Buffer.from([0xff])), Buffer.from([0x02, 0x02, 0x00, 0xff]));
  fc.assert(fc.property(fc.nat(2 ** 40), (n) => readSmallInteger(readOnly(smallInteger(n))) === n));
});

test("OIDs round-trip, including multi-byte arcs", () => {
  for (const id of Object.values(OID)) assert.equal(readOid(readOnly(oid(id))), id);
  assert.deepEqual(oid("1.2.840.10045.2.1"), Buffer.from("06072a8648ce3d0201", "hex"));
});

test("times use UTCTime before 2050 and GeneralizedTime after", () => {
  assert.equal(readOnly(time(Date.UTC(2026, 10, 23, 21, 5, 9))).content.toString(), "261123210509Z");
  assert.equal(readOnly(time(Date.UTC(2051, 0, 1))).tag, TAG.GENERALIZED_TIME);
});

test("the reader refuses non-DER input with DER_MALFORMED", () => {
  const bad = [
    Buffer.from("3080", "hex"), // indefinite length
    Buffer.from("30810100", "hex"), // long form for a short length
    Buffer.from("3003020100ff", "hex"), // trailing byte
    Buffer.from("3005020100", "hex"), // runs past the end
    Buffer.from("1f01", "hex"), // multi-byte tag
  ];
  for (const b of bad) assert.throws(() => children(readOnly(b)), (e: CertificateError) => e.code === "DER_MALFORMED", b.toString("hex"));
  assert.throws(() => readSmallInteger(readElement(Buffer.from("020200 01".replace(" ", ""), "hex"))), /non-minimal/);
  assert.throws(() => readOid(readOnly(Buffer.from("06028001", "hex"))), /non-minimal/);
});

test("a built CSR is read back exactly and accepted by openssl", () => {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const csr = buildCsr({ privateKey, publicKey, dnsName: "web.shop.serviceaccount.identity.tether.cluster.local", spiffeId: "spiffe://cluster.local/ns/shop/sa/web" });
  const parsed = parseCsr(csr);
  assert.deepEqual(parsed.subject, [{ type: OID.commonName, value: "web.shop.serviceaccount.identity.tether.cluster.local" }]);
  assert.equal(parsed.key.curve, OID.prime256v1);
  assert.equal(parsed.extensions.length, 1);
  assert.equal(parsed.extensions[0]!.oid, OID.subjectAltName);
  assert.ok(verifyCsrSignature(parsed));
  const out = execFileSync("openssl", ["req", "-inform", "DER", "-noout", "-verify", "-text"], { input: csr, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
  assert.match(out, /URI:spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web/);
  assert.deepEqual(sequence(), Buffer.from([0x30, 0]));
});
