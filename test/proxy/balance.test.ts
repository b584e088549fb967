import { test } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../../src/core/clock.js";
import { TetherError } from "../../src/core/errors.js";
import { createBalancer, balancerNames, PeakEwmaBalancer, RoundRobinBalancer, type Balancer, type BalancerOptions } from "../../src/proxy/balance/index.js";

interface Ep {
  addr: string;
}

/** Deterministic uniform [0,1) (mulberry32), so every run of these tests is the same run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function eps(n: number, from = 0): Ep[] {
  return Array.from({ length: n }, (_, i) => ({ addr: `10.0.${(i + from) >> 8}.${(i + from) & 255}:8080` }));
}

function make(name: string, clock: ManualClock, extra: Partial<BalancerOptions<Ep>> = {}): Balancer<Ep> {
  return createBalancer<Ep>(name, { key: (e) => e.addr, clock, random: seeded(42), ...extra });
}

/** Sequential calls: each waits for the previous; the clock moves by each call's latency. */
function runSequential(b: Balancer<Ep>, clock: ManualClock, calls: number, latency: (e: Ep) => number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < calls; i++) {
    const p = b.pick();
    assert.ok(p, "an endpoint is available");
    const ms = latency(p.endpoint);
    clock.advance(ms);
    p.done({ ok: true, latencyMs: ms });
    counts.set(p.endpoint.addr, (counts.get(p.endpoint.addr) ?? 0) + 1);
  }
  return counts;
}

test("registry knows both balancers and refuses unknown names with a code", () => {
  assert.deepEqual(balancerNames(), ["peak-ewma", "round-robin"]);
  assert.throws(
    () => createBalancer("random", { key: String }),
    (e: unknown) => e instanceof TetherError && e.code === "BALANCER_UNKNOWN" && /peak-ewma/.test(e.message),
  );
});

test("3000 sequential calls over 3 equal replicas split 1000 +/- 10, despite latency jitter", () => {
  for (const name of ["peak-ewma", "round-robin"]) {
    const clock = new ManualClock();
    const b = make(name, clock);
    const set = eps(3);
    b.update(set);
    const jitter = seeded(7);
    // 0.3..0.7 ms with 1% of calls hit by a 25-75 ms pause (GC, scheduling): what a loopback run
    // through the proxy on a 2-core machine measured.
    const counts = runSequential(b, clock, 3000, () => (jitter() < 0.01 ? 25 + jitter() * 50 : 0.3 + jitter() * 0.4));
    assert.equal(counts.size, 3, name);
    for (const [addr, n] of counts) assert.ok(Math.abs(n - 1000) <= 10, `${name}: ${addr} got ${n}`);
  }
});

test("peak-EWMA moves traffic off a slow endpoint and back after it recovers; round-robin does not", () => {
  const set = eps(3);
  const slow = set[2]!.addr;
  let slowMs = 50;
  const latency = (e: Ep) => (e.addr === slow ? slowMs : 1);

  const clock = new ManualClock();
  const b = make("peak-ewma", clock);
  b.update(set);
  const during = runSequential(b, clock, 3000, latency);
  const slowShare = (during.get(slow) ?? 0) / 3000;
  assert.ok(slowShare < 0.01, `slow endpoint got ${slowShare * 100}% of calls`);
  assert.ok((during.get(slow) ?? 0) >= 1, "it was tried");

  slowMs = 1;
  runSequential(b, clock, 6000, latency); // long enough for the old estimate to decay and be re-probed
  const after = runSequential(b, clock, 3000, latency);
  assert.ok((after.get(slow) ?? 0) >= 900, `recovered endpoint got ${after.get(slow)} of 3000`);

  slowMs = 50;
  const rrClock = new ManualClock();
  const rr = make("round-robin", rrClock);
  rr.update(set);
  const rrCounts = runSequential(rr, rrClock, 3000, latency);
  assert.equal(rrCounts.get(slow), 1000);
});

test("a persistently slow endpoint is probed with doubling gaps; an isolated spike costs only a pick or two", () => {
  const clock = new ManualClock();
  const b = make("peak-ewma", clock);
  const set = eps(3);
  b.update(set);
  const slow = set[0]!.addr;
  const picks: number[] = [];
  let n = 0;
  runSequential(b, clock, 4000, (e) => {
    n++;
    if (e.addr !== slow) return 0.5;
    picks.push(n);
    return 50;
  });
  const gaps = picks.slice(1).map((p, i) => p - picks[i]!);
  assert.ok(picks.length <= 16, `slow endpoint picked ${picks.length} times in 4000`);
  for (let i = 2; i < gaps.length; i++) assert.ok(gaps[i]! >= gaps[i - 1]!, `gaps grow: ${gaps.join(",")}`);

  // An endpoint that answers one call slowly, then normally, keeps its share.
  const clock2 = new ManualClock();
  const b2 = make("peak-ewma", clock2);
  b2.update(set);
  let calls = 0;
  let spiked = false;
  const counts = runSequential(b2, clock2, 3000, (e) => {
    if (++calls > 1500 && !spiked && e.addr === set[1]!.addr) {
      spiked = true;
      return 80;
    }
    return 0.5;
  });
  assert.ok(spiked);
  for (const [addr, c] of counts) assert.ok(Math.abs(c - 1000) <= 3, `${addr}: ${c}`);
  assert.ok(b2.stats().every((s) => s.estimateMs! < 1), "the spike is forgotten");
});

