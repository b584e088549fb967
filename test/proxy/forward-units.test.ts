import { test } from "node:test";
import assert from "node:assert/strict";
import { forwardableHeaders } from "../../src/proxy/forward/headers.js";
import { encodeGrpcMessage, grpcStatusOf, isGrpc, parseGrpcTimeout, trailersOnly } from "../../src/proxy/forward/grpc.js";
import { httpStatusFor, errorReason, UpstreamError } from "../../src/proxy/forward/errors.js";

test("hop-by-hop headers and the ones Connection names are dropped; te only as 'trailers'", () => {
  const cases: [Record<string, string>, Record<string, string>][] = [
    [{ ":path": "/a", "x-a": "1", connection: "keep-alive, x-secret", "x-secret": "s", "keep-alive": "5" }, { ":path": "/a", "x-a": "1" }],
    [{ te: "trailers", "transfer-encoding": "chunked", upgrade: "h2c", "proxy-connection": "x" }, { te: "trailers" }],
    [{ te: "gzip, trailers" }, {}],
    [{ "content-type": "application/grpc", "grpc-timeout": "1S" }, { "content-type": "application/grpc", "grpc-timeout": "1S" }],
  ];
  for (const [input, expected] of cases) assert.deepEqual(forwardableHeaders(input), expected);
  assert.deepEqual(forwardableHeaders({ "x-a": "1", "tether-client-id": "forged" }, ["Tether-Client-Id"]), { "x-a": "1" });
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
  assert.equal(isGrpc({ "content-type": "application/grpc+proto" }), true);
  assert.equal(isGrpc({ "content-type": "application/json" }), false);
  assert.equal(encodeGrpcMessage("no endpoints: 100% gone\n é"), "no endpoints: 100%25 gone%0A %C3%A9");
  assert.deepEqual(trailersOnly(14, "down", { "tether-error": "X" }), {
    ":status": 200,
    "content-type": "application/grpc",
    "grpc-status": "14",
    "grpc-message": "down",
    "tether-error": "X",
  });
  assert.equal(grpcStatusOf({ "grpc-status": "4" }), 4);
  assert.equal(grpcStatusOf({ "grpc-status": "x" }), undefined);
});

test("forward failures map to HTTP statuses and stable reasons", () => {
  assert.equal(httpStatusFor(new UpstreamError("UPSTREAM_NO_ENDPOINTS", "none", false)), 503);
  assert.equal(httpStatusFor(new UpstreamError("UPSTREAM_TIMEOUT", "slow", false)), 504);
  assert.equal(httpStatusFor(new UpstreamError("UPSTREAM_CONNECT_FAILED", "refused", true)), 502);
  assert.equal(httpStatusFor(new Error("other")), 502);
  assert.equal(errorReason(new UpstreamError("UPSTREAM_RESET", "x", false)), "UPSTREAM_RESET");
  assert.equal(errorReason(new Error("x")), "UPSTREAM_FAILED");
});
