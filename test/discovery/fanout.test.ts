/**
 * 5000 concurrent subscribers on one Service over in-process gRPC on loopback: one shared watch,
 * and one update reaches every one of them.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { MemoryCluster } from "../../src/cluster/memory.js";
import { createDestinationClient, DestinationState, watchDestination } from "../../src/api/destination-client.js";
import { startDestinationServer } from "../../src/discovery/server.js";
import { makePod, makeService, quietLogger, runSliceController, waitFor } from "./support.js";

const SUBSCRIBERS = 5000;
/** Proxies each hold their own connection; 25 connections x 200 streams keeps the test light. */
const CONNECTIONS = 25;

test(`${SUBSCRIBERS} subscribers share one watch and all receive one update`, { timeout: 120_000 }, async () => {
  const cluster = new MemoryCluster();
  const stopController = runSliceController(cluster, {
    put: (s) => cluster.apply("EndpointSlice", s),
    delete: (ns, name) => cluster.remove("EndpointSlice", ns, name),
  });
  cluster.apply("Service", makeService({ name: "web" }));
  for (let i = 1; i <= 3; i++) cluster.apply("Pod", makePod({ name: `web-${i}`, ip: `10.0.0.${i}`, meshed: true }));
  const server = await startDestinationServer({ cluster, listen: "127.0.0.1:0", logger: quietLogger });
  const clients = Array.from({ length: CONNECTIONS }, () =>
    createDestinationClient(server.address, undefined, { "grpc.use_local_subchannel_pool": 1 }),
  );
  const states: DestinationState[] = [];
  let firsts = 0;
  let seenNew = 0;
  const check = { poke: () => {} };
  const watches = Array.from({ length: SUBSCRIBERS }, (_, i) => {
    const state = new DestinationState();
    states.push(state);
    return watchDestination(clients[i % CONNECTIONS]!, "web.shop.svc.cluster.local:80", (update, first) => {
      const had = state.endpoints.has("10.0.0.4:8080");
      state.apply(update, first);
      if (first) firsts++;
      if (!had && state.endpoints.has("10.0.0.4:8080")) seenNew++;
      check.poke();
    });
  });
  try {
    const connected = waitFor(() => firsts === SUBSCRIBERS, 60_000, `${SUBSCRIBERS} first messages (got ${firsts})`);
    check.poke = connected.poke;
    await connected.promise;
    assert.equal(server.watcher.watchCount, 1, "one shared watch");
    assert.ok(states.every((s) => s.endpoints.size === 3), "every first message holds the full set");

    const sentBefore = (await server.metrics.messagesSent.get()).values[0]?.value ?? 0;
    const reached = waitFor(() => seenNew === SUBSCRIBERS, 30_000, `the update at all ${SUBSCRIBERS} subscribers (got ${seenNew})`);
    check.poke = reached.poke;
    cluster.apply("Pod", makePod({ name: "web-4", ip: "10.0.0.4", meshed: true }));
    await reached.promise;
    assert.ok(states.every((s) => s.endpoints.size === 4));
    const updates = (await server.metrics.updates.get()).values.reduce((n, v) => n + v.value, 0);
    assert.equal(updates, 1, "the change was computed once");
    const sent = ((await server.metrics.messagesSent.get()).values[0]?.value ?? 0) - sentBefore;
    assert.equal(sent, SUBSCRIBERS, "and written once per subscriber");
  } finally {
    for (const w of watches) w.close();
    for (const c of clients) c.close();
    await server.close();
    stopController();
  }
});
