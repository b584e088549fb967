/**
 * Child of bench/proxy.ts: the gRPC-like upstream every scenario ends at. A plaintext HTTP/2
 * server on 127.0.0.1 that answers each POST, once its body has arrived (as a unary gRPC server
 * would), with a 5-byte gRPC frame (an empty message) and `grpc-status: 0` trailers. It runs in
 * its own process so its CPU does not count against the proxies. Prints {"port":N} and runs
 * until killed or until its parent's stdin pipe closes; on SIGUSR1 it prints {"served":N}, the
 * calls it has answered, so the benchmark can tell them from answers a proxy made up.
 */
import http2 from "node:http2";
import type { AddressInfo } from "node:net";

const EMPTY_MESSAGE = Buffer.from([0, 0, 0, 0, 0]);

const server = http2.createServer({ settings: { maxConcurrentStreams: 1024 } });
let served = 0;
server.on("stream", (stream) => {
  served++;
  stream.on("error", () => {});
  stream.on("data", () => {});
  stream.once("end", () => {
    if (stream.closed) return;
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end(EMPTY_MESSAGE);
  });
});
server.on("sessionError", () => {});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});

process.on("SIGUSR1", () => process.stdout.write(`${JSON.stringify({ served })}\n`));

const stop = () => process.exit(0);
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
// The parent holds our stdin: when it dies without killing us, we go too.
process.stdin.on("end", stop);
process.stdin.resume();
