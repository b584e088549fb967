import { test, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { once } from "node:events";
import { createHash } from "node:crypto";
import { forwardH1, forwardUpgrade, H1AgentPool, serveHttp1Connection, type H1ForwardOptions, type H1ForwardResult } from "../../src/proxy/forward/h1.js";
import { UpstreamError } from "../../src/proxy/forward/errors.js";
import { detectProtocol } from "../../src/proxy/detect.js";

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function listen(server: net.Server): Promise<number> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  cleanups.push(() => {
    server.close();
    (server as http.Server).closeAllConnections?.();
  });
  return (server.address() as net.AddressInfo).port;
}

const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const wsAccept = (key: string) => createHash("sha1").update(key + WS_GUID).digest("base64");

/** Upstream app: echoes the request as JSON; a WebSocket endpoint that echoes raw bytes. */
const upstream = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (d: Buffer) => chunks.push(d));
  req.on("end", () => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString(), port: req.socket.remotePort }));
  });
});
upstream.on("upgrade", (req, socket: net.Socket) => {
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${wsAccept(String(req.headers["sec-websocket-key"]))}\r\n\r\n`,
  );
  socket.on("data", (d: Buffer) => socket.write(Buffer.concat([Buffer.from("echo:"), d])));
});
let upstreamConnections = 0;
upstream.on("connection", () => upstreamConnections++);
const upPort = await listen(upstream);

async function startProxy(choose: (agents: H1AgentPool, outcomes: string[]) => H1ForwardOptions["choose"]) {
  const agents = new H1AgentPool();
  const outcomes: string[] = [];
  const results: H1ForwardResult[] = [];
  const options: H1ForwardOptions = { choose: choose(agents, outcomes) };
  const server = http.createServer();
  server.on("request", (req, res) => void forwardH1(req, res, options).then((r) => results.push(r)));
  server.on("upgrade", (req, socket: net.Socket, head: Buffer) => void forwardUpgrade(req, socket, head, options).then((r) => results.push(r)));
  const tcp = net.createServer(async (socket) => {
    const d = await detectProtocol(socket, { timeoutMs: 1000 });
    assert.equal(d.protocol, "http1");
    serveHttp1Connection(server, socket);
  });
  const port = await listen(tcp);
  cleanups.push(() => {
    agents.close();
    server.closeAllConnections();
  });
  return { port, outcomes, results };
}

const upstreamOn = (port: number) => (agents: H1AgentPool, outcomes: string[]) => () => ({
  hostname: "127.0.0.1",
  port,
  agent: agents.agent(`127.0.0.1:${port}`),
  done: (o: { ok: boolean }) => outcomes.push(`${port}:done:${o.ok}`),
  failed: () => outcomes.push(`${port}:failed`),
  cancel: () => outcomes.push(`${port}:cancel`),
});

function request(port: number, options: http.RequestOptions, body?: string) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, ...options }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

test("HTTP/1 keep-alive: requests forwarded with Host and headers intact over one pooled upstream connection", async () => {
  const proxy = await startProxy(upstreamOn(upPort));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  cleanups.push(() => agent.destroy());
  const before = upstreamConnections;
  for (let i = 0; i < 5; i++) {
    const r = await request(proxy.port, { method: "POST", path: `/items?i=${i}`, agent, headers: { host: "web.shop.svc:8080", "x-trace": `t${i}`, "keep-alive": "timeout=5" } }, `body ${i}`);
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body);
    assert.equal(seen.method, "POST");
    assert.equal(seen.url, `/items?i=${i}`);
    assert.equal(seen.body, `body ${i}`);
    assert.equal(seen.headers.host, "web.shop.svc:8080");
    assert.equal(seen.headers["x-trace"], `t${i}`);
    assert.equal(seen.headers.forwarded, undefined, "a transparent proxy adds nothing");
    assert.notEqual(seen.headers["keep-alive"], "timeout=5", "hop-by-hop headers are not forwarded");
  }
  assert.equal(upstreamConnections - before, 1, "one keep-alive upstream connection");
  assert.deepEqual(proxy.outcomes, Array(5).fill(`${upPort}:done:true`));
});

test("WebSocket upgrade passes through and carries bytes both ways", async () => {
  const proxy = await startProxy(upstreamOn(upPort));
  const key = Buffer.from("0123456789abcdef").toString("base64");
  const req = http.request({
    host: "127.0.0.1",
    port: proxy.port,
    path: "/ws",
    headers: { connection: "Upgrade", upgrade: "websocket", "sec-websocket-key": key, "sec-websocket-version": "13" },
  });
  req.end();
  const [res, socket] = (await once(req, "upgrade")) as [http.IncomingMessage, net.Socket];
  cleanups.push(() => socket.destroy());
  assert.equal(res.statusCode, 101);
  assert.equal(res.headers["sec-websocket-accept"], wsAccept(key));
  socket.write("ping");
  const [echo] = (await once(socket, "data")) as [Buffer];
  assert.equal(echo.toString(), "echo:ping");
});

test("connect failures retry elsewhere; none left is 502 with tether-error; no endpoints is 503", async () => {
  const dead = net.createServer();
  const deadPort = await listen(dead);
  dead.close();
  const order = [deadPort, upPort];
  const retrying = await startProxy((agents, outcomes) => (req, attempt) => upstreamOn(order[attempt % 2]!)(agents, outcomes)());
  const ok = await request(retrying.port, { path: "/x" });
  assert.equal(ok.status, 200);
  assert.deepEqual(retrying.outcomes, [`${deadPort}:failed`, `${upPort}:done:true`]);

  const broken = await startProxy(upstreamOn(deadPort));
  const bad = await request(broken.port, { path: "/x" });
  assert.equal(bad.status, 502);
  assert.equal(bad.headers["tether-error"], "UPSTREAM_CONNECT_FAILED");
  assert.equal(broken.outcomes.length, 3);

  const noIdentity = await startProxy((_agents, outcomes) => () => ({
    ...upstreamOn(upPort)(new H1AgentPool(), outcomes)(),
    agent: new (class extends http.Agent {
      override createConnection(): net.Socket {
        throw new UpstreamError("UPSTREAM_NO_IDENTITY", "no certificate of our own yet", false);
      }
    })(),
  }));
  const refused = await request(noIdentity.port, { path: "/x" });
  assert.equal(refused.status, 502);
  assert.equal(refused.headers["tether-error"], "UPSTREAM_NO_IDENTITY");
  assert.deepEqual(noIdentity.outcomes, [`${upPort}:cancel`]);

  const empty = await startProxy(() => () => {
    throw new UpstreamError("UPSTREAM_NO_ENDPOINTS", "no endpoints for web.shop.svc:80", false);
  });
  const none = await request(empty.port, { path: "/x" });
  assert.equal(none.status, 503);
  assert.equal(none.headers["tether-error"], "UPSTREAM_NO_ENDPOINTS");
  assert.match(none.body, /no endpoints/);
});
