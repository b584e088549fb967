import { test } from "node:test";
import assert from "node:assert/strict";
import { checkCidr } from "../../src/cluster/policy-validation.js";
import { cidrProblem, cidrWithin, parseCidr, parseIp } from "../../src/core/ip.js";

test("parseIp handles IPv4, IPv6 shorthand, embedded IPv4, zones and junk", () => {
  assert.deepEqual(parseIp("10.1.2.3"), { v4: true, w: [0, 0, 0xffff, 0x0a010203] });
  assert.deepEqual(parseIp("::ffff:10.1.2.3"), { v4: true, w: [0, 0, 0xffff, 0x0a010203] });
  assert.deepEqual(parseIp("fd00::1"), { v4: false, w: [0xfd000000, 0, 0, 1] });
  assert.deepEqual(parseIp("fe80::1%eth0"), { v4: false, w: [0xfe800000, 0, 0, 1] });
  assert.deepEqual(parseIp("::"), { v4: false, w: [0, 0, 0, 0] });
  for (const bad of ["", "10.0.0", "10.0.0.256", "fd00:::1", "host", "1.2.3.4/8", "10.0.0.1%eth0"]) assert.equal(parseIp(bad), undefined, bad);
});

test("parseCidr keeps families apart and rejects bad prefixes", () => {
  assert.equal(parseCidr("10.0.0.0/8")!.bits, 104);
  assert.equal(parseCidr("10.0.0.1")!.bits, 128);
  assert.equal(parseCidr("fd00::/8")!.bits, 8);
  assert.equal(parseCidr("10.0.0.0/33"), undefined);
  assert.equal(parseCidr("fd00::/129"), undefined);
  assert.equal(parseCidr("10.0.0.0/x"), undefined);
  // Zones belong to addresses, not networks (a regression admitted "10.0.0.0%x/8" as 10.0.0.0/8).
  for (const zoned of ["10.0.0.0%x/8", "10.0.0.1%eth0", "fe80::%eth0/64"]) assert.equal(parseCidr(zoned), undefined, zoned);
  assert.match(cidrProblem("10.0.0.0%x/8")!, /names an interface zone/);
});

test("validation and evaluation read CIDRs alike: what validation admits, the proxy can match", () => {
  for (const text of ["10.0.0.0/8", "10.0.0.1", "fd00::/8", "::ffff:10.0.0.0/104", "fe80::1%eth0/64", "10.0.0.0%x/8", "0.0.0.0/0", "10.0.0.0/33", "010.0.0.0/8", "10.0.0.0/", "10.0.0.0/-1", "fd00::/129", "host/8", ""]) {
    const validated = checkCidr(text);
    assert.equal(typeof validated !== "string", parseCidr(text) !== undefined, text);
    assert.equal(cidrProblem(text) === undefined, parseCidr(text) !== undefined, text);
  }
  assert.match(cidrProblem("10.0.0.0/33")!, /invalid prefix length \(0-32 for IPv4\)/);
  assert.match(cidrProblem("fd00::/200")!, /0-128 for IPv6/);
  assert.match(cidrProblem("nope")!, /not an IPv4 or IPv6 CIDR/);
});

test("cidrWithin: an exception narrows its network", () => {
  const within = (a: string, b: string) => cidrWithin(parseCidr(a)!, parseCidr(b)!);
  assert.ok(within("10.1.0.0/16", "10.0.0.0/8"));
  assert.ok(within("10.0.0.0/8", "10.0.0.0/8"));
  assert.ok(!within("10.0.0.0/7", "10.0.0.0/8"));
  assert.ok(!within("11.0.0.0/16", "10.0.0.0/8"));
  assert.ok(!within("fd00::/16", "10.0.0.0/8"));
});
