import { test } from "node:test";
import assert from "node:assert/strict";
import { parseDestinationPath, targetKey, type DestinationTarget } from "../../src/discovery/path.js";
import { TetherError } from "../../src/core/errors.js";

const ok: [string, DestinationTarget][] = [
  ["web.shop.svc.cluster.local:80", { kind: "service", name: "web", namespace: "shop", port: 80 }],
  ["Web.Shop.svc.cluster.local.:8080", { kind: "service", name: "web", namespace: "shop", port: 8080 }],
  ["db-0.db.shop.svc.cluster.local:5432", { kind: "service", hostname: "db-0", name: "db", namespace: "shop", port: 5432 }],
  ["10.96.0.10:80", { kind: "ip", ip: "10.96.0.10", port: 80 }],
  ["[fd00::1]:443", { kind: "ip", ip: "fd00::1", port: 443 }],
  ["fd00::1:443", { kind: "ip", ip: "fd00::1", port: 443 }],
];

for (const [path, want] of ok) {
  test(`parses ${path}`, () => {
    assert.deepEqual(parseDestinationPath(path, "cluster.local"), want);
  });
}

const bad: [string, string][] = [
  ["web.shop.svc.cluster.local", "DISCOVERY_BAD_PATH"],
  ["web.shop.svc.cluster.local:0", "DISCOVERY_BAD_PORT"],
  ["web.shop.svc.cluster.local:65536", "DISCOVERY_BAD_PORT"],
  ["web.shop.svc.cluster.local:http", "DISCOVERY_BAD_PORT"],
  ["example.com:443", "DISCOVERY_NOT_IN_CLUSTER"],
  ["web.shop.svc.other.domain:80", "DISCOVERY_NOT_IN_CLUSTER"],
  ["shop.svc.cluster.local:80", "DISCOVERY_BAD_PATH"],
  ["a.b.c.d.svc.cluster.local:80", "DISCOVERY_BAD_PATH"],
  ["we_b.shop.svc.cluster.local:80", "DISCOVERY_BAD_PATH"],
];

for (const [path, code] of bad) {
  test(`refuses ${path} with ${code}`, () => {
    assert.throws(
      () => parseDestinationPath(path, "cluster.local"),
      (err: unknown) => err instanceof TetherError && err.code === code && err.message.includes("expected"),
    );
  });
}

test("the cluster domain is a setting", () => {
  assert.deepEqual(parseDestinationPath("web.shop.svc.corp.internal:80", "corp.internal"), {
    kind: "service",
    name: "web",
    namespace: "shop",
    port: 80,
  });
  assert.throws(() => parseDestinationPath("web.shop.svc.cluster.local:80", "corp.internal"));
});

test("name and IP paths of different ports get different shared watches", () => {
  const keys = ["web.shop.svc.cluster.local:80", "web.shop.svc.cluster.local:81", "10.96.0.10:80", "w-0.web.shop.svc.cluster.local:80"].map(
    (p) => targetKey(parseDestinationPath(p, "cluster.local")),
  );
  assert.equal(new Set(keys).size, keys.length);
  assert.equal(targetKey(parseDestinationPath("WEB.shop.svc.cluster.local:80", "cluster.local")), keys[0]);
});
