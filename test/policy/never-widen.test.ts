/**
 * Never-widen: the unit cases beside the property (test/fuzz/targets/policy.ts, run by
 * test/fuzz/fuzz.test.ts and `npm run bench -- fuzz --target policy`), on the same cluster.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { authorize } from "../../src/api/inbound-policy.js";
import { compileInboundServer } from "../../src/policy/compile.js";
import { desiredStatuses } from "../../src/policy/status.js";
import { baseline, policyTarget, resources } from "../fuzz/targets/policy.js";
import { applyAll, baseCluster, policy, ref, SETTINGS } from "./fixtures.js";

test("baseline grants something, so the property is not vacuous", () => {
  assert.ok(baseline.size > 10, `${baseline.size} allowed`);
  assert.ok(baseline.has("api-1:9090 conn0 req1"));
});

test("an invalid route does not turn its Server into one without routes", () => {
  const objects = resources();
  const pub = objects.find((o) => o.kind === "HTTPRoute")!;
  (pub.spec as { rules: unknown }).rules = [{ matches: [{ path: { type: "RegularExpression", value: "(" } }] }];
  objects.push(policy("shop", "web-all", ref.server("web"), [ref.network("inner")]));
  const cluster = baseCluster();
  applyAll(cluster, objects);
  const compiled = compileInboundServer(cluster, cluster.get("Pod", "shop", "web-1")!, 8080, SETTINGS);
  const d = authorize(compiled, { tls: false, clientIp: "10.2.0.5" }, { method: "GET", path: "/secret", headers: {} });
  assert.deepEqual([d.allowed, d.reason], [false, "no-route"]);
});

// Found by the policy fuzz target (shrunk: a route's parentRef name replaced with { toString: "" }):
// computing statuses looked the parent up by a name that is not a string and threw a TypeError.
test("a route whose parentRef name is not a string gets no status lookup, and the controller does not throw", async () => {
  const objects = resources();
  const route = objects.find((o) => o.kind === "HTTPRoute")!;
  (route.spec as { parentRefs: { name: unknown }[] }).parentRefs[0]!.name = { toString: "" };
  const cluster = baseCluster();
  applyAll(cluster, objects);
  assert.doesNotThrow(() => desiredStatuses(cluster, SETTINGS.trustDomain));
  const harness = await policyTarget.open();
  assert.equal(harness.check({ which: 529346772, where: 165959162, junk: { toString: "" } }), "refused");
});

