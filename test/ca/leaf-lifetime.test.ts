import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync, X509Certificate } from "node:crypto";
import { createIssuer, createTrustAnchor, DAY_MS } from "../../src/ca/bootstrap.js";
import { Certifier } from "../../src/ca/certify.js";
import { loadIssuer } from "../../src/ca/issuer.js";
import { notAfter, notBefore } from "../../src/identity/chain.js";
import { ManualClock } from "../../src/core/clock.js";
import { readOnly } from "../../src/identity/der.js";
import { workloadIdentity } from "../../src/identity/names.js";
import { readSpki } from "../../src/identity/pkix.js";

const SECOND = 1000;
const start = Math.floor(Date.now() / SECOND) * SECOND;
const anchor = createTrustAnchor({ trustDomain: "cluster.local", lifetimeMs: 365 * DAY_MS, now: start });

function issueAt(clock: ManualClock, lifetimeMs: number, issuerLifetimeMs = DAY_MS): X509Certificate {
  const issuer = loadIssuer({ ...createIssuer({ anchor, lifetimeMs: issuerLifetimeMs, now: start }), anchorsPem: anchor.certPem }, clock.now());
  const certifier = new Certifier({ trustDomain: "cluster.local", lifetimeMs, clockSkewMs: 20 * SECOND, tokenValidator: null as never, issuer: () => issuer, clock });
  const spki = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ format: "der", type: "spki" });
  return new X509Certificate(certifier.issue(workloadIdentity("web", "shop"), spki, readSpki(readOnly(spki)).keyBits).leafDer);
}

test("a leaf lives at least the configured lifetime: X.509's whole seconds round its expiry up (truncating cost a 5 s certificate up to a fifth)", () => {
  for (const offset of [0, 1, 500, 999]) {
    const clock = new ManualClock(start + offset);
    const leaf = issueAt(clock, 5 * SECOND);
    const lived = notAfter(leaf) - clock.now();
    assert.ok(lived >= 5 * SECOND && lived < 6 * SECOND, `issued ${offset} ms into a second: valid for ${lived} ms`);
    assert.ok(notBefore(leaf) <= clock.now() - 20 * SECOND, "notBefore is backdated by the clock-skew allowance");
  }
});

test("a leaf never outlives its issuer, rounding or not", () => {
  const clock = new ManualClock(start + 500);
  const leaf = issueAt(clock, DAY_MS, 3 * SECOND);
  assert.equal(notAfter(leaf), start + 3 * SECOND);
});