test("a single slow response raises the estimate at once; faster ones lower it with the half-life", () => {
  const clock = new ManualClock();
  const b = make("peak-ewma", clock, { peakEwma: { halfLifeMs: 1000 } });
  b.update(eps(1));
  const estimate = () => b.stats()[0]!.estimateMs!;
  assert.equal(estimate(), 30, "a new endpoint starts from the default RTT");
  b.pick()!.done({ ok: true, latencyMs: 2 });
  assert.equal(estimate(), 2, "the first answer replaces the default");
  b.pick()!.done({ ok: true, latencyMs: 80 });
  assert.equal(estimate(), 80, "peak: believed at once");
  clock.advance(1000);
  b.pick()!.done({ ok: true, latencyMs: 2 });
  assert.ok(Math.abs(estimate() - 41) < 1e-9, `one half-life later halfway to the sample: ${estimate()}`);
  clock.advance(1000);
  assert.ok(Math.abs(estimate() - 20.5) < 1e-9, "idle: decays toward 0 so the endpoint is re-probed");
  b.pick()!.done({ ok: false, latencyMs: 1 });
  assert.equal(estimate(), 30, "a fast failure counts as the failure penalty");
});

test("under concurrency, in-flight requests raise the cost: a stalled endpoint stops receiving", () => {
  const clock = new ManualClock();
  const b = make("peak-ewma", clock);
  const set = eps(4);
  b.update(set);
  const stalled = set[0]!.addr;
  const counts = new Map<string, number>();
  const open: { p: NonNullable<ReturnType<Balancer<Ep>["pick"]>>; endAt: number }[] = [];
  // 8 concurrent callers; the stalled endpoint answers after 500 ms, the others after 2 ms.
  for (let t = 0; t < 2000; t++) {
    while (open.length < 8) {
      const p = b.pick()!;
      counts.set(p.endpoint.addr, (counts.get(p.endpoint.addr) ?? 0) + 1);
      open.push({ p, endAt: clock.now() + (p.endpoint.addr === stalled ? 500 : 2) });
    }
    clock.advance(1);
    for (let i = open.length - 1; i >= 0; i--) {
      const o = open[i]!;
      if (o.endAt > clock.now()) continue;
      open.splice(i, 1);
      o.p.done({ ok: true, latencyMs: o.p.endpoint.addr === stalled ? 500 : 2 });
    }
  }
  const total = [...counts.values()].reduce((a, n) => a + n, 0);
  assert.ok((counts.get(stalled) ?? 0) / total < 0.02, `stalled got ${counts.get(stalled)} of ${total}`);
});

test("a new endpoint gets traffic right away", () => {
  for (const name of ["peak-ewma", "round-robin"]) {
    const clock = new ManualClock();
    const b = make(name, clock);
    const set = eps(3);
    b.update(set);
    runSequential(b, clock, 900, () => 1);
    const added = eps(1, 3)[0]!;
    b.update([...set, added]);
    const first = b.pick()!;
    assert.equal(first.endpoint.addr, added.addr, `${name}: the new endpoint is probed first`);
    first.done({ ok: true, latencyMs: 1 });
    const counts = runSequential(b, clock, 400, () => 1);
    assert.ok((counts.get(added.addr) ?? 0) >= 95, `${name}: new endpoint got ${counts.get(added.addr)} of 400`);
  }
});

test("an endpoint that fails to connect is avoided, re-probed after its backoff, and backed off longer on repeat", () => {
  const clock = new ManualClock();
  // random 0.999...: backoff waits its full ceiling, so the schedule is exact.
  const b = make("peak-ewma", clock, { random: () => 0.9999999, backoff: { initialMs: 100, maxMs: 1000 } });
  const set = eps(3);
  b.update(set);
  const bad = set[0]!.addr;
  const failedFirst = () => {
    const p = b.pick()!;
    if (p.endpoint.addr === bad) {
      p.failed();
      return true;
    }
    clock.advance(1);
    p.done({ ok: true, latencyMs: 1 });
    return false;
  };
  while (!failedFirst());
  assert.deepEqual(b.size(), { total: 3, available: 2 });
  assert.equal(b.retryInMs(), 100);
  const during = runSequential(b, clock, 99, () => 1 / 1000); // stays inside the backoff window
  assert.equal(during.get(bad), undefined, "backed-off endpoint is not picked");
  clock.advance(100);
  assert.equal(b.size().available, 3);
  assert.equal(b.stats().find((s) => s.key === bad)!.condition, "probing");
  // Re-probed next, fails again: the next backoff is twice as long.
  while (!failedFirst());
  assert.equal(b.retryInMs(), 200);
  clock.advance(200);
  const probe = b.pick()!;
  assert.equal(probe.endpoint.addr, bad);
  probe.done({ ok: true, latencyMs: 1 });
  assert.equal(b.stats().find((s) => s.key === bad)!.condition, "ready");
  const counts = runSequential(b, clock, 300, () => 1);
  assert.ok((counts.get(bad) ?? 0) >= 90, "recovered endpoint is back in rotation");
});

