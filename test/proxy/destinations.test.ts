import { test } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../../src/core/clock.js";
import { DestinationCache } from "../../src/proxy/destinations.js";
import type { DestinationUpdate, WeightedAddr } from "../../src/api/index.js";
import type { StreamHandlers } from "../../src/proxy/watch-stream.js";

function addr(address: string, identity = ""): WeightedAddr {
  return { address, port: 8080, weight: 1, identity, protocolHint: identity ? "h2" : "", labels: {} };
}

/** A fake discovery server: records open streams, lets the test push messages or break them. */
function fakeDiscovery() {
  const streams: { path: string; handlers: StreamHandlers<DestinationUpdate>; cancelled: boolean }[] = [];
  return {
    streams,
    open: () => streams.filter((s) => !s.cancelled),
    subscribe: (path: string) => (handlers: StreamHandlers<DestinationUpdate>) => {
      const stream = { path, handlers, cancelled: false };
      streams.push(stream);
      return () => {
        stream.cancelled = true;
      };
    },
  };
}

const add = (...endpoints: WeightedAddr[]): DestinationUpdate => ({ update: "add", add: { endpoints } });

test("one stream per target shared by all users, released after idle", () => {
  const clock = new ManualClock();
  const discovery = fakeDiscovery();
  const cache = new DestinationCache({ subscribe: discovery.subscribe, clock, idleMs: 1000, backoff: { initialMs: 100, maxMs: 1000 } });
  const a = cache.acquire("web.shop.svc.cluster.local:8080");
  const b = cache.acquire("web.shop.svc.cluster.local:8080");
  assert.equal(a, b);
  assert.equal(discovery.open().length, 1);
  cache.release(a);
  cache.release(b);
  clock.advance(999);
  assert.equal(discovery.open().length, 1, "kept during the idle period");
  const c = cache.acquire("web.shop.svc.cluster.local:8080");
  clock.advance(5000);
  assert.equal(discovery.open().length, 1, "re-acquired before idle expiry: still open");
  cache.release(c);
  clock.advance(1000);
  assert.equal(discovery.open().length, 0);
  assert.equal(cache.size(), 0);
});

test("first message replaces, later ones add and remove; no-endpoints and not-found are distinct", () => {
  const clock = new ManualClock();
  const discovery = fakeDiscovery();
  const cache = new DestinationCache({ subscribe: discovery.subscribe, clock, idleMs: 1000, backoff: { initialMs: 100, maxMs: 1000 } });
  const target = cache.acquire("10.0.0.1:80");
  assert.equal(target.state, "pending");
  const stream = discovery.open()[0]!;
  stream.handlers.onMessage(add(addr("10.1.0.1", "a.ns.serviceaccount.identity.tether.cluster.local"), addr("10.1.0.2")));
  assert.equal(target.state, "resolved");
  assert.deepEqual([...target.endpoints.keys()], ["10.1.0.1:8080", "10.1.0.2:8080"]);
  assert.equal(target.endpoints.get("10.1.0.1:8080")!.identity, "a.ns.serviceaccount.identity.tether.cluster.local");
  assert.equal(target.endpoints.get("10.1.0.2:8080")!.identity, undefined);
  stream.handlers.onMessage({ update: "remove", remove: { addresses: [{ address: "10.1.0.1", port: 8080 }] } });
  assert.deepEqual([...target.endpoints.keys()], ["10.1.0.2:8080"]);
  stream.handlers.onMessage({ update: "noEndpoints", noEndpoints: { exists: true } });
  assert.equal(target.state, "no-endpoints");
  assert.equal(target.endpoints.size, 0);
  stream.handlers.onMessage({ update: "noEndpoints", noEndpoints: { exists: false } });
  assert.equal(target.state, "not-found");
  cache.close();
});

test("a broken stream keeps the last set, retries with backoff, and the new stream's first message replaces it", () => {
  const clock = new ManualClock();
  const discovery = fakeDiscovery();
  const disconnects: string[] = [];
  const cache = new DestinationCache({
    subscribe: discovery.subscribe,
    clock,
    idleMs: 1000,
    backoff: { initialMs: 100, maxMs: 400, random: () => 1 },
    onDisconnect: (path) => disconnects.push(path),
  });
  const target = cache.acquire("svc:80");
  discovery.open()[0]!.handlers.onMessage(add(addr("10.1.0.1"), addr("10.1.0.2")));
  discovery.open()[0]!.handlers.onError(new Error("connection refused"));
  assert.equal(target.connected, false);
  assert.equal(target.endpoints.size, 2, "last known set still served");
  assert.deepEqual(disconnects, ["svc:80"]);
  // Retries fail repeatedly: delays grow 100, 200, 400, 400 (capped).
  const opened: number[] = [];
  for (let i = 0; i < 4; i++) {
    const before = discovery.streams.length;
    let waited = 0;
    while (discovery.streams.length === before) {
      clock.advance(10);
      waited += 10;
    }
    opened.push(waited);
    discovery.streams.at(-1)!.handlers.onError(new Error("still down"));
  }
  assert.deepEqual(opened, [100, 200, 400, 400]);
  assert.equal(target.endpoints.size, 2);
  clock.advance(400);
  assert.equal(discovery.streams.length, 6, "one initial stream and five retries");
  discovery.streams.at(-1)!.handlers.onMessage(add(addr("10.1.0.3")));
  assert.deepEqual([...target.endpoints.keys()], ["10.1.0.3:8080"]);
  assert.equal(target.connected, true);
  // Messages from a stream already abandoned are ignored.
  discovery.streams[0]!.handlers.onMessage(add(addr("10.9.9.9")));
  assert.equal(target.endpoints.has("10.9.9.9:8080"), false);
  cache.close();
});

test("whenResolved waits for the first answer or the timeout", async () => {
  const clock = new ManualClock();
  const discovery = fakeDiscovery();
  const cache = new DestinationCache({ subscribe: discovery.subscribe, clock, idleMs: 1000, backoff: { initialMs: 100, maxMs: 1000 } });
  const target = cache.acquire("svc:80");
  const waiting = target.whenResolved(clock, 500);
  discovery.open()[0]!.handlers.onMessage({ update: "noEndpoints", noEndpoints: { exists: false } });
  assert.equal(await waiting, "not-found");
  const other = cache.acquire("other:80");
  const timedOut = other.whenResolved(clock, 500);
  clock.advance(500);
  assert.equal(await timedOut, "pending");
  cache.close();
});
