import { test } from "node:test";
import assert from "node:assert/strict";
import { PeakEwmaBalancer } from "../../src/proxy/balance/index.js";
import { ManualClock } from "../../src/core/clock.js";

/** Sequential calls: each pick is answered after the endpoint's latency, on the manual clock. */
function run(balancer: PeakEwmaBalancer<string>, clock: ManualClock, latency: (e: string) => number, calls: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < calls; i++) {
    const pick = balancer.pick()!;
    const ms = latency(pick.endpoint);
    clock.advance(ms);
    pick.done({ ok: true, latencyMs: ms });
    counts[pick.endpoint] = (counts[pick.endpoint] ?? 0) + 1;
  }
  return counts;
}

test("a long-slow endpoint that recovers gets traffic back within seconds, not thousands of picks", () => {
  const clock = new ManualClock();
  let seed = 7;
  const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
  const balancer = new PeakEwmaBalancer<string>({ key: (e) => e, clock, random });
  balancer.update(["a", "b", "c"]);
  let slow = true;
  const latency = (e: string) => (e === "c" && slow ? 50 : 2);
  // Long enough for the pick-count threshold to reach its cap (probes after 1024 lost picks).
  const whileSlow = run(balancer, clock, latency, 6000);
  assert.ok((whileSlow.c ?? 0) < 60, `slow endpoint share while slow: ${JSON.stringify(whileSlow)}`);
  slow = false;
  // 2.5 s of 2 ms calls = 1250 picks: the pick-count threshold alone (1024 by now) would give it
  // at most one probe late in the window; the time-based probe brings it back early.
  const after = run(balancer, clock, latency, 1250);
  assert.ok((after.c ?? 0) > 250, `recovered endpoint gets its share back: ${JSON.stringify(after)}`);
});
