import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateKeyPairSync } from "node:crypto";
import { createIssuer, createTrustAnchor, DAY_MS } from "../../src/ca/bootstrap.js";
import { Certifier } from "../../src/ca/certify.js";
import { loadIssuer, type Issuer } from "../../src/ca/issuer.js";
import { readIssuerFolder } from "../../src/ca/issuer-folder.js";
import { writeIssuerSecret } from "../../src/ca/bootstrap.js";
import { verifyChain } from "../../src/identity/chain.js";
import { systemClock } from "../../src/core/clock.js";
import { CertificateError } from "../../src/core/errors.js";
import { toDnsName, workloadIdentity } from "../../src/identity/names.js";
import { IssuerError } from "../../src/ca/errors.js";
import { pemEncode, readSpki } from "../../src/identity/pkix.js";
import { readOnly } from "../../src/identity/der.js";

const now = Date.now();
const oldAnchor = createTrustAnchor({ trustDomain: "cluster.local", lifetimeMs: 30 * DAY_MS, now, commonName: "root-old" });
const newAnchor = createTrustAnchor({ trustDomain: "cluster.local", lifetimeMs: 365 * DAY_MS, now, commonName: "root-new" });
const bundle = oldAnchor.certPem + newAnchor.certPem;

function leafFrom(issuer: Issuer, sa: string): string {
  const certifier = new Certifier({ trustDomain: "cluster.local", lifetimeMs: DAY_MS, clockSkewMs: 0, tokenValidator: null as never, issuer: () => issuer, clock: systemClock });
  const spki = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ format: "der", type: "spki" });
  const issued = certifier.issue(workloadIdentity(sa, "shop"), spki, readSpki(readOnly(spki)).keyBits);
  return [issued.leafDer, ...issued.chainDer].map((d) => pemEncode("CERTIFICATE", d)).join("");
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "tether-anchors-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("a bundle with the old and new anchors lets leaves from both issuers verify", async () => {
  const oldIssuerMaterial = createIssuer({ anchor: oldAnchor, lifetimeMs: 10 * DAY_MS, now });
  const newIssuerMaterial = createIssuer({ anchor: newAnchor, lifetimeMs: 10 * DAY_MS, now });
  // Step 1 of a rotation: the bundle carries both anchors while the old issuer still signs.
  await writeIssuerSecret(dir, oldIssuerMaterial, bundle);
  const oldIssuer = loadIssuer(await readIssuerFolder(dir), now);
  assert.equal(oldIssuer.anchors.length, 2);
  // Step 2: the issuer from the new anchor replaces it; the bundle is unchanged.
  await writeIssuerSecret(dir, newIssuerMaterial, bundle);
  const newIssuer = loadIssuer(await readIssuerFolder(dir), now);

  const fromOld = leafFrom(oldIssuer, "web");
  const fromNew = leafFrom(newIssuer, "api");
  assert.equal(toDnsName(verifyChain(fromOld, bundle, now)), "web.shop.serviceaccount.identity.tether.cluster.local");
  assert.equal(toDnsName(verifyChain(fromNew, bundle, now)), "api.shop.serviceaccount.identity.tether.cluster.local");

  // Each anchor alone accepts only its own issuer's leaves: the bundle is what bridges them.
  assert.throws(() => verifyChain(fromNew, oldAnchor.certPem, now), (e: unknown) => e instanceof CertificateError && e.code === "CERT_UNTRUSTED");
  assert.throws(() => verifyChain(fromOld, newAnchor.certPem, now), (e: unknown) => e instanceof CertificateError && e.code === "CERT_UNTRUSTED");
  // Step 3: once old leaves have expired, the old anchor is dropped.
  assert.doesNotThrow(() => verifyChain(fromNew, newAnchor.certPem, now));
});

test("an issuer whose anchor is not in the bundle is refused at load", () => {
  const issuer = createIssuer({ anchor: newAnchor, lifetimeMs: DAY_MS, now });
  assert.throws(
    () => loadIssuer({ certPem: issuer.certPem, keyPem: issuer.keyPem, anchorsPem: oldAnchor.certPem }, now),
    (e: unknown) => e instanceof Error && (e as IssuerError).code === "ISSUER_UNTRUSTED" && /does not chain to a valid trust anchor/.test(e.message),
  );
});
