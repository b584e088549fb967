import { test } from "node:test";
import assert from "node:assert/strict";
import { formatPortRanges, listProblem, numericListProblem, parsePort, parsePortList, portSet } from "../../src/api/ports.js";

test("numbers, ranges of any width and names; bad entries returned, not thrown", () => {
  const list = parsePortList(" 3306, 4000-4100 ,mysql,, 0, 70000, 9-1, Bad_Name, 9000-12000, http-alt, 80-, -80, a--b, 1234567890123456 ");
  assert.deepEqual(list.ranges, [
    { low: 3306, high: 3306 },
    { low: 4000, high: 4100 },
    { low: 9000, high: 12000 },
  ]);
  assert.deepEqual(list.names, ["mysql", "http-alt"]);
  assert.deepEqual(list.invalid, ["0", "70000", "9-1", "Bad_Name", "80-", "-80", "a--b", "1234567890123456"]);
  const set = portSet(list, new Map([["mysql", 13306]]));
  for (const port of [3306, 4000, 4100, 9000, 12000, 13306]) assert.ok(set.has(port), `${port}`);
  for (const port of [4101, 8999, 12001, 80]) assert.ok(!set.has(port), `${port}`);
});

test("the callers' rules: names allowed or not, every problem named", () => {
  assert.equal(listProblem(parsePortList("80,http")), undefined);
  assert.match(numericListProblem(parsePortList("80,http"))!, /"http" is not a port/);
  assert.match(listProblem(parsePortList("0,Bad"))!, /"0", "Bad" are not a port/);
  assert.equal(numericListProblem(parsePortList("")), undefined);
});

test("single ports, and the canonical text", () => {
  assert.equal(parsePort("65535"), 65535);
  for (const bad of ["0", "65536", "+80", " 80", "0x50", "8e1", ""]) assert.equal(parsePort(bad), undefined, bad);
  assert.equal(formatPortRanges(parsePortList(" 80 , 9000-9010,443").ranges), "80,9000-9010,443");
});
