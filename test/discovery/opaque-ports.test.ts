import { test } from "node:test";
import assert from "node:assert/strict";
import { parsePortSet, portSetHas } from "../../src/discovery/opaque-ports.js";

test("numbers, ranges and names; bad entries reported, not fatal", () => {
  const set = parsePortSet(" 3306, 4000-4100 ,mysql,, 0, 70000, 9-1, Bad_Name ");
  assert.deepEqual([...set.numbers], [3306]);
  assert.deepEqual(set.ranges, [[4000, 4100]]);
  assert.deepEqual([...set.names], ["mysql"]);
  assert.deepEqual(set.invalid, ["0", "70000", "9-1", "Bad_Name"]);
  assert.ok(portSetHas(set, 3306));
  assert.ok(portSetHas(set, 4000));
  assert.ok(portSetHas(set, 4100));
  assert.ok(!portSetHas(set, 4101));
  assert.ok(portSetHas(set, 13306, ["mysql"]));
  assert.ok(!portSetHas(set, 13306, ["http"]));
});

test("an empty annotation lists nothing", () => {
  const set = parsePortSet("");
  assert.ok(!portSetHas(set, 80));
  assert.deepEqual(set.invalid, []);
});