test("with every endpoint backed off, pick returns undefined and says when to retry", () => {
  const clock = new ManualClock();
  const b = make("round-robin", clock, { random: () => 0.9999999, backoff: { initialMs: 50, maxMs: 50 } });
  b.update(eps(2));
  b.pick()!.failed();
  b.pick()!.failed();
  assert.equal(b.pick(), undefined);
  assert.equal(b.retryInMs(), 50);
  clock.advance(50);
  assert.ok(b.pick());
  const empty = make("peak-ewma", clock);
  assert.equal(empty.pick(), undefined);
  assert.equal(empty.retryInMs(), undefined);
});

test("updates keep known endpoints' history, drop removed ones, and late outcomes are harmless", () => {
  const clock = new ManualClock();
  const b = make("peak-ewma", clock);
  const set = eps(3);
  b.update(set);
  runSequential(b, clock, 30, (e) => (e.addr === set[1]!.addr ? 7 : 1));
  const before = b.stats().find((s) => s.key === set[1]!.addr)!;
  const inflight = b.pick()!;
  const gone = inflight.endpoint.addr;
  b.update(set.filter((e) => e.addr !== gone).concat({ ...set[1]! }));
  assert.equal(b.size().total, 2);
  inflight.done({ ok: true, latencyMs: 1 });
  inflight.failed(); // extra calls are ignored
  const cancelled = b.pick()!;
  assert.equal(b.stats().find((s) => s.key === cancelled.endpoint.addr)!.inFlight, 1);
  const estimate = b.stats().find((s) => s.key === cancelled.endpoint.addr)!.estimateMs;
  cancelled.cancel();
  const afterCancel = b.stats().find((s) => s.key === cancelled.endpoint.addr)!;
  assert.deepEqual([afterCancel.inFlight, afterCancel.estimateMs], [0, estimate], "cancel releases without a sample");
  if (gone !== set[1]!.addr) {
    const after = b.stats().find((s) => s.key === set[1]!.addr)!;
    assert.equal(after.picks, before.picks, "history survives an update");
  }
  const counts = runSequential(b, clock, 100, () => 1);
  assert.equal(counts.get(gone), undefined, "a removed endpoint is never picked");
  assert.ok(b.stats().every((s) => s.inFlight === 0));
});

/**
 * Counts the endpoint states a balancer looks at while choosing: the least-recent one it asks for,
 * and every element of the ready array it reads. Built by subclassing, so the product carries no
 * counter of its own.
 */
function counting(Base: typeof PeakEwmaBalancer | typeof RoundRobinBalancer, clock: ManualClock): Balancer<Ep> & { examined: number } {
  class Counting extends (Base as typeof PeakEwmaBalancer)<Ep> {
    examined = 0;
    private choosing = false;
    constructor() {
      super({ key: (e: Ep) => e.addr, clock, random: seeded(42) });
      const ready = this.ready;
      const reads = (index: string | symbol) => this.choosing && typeof index === "string" && /^\d+$/.test(index);
      (this as unknown as { ready: unknown }).ready = new Proxy(ready, {
        get: (target, index, receiver) => {
          if (reads(index)) this.examined++;
          return Reflect.get(target, index, receiver);
        },
      });
    }
    protected override leastRecent() {
      if (this.choosing) this.examined++;
      return super.leastRecent();
    }
    protected override choose(now: number) {
      this.choosing = true;
      try {
        return super.choose(now);
      } finally {
        this.choosing = false;
      }
    }
  }
  return new Counting();
}

test("one pick examines the same number of endpoints for 10 and for 10000 endpoints (O(1))", () => {
  const perPick = (Base: typeof PeakEwmaBalancer | typeof RoundRobinBalancer, n: number) => {
    const clock = new ManualClock();
    const b = counting(Base, clock);
    b.update(eps(n));
    // Settle every endpoint's probe first, and back off a tenth of them, so the measured picks
    // are ordinary ones over a large ready set and a non-empty backoff heap.
    for (let i = 0; i < n; i++) {
      const p = b.pick()!;
      if (i % 10 === 0) p.failed();
      else p.done({ ok: true, latencyMs: 1 + (i % 3) });
    }
    const start = b.examined;
    runSequential(b, clock, 1000, () => 0.001);
    return (b.examined - start) / 1000;
  };
  for (const Base of [PeakEwmaBalancer, RoundRobinBalancer]) {
    const small = perPick(Base, 10);
    const large = perPick(Base, 10_000);
    assert.equal(large, small, `${Base.name}: ${small} vs ${large} endpoints examined per pick`);
    assert.ok(large > 0 && large <= 2, `${Base.name}: ${large} per pick`);
  }
});
