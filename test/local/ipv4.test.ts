import { test } from "node:test";
import assert from "node:assert/strict";
import {
  allocateAddress,
  cidrContains,
  cidrsOverlap,
  formatCidr,
  formatIpv4,
  parseCidr,
  parseIpv4,
  pickFreeBlock,
} from "../../src/local/ipv4.js";
import { errorCode } from "../../src/core/errors.js";

test("parses and formats addresses and CIDRs", () => {
  assert.equal(formatIpv4(parseIpv4("10.247.3.200")), "10.247.3.200");
  assert.equal(parseIpv4("255.255.255.255"), 0xffffffff);
  assert.equal(formatCidr(parseCidr("10.247.0.0/16")), "10.247.0.0/16");
  for (const bad of ["10.247.0", "10.247.0.256", "01.2.3.4", "a.b.c.d", ""]) {
    assert.throws(() => parseIpv4(bad), (e) => errorCode(e) === "LOCAL_BAD_CIDR", bad);
  }
  for (const bad of ["10.247.0.0", "10.247.0.0/33", "10.247.0.0/x", "10.247.1.0/16"]) {
    assert.throws(() => parseCidr(bad), (e) => errorCode(e) === "LOCAL_BAD_CIDR", bad);
  }
  assert.throws(() => parseCidr("10.247.1.0/16"), /did you mean 10\.247\.0\.0\/16/);
});

test("containment and overlap", () => {
  const net = parseCidr("10.247.0.0/16");
  assert.equal(cidrContains(net, parseIpv4("10.247.255.255")), true);
  assert.equal(cidrContains(net, parseIpv4("10.248.0.0")), false);
  const table: [string, string, boolean][] = [
    ["10.247.0.0/16", "10.247.3.0/24", true],
    ["10.247.3.0/24", "10.247.0.0/16", true],
    ["10.247.0.0/16", "10.248.0.0/16", false],
    ["0.0.0.0/0", "10.0.0.0/8", true],
    ["10.246.1.0/24", "10.246.2.0/24", false],
    ["10.246.1.7/32", "10.246.1.0/24", true],
  ];
  for (const [a, b, want] of table) assert.equal(cidrsOverlap(parseCidr(a), parseCidr(b)), want, `${a} ${b}`);
});

test("allocates the lowest free host address, skipping network, broadcast and reserved", () => {
  const net = parseCidr("10.9.0.0/29"); // .1 to .6 usable
  const gw = parseIpv4("10.9.0.1");
  assert.equal(formatIpv4(allocateAddress(net, [], [gw])), "10.9.0.2");
  const used = ["10.9.0.2", "10.9.0.3", "10.9.0.5"].map(parseIpv4);
  assert.equal(formatIpv4(allocateAddress(net, used, [gw])), "10.9.0.4");
  const full = ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"].map(parseIpv4);
  assert.throws(() => allocateAddress(net, full, [gw]), (e) => errorCode(e) === "LOCAL_ADDRESSES_EXHAUSTED");
});

test("picks a free block that overlaps nothing taken, wherever the random start falls", () => {
  const within = parseCidr("10.246.0.0/22"); // four /24s
  const taken = ["10.246.0.0/24", "10.246.2.0/23"].map(parseCidr);
  for (const r of [0, 0.3, 0.6, 0.99]) {
    const block = pickFreeBlock(within, 24, taken, () => r);
    assert.equal(block && formatCidr(block), "10.246.1.0/24");
  }
  assert.equal(pickFreeBlock(within, 24, [parseCidr("10.0.0.0/8")], () => 0), undefined);
  assert.throws(() => pickFreeBlock(within, 20, [], () => 0), (e) => errorCode(e) === "LOCAL_BAD_CIDR");
});
