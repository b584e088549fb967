import { test, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { once } from "node:events";
import { forwardTcp, type TcpForwardOptions, type TcpForwardResult, type TcpUpstream } from "../../src/proxy/forward/tcp.js";
import { detectProtocol } from "../../src/proxy/detect.js";
import { UpstreamError } from "../../src/proxy/forward/errors.js";

const cleanups: (() => void)[] = [];
after(() => cleanups.reverse().forEach((c) => c()));

async function listen(server: net.Server): Promise<number> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  cleanups.push(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

function upstreamTo(port: number, outcomes: string[]): TcpUpstream {
  return {
    connect: () => net.connect({ port, host: "127.0.0.1", allowHalfOpen: true }),
    done: (o) => outcomes.push(`${port}:done:${o.ok}`),
    failed: () => outcomes.push(`${port}:failed`),
    cancel: () => outcomes.push(`${port}:cancel`),
  };
}

/** A detecting, opaque-forwarding listener as the proxy composes it. */
async function startProxy(choose: TcpForwardOptions["choose"]) {
  const results: TcpForwardResult[] = [];
  const waiters: ((r: TcpForwardResult) => void)[] = [];
  const server = net.createServer({ allowHalfOpen: true }, async (socket) => {
    const d = await detectProtocol(socket, { timeoutMs: 100 });
    assert.equal(d.protocol, "opaque");
    const r = await forwardTcp(socket, { choose, replay: d.unshifted ? undefined : d.buffered });
    results.push(r);
    waiters.shift()?.(r);
  });
  const port = await listen(server);
  return { port, results, next: () => new Promise<TcpForwardResult>((r) => waiters.push(r)) };
}

function collect(socket: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on("data", (d: Buffer) => chunks.push(d));
  return new Promise((resolve) => socket.once("close", () => resolve(Buffer.concat(chunks))));
}

test("half-close: the client ends its side, the upstream still answers, byte counts are reported", async () => {
  const upstream = net.createServer({ allowHalfOpen: true }, (s) => {
    let n = 0;
    s.on("data", (d: Buffer) => (n += d.length));
    s.on("end", () => s.end(`got ${n} bytes`));
  });
  const outcomes: string[] = [];
  const up = await listen(upstream);
  const proxy = await startProxy(() => upstreamTo(up, outcomes));
  const result = proxy.next();
  const client = net.connect({ port: proxy.port, host: "127.0.0.1", allowHalfOpen: true });
  const reply = collect(client);
  const payload = Buffer.alloc(1024 * 1024, 0xab);
  client.end(payload);
  assert.equal((await reply).toString(), `got ${payload.length} bytes`);
  const r = await result;
  assert.equal(r.bytesFromClient, payload.length);
  assert.equal(r.bytesToClient, `got ${payload.length} bytes`.length);
  assert.equal(r.error, undefined);
  assert.deepEqual(outcomes, [`${up}:done:true`]);
});

test("server-first protocols: a silent client is opaque after the detect timeout and gets the greeting", async () => {
  const upstream = net.createServer({ allowHalfOpen: true }, (s) => {
    s.write("220 ready\r\n");
    s.on("data", (d: Buffer) => s.end(`echo ${d}`));
  });
  const up = await listen(upstream);
  const proxy = await startProxy(() => upstreamTo(up, []));
  const client = net.connect({ port: proxy.port, host: "127.0.0.1", allowHalfOpen: true });
  const reply = collect(client);
  const [greeting] = (await once(client, "data")) as [Buffer];
  assert.equal(greeting.toString(), "220 ready\r\n");
  client.end("QUIT");
  assert.match((await reply).toString(), /echo QUIT$/);
});

test("bytes sent just before the client's FIN during detection are replayed", async () => {
  const upstream = net.createServer({ allowHalfOpen: true }, (s) => {
    const chunks: Buffer[] = [];
    s.on("data", (d: Buffer) => chunks.push(d));
    s.on("end", () => s.end(`upstream saw: ${Buffer.concat(chunks)}`));
  });
  const up = await listen(upstream);
  const proxy = await startProxy(() => upstreamTo(up, []));
  const client = net.connect({ port: proxy.port, host: "127.0.0.1", allowHalfOpen: true });
  const reply = collect(client);
  client.end("GE"); // an undecided prefix, then end: detection stops on the FIN
  assert.equal((await reply).toString(), "upstream saw: GE");
});

test("an upstream reset closes the client; a refused connect is retried, then the client is closed", async () => {
  const upstream = net.createServer((s) => s.once("data", () => s.resetAndDestroy()));
  const up = await listen(upstream);
  const proxy = await startProxy(() => upstreamTo(up, []));
  const forwarded = proxy.next();
  const client = net.connect({ port: proxy.port, host: "127.0.0.1" });
  client.on("error", () => {});
  const done = collect(client);
  client.write("\x00binary");
  await done;
  assert.equal((await forwarded).error, "CONNECTION_RESET");

  const dead = net.createServer();
  const deadPort = await listen(dead);
  dead.close();
  const outcomes: string[] = [];
  const refusing = await startProxy(() => upstreamTo(deadPort, outcomes));
  const result = refusing.next();
  const c2 = net.connect({ port: refusing.port, host: "127.0.0.1" });
  c2.on("error", () => {});
  const closed = collect(c2);
  c2.write("\x00x");
  await closed;
  const r = await result;
  assert.equal(r.error, "UPSTREAM_CONNECT_FAILED");
  assert.equal(r.attempts, 3);
  assert.deepEqual(outcomes, [`${deadPort}:failed`, `${deadPort}:failed`, `${deadPort}:failed`]);

  const refusals: string[] = [];
  const noIdentity = await startProxy(() => ({
    ...upstreamTo(deadPort, refusals),
    connect: () => {
      throw new UpstreamError("UPSTREAM_NO_IDENTITY", "no certificate of our own yet", false);
    },
  }));
  const refusedResult = noIdentity.next();
  const c3 = net.connect({ port: noIdentity.port, host: "127.0.0.1" });
  c3.on("error", () => {});
  const c3closed = collect(c3);
  c3.write("\x00x");
  await c3closed;
  assert.equal((await refusedResult).error, "UPSTREAM_NO_IDENTITY");
  assert.deepEqual(refusals, [`${deadPort}:cancel`]);
});
