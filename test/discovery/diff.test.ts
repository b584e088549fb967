import { test } from "node:test";
import assert from "node:assert/strict";
import type { WeightedAddr } from "../../src/api/index.js";
import { DestinationState } from "../../src/api/destination-client.js";
import { diffSnapshots, fullUpdate } from "../../src/discovery/diff.js";
import type { Snapshot } from "../../src/discovery/endpoints.js";

function ep(address: string, identity = ""): WeightedAddr {
  return { address, port: 80, weight: 10000, identity, protocolHint: identity ? "h2" : "", labels: { pod: address } };
}

function snap(...eps: WeightedAddr[]): Snapshot {
  return { exists: true, endpoints: new Map(eps.map((e) => [`${e.address}:${e.port}`, e])) };
}

const missing: Snapshot = { exists: false, endpoints: new Map() };
const empty: Snapshot = { exists: true, endpoints: new Map() };

test("first message is the full set, or noEndpoints with exists", () => {
  assert.deepEqual(fullUpdate(snap(ep("b"), ep("a"))), [{ update: "add", add: { endpoints: [ep("a"), ep("b")] } }]);
  assert.deepEqual(diffSnapshots(undefined, missing), [{ update: "noEndpoints", noEndpoints: { exists: false } }]);
  assert.deepEqual(diffSnapshots(undefined, empty), [{ update: "noEndpoints", noEndpoints: { exists: true } }]);
});

test("later messages carry only the change", () => {
  assert.deepEqual(diffSnapshots(snap(ep("a")), snap(ep("a"))), []);
  assert.deepEqual(diffSnapshots(snap(ep("a")), snap(ep("a"), ep("b"))), [{ update: "add", add: { endpoints: [ep("b")] } }]);
  assert.deepEqual(diffSnapshots(snap(ep("a"), ep("b")), snap(ep("b"))), [{ update: "remove", remove: { addresses: [{ address: "a", port: 80 }] } }]);
  assert.deepEqual(diffSnapshots(snap(ep("a"), ep("b")), snap(ep("b", "id"), ep("c"))), [
    { update: "remove", remove: { addresses: [{ address: "a", port: 80 }] } },
    { update: "add", add: { endpoints: [ep("b", "id"), ep("c")] } },
  ]);
});

test("emptying, deleting and re-creating", () => {
  assert.deepEqual(diffSnapshots(snap(ep("a")), empty), [{ update: "noEndpoints", noEndpoints: { exists: true } }]);
  assert.deepEqual(diffSnapshots(empty, missing), [{ update: "noEndpoints", noEndpoints: { exists: false } }]);
  assert.deepEqual(diffSnapshots(missing, missing), []);
  assert.deepEqual(diffSnapshots(missing, snap(ep("a"))), [{ update: "add", add: { endpoints: [ep("a")] } }]);
});

test("a client folding the diffs always ends at the server's set", () => {
  const states = [missing, snap(ep("a")), snap(ep("a"), ep("b")), snap(ep("b", "id")), empty, snap(ep("c"), ep("d")), missing, snap(ep("e"))];
  const client = new DestinationState();
  let prev: Snapshot | undefined;
  for (const next of states) {
    diffSnapshots(prev, next).forEach((u, i) => client.apply(u, prev === undefined && i === 0));
    assert.deepEqual(client.list(), [...next.endpoints.values()].sort((x, y) => x.address.localeCompare(y.address)));
    prev = next;
  }
  assert.equal(client.exists, true);
});
