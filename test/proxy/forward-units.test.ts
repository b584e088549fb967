import { test } from "node:test";
import assert from "node:assert/strict";
import { fieldsToObject, fieldValue, forwardableFields, withoutField } from "../../src/proxy/h2/fields.js";
import { encodeGrpcMessage, grpcStatusOf, isGrpc, parseGrpcTimeout, trailersOnly } from "../../src/proxy/forward/grpc.js";
import { httpStatusFor, errorReason, UpstreamError } from "../../src/proxy/forward/errors.js";

test("hop-by-hop headers and the ones Connection names are dropped; te only as 'trailers'", () => {
  const cases: [string[], string[]][] = [
    [
      [":path", "/a", "x-a", "1", "connection", "keep-alive, X-Secret", "x-secret", "s", "keep-alive", "5"],
      [":path", "/a", "x-a", "1"],
    ],
    [["te", "trailers", "transfer-encoding", "chunked", "upgrade", "h2c", "proxy-connection", "x"], ["te", "trailers"]],
    [["te", "gzip, trailers"], []],
    [["te", " Trailers "], ["te", " Trailers "]],
    [["content-type", "application/grpc", "grpc-timeout", "1S"], ["content-type", "application/grpc", "grpc-timeout", "1S"]],
    // Repeated fields keep their order and multiplicity.
    [["x-b", "1", "keep-alive", "5", "x-b", "2"], ["x-b", "1", "x-b", "2"]],
  ];
  for (const [input, expected] of cases) assert.deepEqual(forwardableFields(input), expected, JSON.stringify(input));
  // The extra name to drop (e.g. a client-supplied identity header the inbound proxy sets itself).
  assert.deepEqual(forwardableFields(["x-a", "1", "tether-client-id", "forged"], "tether-client-id"), ["x-a", "1"]);
  // Nothing to remove: the same array comes back (no copy on the hot path), and the input is never changed.
  const clean = [":method", "GET", ":path", "/", "x-a", "1"];
  assert.equal(forwardableFields(clean), clean);
  const dirty = ["x-a", "1", "upgrade", "h2c"];
  forwardableFields(dirty);
  assert.deepEqual(dirty, ["x-a", "1", "upgrade", "h2c"]);
});

test("field list helpers: lookup, removal, object form", () => {
  const fields = [":status", "200", "set-cookie", "a=1", "x-a", "1", "set-cookie", "b=2"];
  assert.equal(fieldValue(fields, "x-a"), "1");
  assert.equal(fieldValue(fields, "set-cookie"), "a=1", "the first of repeated fields");
  assert.equal(fieldValue(fields, "missing"), undefined);
  // A name never matches a value in the same position.
  assert.equal(fieldValue(["x-a", "x-b", "x-b", "2"], "x-b"), "2");
  assert.deepEqual(withoutField(fields, "set-cookie"), [":status", "200", "x-a", "1"]);
  assert.deepEqual(fieldsToObject(fields), { ":status": "200", "set-cookie": ["a=1", "b=2"], "x-a": "1" });
  assert.deepEqual(fieldsToObject(["x", "1", "x", "2", "x", "3"]), { x: ["1", "2", "3"] });
});

test("grpc-timeout parsing", () => {
  const cases: [string | undefined, number | undefined][] = [
    ["1S", 1000],
    ["250m", 250],
    ["2M", 120_000],
    ["1H", 3_600_000],
    ["500u", 0.5],
    ["1000000n", 1],
    ["99999999m", 99_999_999],
    ["123456789m", undefined],
    ["1s", undefined],
    ["-1S", undefined],
    ["S", undefined],
    [undefined, undefined],
  ];
  for (const [value, ms] of cases) assert.equal(parseGrpcTimeout(value), ms, String(value));
});

test("gRPC helpers: detection, trailers-only answers, percent-encoded messages, status parsing", () => {
  assert.equal(isGrpc([":method", "POST", "content-type", "application/grpc+proto"]), true);
  assert.equal(isGrpc(["content-type", "application/json"]), false);
  assert.equal(isGrpc([":method", "GET"]), false);
  assert.equal(encodeGrpcMessage("no endpoints: 100% gone\n é"), "no endpoints: 100%25 gone%0A %C3%A9");
  assert.deepEqual(trailersOnly(14, "down", ["tether-error", "X"]), [
    ":status", "200",
    "content-type", "application/grpc",
    "grpc-status", "14",
    "grpc-message", "down",
    "tether-error", "X",
  ]);
  assert.equal(grpcStatusOf(["grpc-status", "4"]), 4);
  assert.equal(grpcStatusOf(["grpc-status", "x"]), undefined);
});

test("forward failures map to HTTP statuses and stable reasons", () => {
  assert.equal(httpStatusFor(new UpstreamError("UPSTREAM_NO_ENDPOINTS", "none", false)), 503);
  assert.equal(httpStatusFor(new UpstreamError("UPSTREAM_TIMEOUT", "slow", false)), 504);
  assert.equal(httpStatusFor(new UpstreamError("UPSTREAM_CONNECT_FAILED", "refused", true)), 502);
  assert.equal(httpStatusFor(new Error("other")), 502);
  assert.equal(errorReason(new UpstreamError("UPSTREAM_RESET", "x", false)), "UPSTREAM_RESET");
  assert.equal(errorReason(new Error("x")), "UPSTREAM_FAILED");
});
