/** The client helper's stream handling, against a fake client (no sockets). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import type { DestinationUpdate } from "../../src/api/index.js";
import { destinationErrorCode, normalizeUpdate, watchDestination, type DestinationClient } from "../../src/api/destination-client.js";

class FakeStream extends EventEmitter {
  cancelled = false;
  cancel(): void {
    this.cancelled = true;
  }
}

function fakeClient() {
  const streams: { request: { path: string; contextToken: string }; stream: FakeStream }[] = [];
  const client = {
    Get(request: { path: string; contextToken: string }) {
      const stream = new FakeStream();
      streams.push({ request, stream });
      return stream;
    },
  } as unknown as DestinationClient;
  return { client, streams };
}

const add = (address: string) => ({
  update: "add",
  add: { endpoints: [{ address, port: 80, weight: 1, identity: "", protocolHint: "h2", labels: {} }] },
  remove: null,
  noEndpoints: null,
});

test("marks the first message of each stream and reconnects with the caller's delays", async () => {
  const { client, streams } = fakeClient();
  const seen: [string, boolean][] = [];
  const errors: string[] = [];
  const delays: number[] = [];
  const watch = watchDestination(client, "web.shop.svc.cluster.local:80", (u, first) => seen.push([u.update, first]), {
    contextToken: "shop/client-0",
    onError: (e) => errors.push(e.message),
    retry: (attempt) => {
      delays.push(attempt);
      return attempt < 5 ? 1 : undefined;
    },
  });
  assert.deepEqual(streams[0]!.request, { path: "web.shop.svc.cluster.local:80", contextToken: "shop/client-0" });
  streams[0]!.stream.emit("data", add("10.0.0.1"));
  streams[0]!.stream.emit("data", add("10.0.0.2"));
  streams[0]!.stream.emit("error", new Error("UNAVAILABLE"));
  streams[0]!.stream.emit("end"); // after an error: not a second failure
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(streams.length, 2);
  streams[1]!.stream.emit("data", add("10.0.0.3"));
  assert.deepEqual(seen, [
    ["add", true],
    ["add", false],
    ["add", true],
  ]);
  assert.deepEqual(errors, ["UNAVAILABLE"]);
  // A message resets the attempt count.
  streams[1]!.stream.emit("end");
  assert.deepEqual(delays, [0, 0]);
  watch.close();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(streams.length, 2, "close cancels the pending retry");
  assert.ok(streams[1]!.stream.cancelled);
});

test("without retry, a failed stream stays failed", () => {
  const { client, streams } = fakeClient();
  const errors: Error[] = [];
  watchDestination(client, "x:1", () => {}, { onError: (e) => errors.push(e) });
  streams[0]!.stream.emit("error", Object.assign(new Error("3 INVALID_ARGUMENT"), { details: "no port [DISCOVERY_BAD_PATH]" }));
  assert.equal(streams.length, 1);
  assert.equal(destinationErrorCode(errors[0]!), "DISCOVERY_BAD_PATH");
});

test("proto-loader objects become typed updates; unknown hints mean detect", () => {
  const u = normalizeUpdate({ update: "add", add: { endpoints: [{ address: "a", port: 1, protocolHint: "quic" as never }] } }) as Extract<
    DestinationUpdate,
    { update: "add" }
  >;
  assert.deepEqual(u.add.endpoints[0], { address: "a", port: 1, weight: 0, identity: "", protocolHint: "", labels: {} });
  assert.deepEqual(normalizeUpdate({ update: "noEndpoints", noEndpoints: {} }), { update: "noEndpoints", noEndpoints: { exists: false } });
  assert.equal(normalizeUpdate({}), undefined);
});
