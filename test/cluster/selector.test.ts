import { test } from "node:test";
import assert from "node:assert/strict";
import type { LabelSelector } from "kubernetes-types/meta/v1.js";
import { selectorMatches, selectorToQuery } from "../../src/cluster/selector.js";

const labels = { app: "web", tier: "front" };
const cases: [string, LabelSelector, boolean][] = [
  ["empty selector matches everything", {}, true],
  ["matchLabels equal", { matchLabels: { app: "web" } }, true],
  ["matchLabels differ", { matchLabels: { app: "db" } }, false],
  ["In", { matchExpressions: [{ key: "tier", operator: "In", values: ["front", "back"] }] }, true],
  ["In, label absent", { matchExpressions: [{ key: "zone", operator: "In", values: ["a"] }] }, false],
  ["NotIn", { matchExpressions: [{ key: "tier", operator: "NotIn", values: ["front"] }] }, false],
  ["NotIn, label absent", { matchExpressions: [{ key: "zone", operator: "NotIn", values: ["a"] }] }, true],
  ["Exists", { matchExpressions: [{ key: "app", operator: "Exists" }] }, true],
  ["DoesNotExist", { matchExpressions: [{ key: "app", operator: "DoesNotExist" }] }, false],
  ["unknown operator matches nothing", { matchExpressions: [{ key: "app", operator: "Gt", values: ["1"] }] }, false],
];

for (const [name, selector, expected] of cases) {
  test(`selector: ${name}`, () => assert.equal(selectorMatches(selector, labels), expected));
}

test("selector as an API query string", () => {
  assert.equal(
    selectorToQuery({ matchLabels: { app: "web" }, matchExpressions: [{ key: "tier", operator: "In", values: ["a", "b"] }, { key: "x", operator: "DoesNotExist" }] }),
    "app=web,tier in (a,b),!x",
  );
  assert.equal(selectorMatches({ matchLabels: { app: "web" } }, undefined), false);
});
