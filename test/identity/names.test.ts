import { test } from "node:test";
import assert from "node:assert/strict";
import {
  parseDnsName,
  parseIdentity,
  parseSpiffeId,
  toDnsName,
  toSpiffeId,
  workloadIdentity,
} from "../../src/identity/names.js";
import { IdentityNameError } from "../../src/core/errors.js";

test("a service account maps to both identity forms and back", () => {
  const id = workloadIdentity("web", "shop");
  assert.equal(toDnsName(id), "web.shop.serviceaccount.identity.tether.cluster.local");
  assert.equal(toSpiffeId(id), "spiffe://cluster.local/ns/shop/sa/web");
  assert.deepEqual(parseDnsName(toDnsName(id)), id);
  assert.deepEqual(parseSpiffeId(toSpiffeId(id)), id);
  assert.deepEqual(parseIdentity(toSpiffeId(id)), id);
});

test("other trust domains round-trip", () => {
  const id = workloadIdentity("api", "prod", "example.org");
  assert.equal(toDnsName(id), "api.prod.serviceaccount.identity.tether.example.org");
  assert.deepEqual(parseIdentity(toDnsName(id)), id);
});

const bad: [string, () => unknown, string][] = [
  ["uppercase namespace", () => workloadIdentity("web", "Shop"), "IDENTITY_BAD_NAMESPACE"],
  ["namespace too long", () => workloadIdentity("web", "a".repeat(64)), "IDENTITY_BAD_NAMESPACE"],
  ["dotted service account", () => workloadIdentity("a.b", "shop"), "IDENTITY_BAD_SERVICE_ACCOUNT"],
  ["empty service account", () => workloadIdentity("", "shop"), "IDENTITY_BAD_SERVICE_ACCOUNT"],
  ["leading dash", () => workloadIdentity("-web", "shop"), "IDENTITY_BAD_SERVICE_ACCOUNT"],
  ["bad trust domain", () => workloadIdentity("web", "shop", "Bad_Domain"), "IDENTITY_BAD_TRUST_DOMAIN"],
  ["not an identity name", () => parseDnsName("web.shop.svc.cluster.local"), "IDENTITY_BAD_DNS_NAME"],
  ["three labels before infix", () => parseDnsName("a.web.shop.serviceaccount.identity.tether.cluster.local"), "IDENTITY_BAD_DNS_NAME"],
  ["spiffe without sa", () => parseSpiffeId("spiffe://cluster.local/ns/shop"), "IDENTITY_BAD_SPIFFE_ID"],
  ["spiffe with extra path", () => parseSpiffeId("spiffe://cluster.local/ns/shop/sa/web/x"), "IDENTITY_BAD_SPIFFE_ID"],
];

for (const [name, fn, code] of bad) {
  test(`refuses ${name} with ${code}`, () => {
    assert.throws(fn, (err: unknown) => err instanceof IdentityNameError && err.code === code && err.message.length > 20);
  });
}
