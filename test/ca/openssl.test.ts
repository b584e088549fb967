import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pemEncode } from "../../src/identity/pkix.js";
import { startCaFixture, workload, type CaFixture } from "../support/ca-fixture.js";

let f: CaFixture;
before(async () => {
  f = await startCaFixture();
});
after(async () => {
  await f?.close();
});

test("an issued certificate verifies with openssl and carries P-256, both SANs, both EKUs, CA:FALSE, 24 h", async () => {
  const w = workload("web", "shop");
  const token = Buffer.from(await f.tokens.mint({ namespace: "shop", serviceAccount: "web" }));
  const before = Date.now();
  const res = await f.client.certify({ identity: w.dnsName, token, csrDer: w.csr });
  const leafPath = join(f.dir, "leaf.pem");
  const issuerPath = join(f.dir, "issuer.pem");
  await writeFile(leafPath, pemEncode("CERTIFICATE", res.leafDer));
  await writeFile(issuerPath, res.chainDer.map((d) => pemEncode("CERTIFICATE", d)).join(""));

  const verify = execFileSync("openssl", ["verify", "-CAfile", f.paths.anchorsPath, "-untrusted", issuerPath, leafPath], { encoding: "utf8" });
  assert.match(verify, /leaf\.pem: OK/);
  // The same leaf must not verify against the anchors alone (the issuer is needed) or a foreign anchor.
  assert.throws(() => execFileSync("openssl", ["verify", "-CAfile", f.paths.anchorsPath, leafPath], { stdio: "pipe" }));

  const text = execFileSync("openssl", ["x509", "-in", leafPath, "-noout", "-text"], { encoding: "utf8" });
  assert.match(text, /Public Key Algorithm: id-ecPublicKey/);
  assert.match(text, /NIST CURVE: P-256/);
  assert.match(text, new RegExp(`DNS:${w.dnsName.replace(/\./g, "\\.")}, URI:spiffe://cluster\\.local/ns/shop/sa/web`));
  assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
  assert.match(text, /Basic Constraints: critical\s+CA:FALSE/);
  assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
  assert.match(text, /Subject Key Identifier/);
  assert.match(text, /Authority Key Identifier/);

  const dates = execFileSync("openssl", ["x509", "-in", leafPath, "-noout", "-startdate", "-enddate"], { encoding: "utf8" });
  const notBefore = Date.parse(/notBefore=(.*)/.exec(dates)![1]!);
  const notAfter = Date.parse(/notAfter=(.*)/.exec(dates)![1]!);
  const day = 24 * 3600 * 1000;
  assert.ok(Math.abs(notAfter - before - day) < 10_000, `notAfter ${new Date(notAfter).toISOString()} is 24 h after issue`);
  // notBefore is backdated by the 20 s clock-skew allowance.
  assert.ok(before - notBefore >= 19_000 && before - notBefore <= 31_000, `notBefore backdated: ${before - notBefore} ms`);
  assert.equal(res.validUntil, Math.floor(notAfter / 1000) * 1000);

  const serial = execFileSync("openssl", ["x509", "-in", leafPath, "-noout", "-serial"], { encoding: "utf8" });
  assert.ok(/serial=([0-9A-F]+)/.exec(serial)![1]!.length >= 24, "serial is a large random number");
});

test("the development issuer and anchor verify with openssl and are CAs", () => {
  const issuerPem = join(f.paths.issuerDir, "tls.crt");
  assert.match(execFileSync("openssl", ["verify", "-CAfile", f.paths.anchorsPath, issuerPem], { encoding: "utf8" }), /OK/);
  const text = execFileSync("openssl", ["x509", "-in", issuerPem, "-noout", "-text"], { encoding: "utf8" });
  assert.match(text, /CA:TRUE, pathlen:0/);
  assert.match(text, /Certificate Sign/);
  // The key is SEC1, as cert-manager writes EC keys; openssl must agree that it matches.
  const keyMod = execFileSync("openssl", ["pkey", "-in", join(f.paths.issuerDir, "tls.key"), "-pubout"], { encoding: "utf8" });
  const certMod = execFileSync("openssl", ["x509", "-in", issuerPem, "-noout", "-pubkey"], { encoding: "utf8" });
  assert.equal(keyMod, certMod);
});
