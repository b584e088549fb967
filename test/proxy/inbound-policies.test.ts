import { test } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../../src/core/clock.js";
import { InboundPolicyCache } from "../../src/proxy/inbound-policies.js";
import type { InboundServer } from "../../src/api/index.js";
import type { StreamHandlers } from "../../src/proxy/watch-stream.js";

const policy = (name: string): InboundServer => ({
  name,
  protocol: "grpc",
  authorizations: [],
  routes: [],
  defaultPolicy: "all-authenticated",
  audit: false,
});

function setup() {
  const clock = new ManualClock();
  const streams: { port: number; handlers: StreamHandlers<InboundServer> }[] = [];
  const cache = new InboundPolicyCache({
    subscribe: (port) => (handlers) => {
      streams.push({ port, handlers });
      return () => {};
    },
    clock,
    backoff: { initialMs: 100, maxMs: 1000, random: () => 1 },
  });
  return { clock, streams, cache };
}

test("a port's policy is watched once and updated live", async () => {
  const { streams, cache } = setup();
  cache.watch(8080);
  cache.watch(8080);
  assert.equal(streams.length, 1);
  assert.equal(cache.allReceived(), false);
  streams[0]!.handlers.onMessage(policy("server:shop/web"));
  assert.equal((await cache.get(8080, 0))!.name, "server:shop/web");
  streams[0]!.handlers.onMessage(policy("default:deny"));
  assert.equal(cache.peek(8080)!.name, "default:deny");
  assert.equal(cache.allReceived(), true);
  cache.close();
});

test("a port with no policy yet waits, then is denied (undefined) when none arrives", async () => {
  const { clock, streams, cache } = setup();
  const waiting = cache.get(9090, 1000);
  clock.advance(1000);
  assert.equal(await waiting, undefined);
  const second = cache.get(9090, 1000);
  streams[0]!.handlers.onMessage(policy("default:all-authenticated"));
  assert.equal((await second)!.name, "default:all-authenticated");
  cache.close();
});

test("the last policy stays in force while the control plane is away", async () => {
  const { clock, streams, cache } = setup();
  cache.watch(8080);
  streams[0]!.handlers.onMessage(policy("server:shop/web"));
  streams[0]!.handlers.onError(new Error("unavailable"));
  assert.equal(cache.peek(8080)!.name, "server:shop/web");
  clock.advance(100);
  assert.equal(streams.length, 2, "re-subscribed after backoff");
  streams[1]!.handlers.onMessage(policy("server:shop/web-v2"));
  assert.equal(cache.peek(8080)!.name, "server:shop/web-v2");
  cache.close();
});
