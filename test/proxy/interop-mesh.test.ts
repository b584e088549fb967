/**
 * Interop through the mesh (a client's outbound proxy, mTLS, the server's inbound proxy; on
 * loopback with a real identity CA): HTTP/2 and gRPC implementations other than ours on both
 * ends. python-h2 (Debian's python3-h2) as client and as server; nghttp and h2load (nghttp2) as
 * clients; grpc-js and Python's grpcio (gRPC C-core) as clients and servers in every pairing, each
 * call kind: unary, server, client and bidi streaming, messages of several MB, deadlines,
 * cancellation (both seen by the server as cancelled), and errors answered trailers-only.
 * The python peers are test/proxy/fixtures/interop_{h2,grpc}.py, run by /usr/bin/python3.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import { once } from "node:events";
import { execFile, spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { fieldValue } from "../../src/proxy/h2/fields.js";
import { startCaFixture } from "../support/ca-fixture.js";
import { EchoClient, startEchoServer, startUnary, unary, UNLIMITED, type EchoClientT } from "./fixtures/grpc-echo.js";
import { F, frame, RawPeer, T } from "./fixtures/h2-raw.js";
import { meshTo } from "./fixtures/mesh.js";

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

// ---- what is installed ----

const PYTHON = "/usr/bin/python3";
const pythonHas = (module: string) => existsSync(PYTHON) && spawnSync(PYTHON, ["-c", `import ${module}`]).status === 0;
const onPath = (cmd: string) => (process.env.PATH ?? "").split(":").some((dir) => dir !== "" && existsSync(join(dir, cmd)));
const skipUnless = (ok: boolean, why: string) => (ok ? {} : { skip: why });
const PY_H2 = skipUnless(pythonHas("h2"), `${PYTHON} has no h2 (apt-get install python3-h2)`);
const PY_GRPC = pythonHas("grpc");
const NGHTTP = skipUnless(onPath("nghttp"), "nghttp is not installed (apt-get install nghttp2-client)");
const H2LOAD = skipUnless(onPath("h2load"), "h2load is not installed (apt-get install nghttp2-client)");

/** A python peer: its JSON stdout lines, as they come. */
function python(script: string, args: string[]): { child: ChildProcessWithoutNullStreams; lines: Record<string, unknown>[]; next(): Promise<Record<string, unknown>> } {
  const child = spawn(PYTHON, [fileURLToPath(new URL(`./fixtures/${script}`, import.meta.url)), ...args]);
  const lines: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: child.stdout }).on("line", (line) => {
    lines.push(JSON.parse(line) as Record<string, unknown>);
    waiters.splice(0).forEach((w) => w());
  });
  let read = 0;
  const exited = once(child, "exit");
  return {
    child,
    lines,
    async next() {
      while (read >= lines.length) {
        const more = new Promise<void>((resolve) => waiters.push(resolve));
        const ended = await Promise.race([more.then(() => false), exited.then(() => true)]);
        if (ended && read >= lines.length) throw new Error(`${script} ${args.join(" ")} exited: ${stderr}`);
      }
      return lines[read++]!;
    },
  };
}

function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: "latin1" }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

const sha256 = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

// ---- the CA, and a node:http2 app (what python-h2, nghttp and h2load talk to) ----

const ca = await startCaFixture();
cleanups.push(() => ca.close());

async function mesh(name: string, appPort: number): Promise<number> {
  const m = await meshTo(ca, name, appPort);
  cleanups.push(() => m.close());
  return m.outbound;
}

/** As interop_h2.py's: 3 MiB + 17 octets, octet i = i % 251. */
const BIG = Buffer.alloc(3 * 1024 * 1024 + 17);
for (let i = 0; i < BIG.length; i++) BIG[i] = i % 251;

/**
 * GET /big answers BIG, GET /small 1,000 octets, anything else "hello PATH"; every response
 * tells what the request carried (x-upload-bytes, x-upload-sha256, x-request-trailer) and ends
 * with the trailer x-served-by: node.
 */
const nodeApp = http2.createServer();
nodeApp.on("stream", (stream, headers) => {
  stream.on("error", () => {});
  const hash = createHash("sha256");
  let bytes = 0;
  let requestTrailer = "";
  stream.on("data", (d: Buffer) => (hash.update(d), (bytes += d.length)));
  stream.on("trailers", (t: http2.IncomingHttpHeaders) => (requestTrailer = String(t["x-trailer"] ?? "")));
  stream.on("end", () => {
    if (stream.destroyed) return;
    const path = headers[":path"];
    stream.respond({ ":status": 200, "x-upload-bytes": String(bytes), "x-upload-sha256": hash.digest("hex"), "x-request-trailer": requestTrailer }, { waitForTrailers: true });
    stream.on("wantTrailers", () => stream.sendTrailers({ "x-served-by": "node" }));
    stream.end(path === "/big" ? BIG : path === "/small" ? "x".repeat(1000) : `hello ${path}`);
  });
});
nodeApp.listen(0, "127.0.0.1");
await once(nodeApp, "listening");
cleanups.push(() => nodeApp.close());
const toNodeApp = await mesh("node-app", (nodeApp.address() as net.AddressInfo).port);

// ---- HTTP/2 ----

test("interop: python-h2 client -> mesh -> node:http2: 3 MiB download, 3 MiB upload with request trailers, response trailers", { timeout: 60_000, ...PY_H2 }, async () => {
  const out = (await python("interop_h2.py", ["client", String(toNodeApp)]).next()) as { results: Record<string, Record<string, any>>; bigSha256: string };
  assert.equal(out.bigSha256, sha256(BIG), "the same BIG on both sides");
  const { "/big": big, "/upload": upload } = out.results;
  assert.deepEqual([big!.status, big!.bytes, big!.sha256, big!.trailers, big!.reset], ["200", BIG.length, sha256(BIG), { "x-served-by": "node" }, null]);
  assert.deepEqual(
    [upload!.status, upload!.headers["x-upload-bytes"], upload!.headers["x-upload-sha256"], upload!.headers["x-request-trailer"], upload!.trailers, upload!.reset],
    ["200", String(BIG.length), sha256(BIG), "from-python", { "x-served-by": "node" }, null],
  );
});

test("interop: node:http2 client -> mesh -> python-h2 server: the same both ways", { timeout: 60_000, ...PY_H2 }, async () => {
  const server = python("interop_h2.py", ["server"]);
  cleanups.push(() => server.child.kill());
  const port = (await server.next()).port as number;
  const session = http2.connect(`http://127.0.0.1:${await mesh("python-h2", port)}`);
  cleanups.push(() => session.close());
  const exchange = (method: string, path: string, body?: Buffer) =>
    new Promise<{ headers: http2.IncomingHttpHeaders; body: Buffer; trailers: http2.IncomingHttpHeaders }>((resolve, reject) => {
      const req = session.request({ ":method": method, ":path": path, "x-from": "node" }, { endStream: body === undefined, waitForTrailers: body !== undefined });
      if (body) {
        req.on("wantTrailers", () => req.sendTrailers({ "x-trailer": "from-node" }));
        req.end(body);
      }
      const chunks: Buffer[] = [];
      let headers: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders = {};
      req.on("response", (h) => (headers = h));
      req.on("trailers", (t) => (trailers = t));
      req.on("data", (d: Buffer) => chunks.push(d));
      req.on("end", () => resolve({ headers, body: Buffer.concat(chunks), trailers }));
      req.on("error", reject);
    });
  const [big, upload] = await Promise.all([exchange("GET", "/big"), exchange("POST", "/upload", BIG)]);
  assert.deepEqual([big.headers[":status"], big.body.length, sha256(big.body), big.trailers["x-served-by"]], [200, BIG.length, sha256(BIG), "python-h2"]);
  assert.deepEqual(
    [upload.headers["x-upload-bytes"], upload.headers["x-upload-sha256"], upload.headers["x-request-trailer"], upload.body.toString(), upload.trailers["x-served-by"]],
    [String(BIG.length), sha256(BIG), "from-node", "hello /upload", "python-h2"],
  );
});

test("interop: nghttp -> mesh -> node:http2: 3 MiB download, and an upload with nghttp's 64 KiB windows", { timeout: 60_000, ...NGHTTP }, async () => {
  const get = await run("nghttp", ["-H", "x-from: nghttp", `http://127.0.0.1:${toNodeApp}/big`]);
  assert.equal(get.code, 0, get.stderr);
  assert.equal(Buffer.from(get.stdout, "latin1").equals(BIG), true, `nghttp got ${get.stdout.length} octets`);
  const dir = mkdtempSync(join(tmpdir(), "nghttp-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "upload");
  writeFileSync(file, BIG);
  const post = await run("nghttp", ["-v", "-d", file, `http://127.0.0.1:${toNodeApp}/upload`]);
  assert.equal(post.code, 0, post.stderr);
  assert.match(post.stdout, new RegExp(`x-upload-bytes: ${BIG.length}`));
  assert.match(post.stdout, new RegExp(`x-upload-sha256: ${sha256(BIG)}`));
  assert.match(post.stdout, /x-served-by: node/);
  assert.match(post.stdout, /hello \/upload/);
  assert.doesNotMatch(post.stdout, /recv (GOAWAY|RST_STREAM)/);
});

test("interop: h2load -> mesh: 3,000 requests on 4 connections of 50 concurrent streams", { timeout: 60_000, ...H2LOAD }, async () => {
  const r = await run("h2load", ["-n", "3000", "-c", "4", "-m", "50", `http://127.0.0.1:${toNodeApp}/small`], 50_000);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /requests: 3000 total, 3000 started, 3000 done, 3000 succeeded, 0 failed, 0 errored, 0 timeout/, r.stdout);
  assert.match(r.stdout, /status codes: 3000 2xx/);
});

// ---- gRPC: grpc-js and grpcio, each as client and as server ----

interface Outcome {
  scenario: string;
  ok: boolean;
  detail: string;
}

/** The scenarios of interop_grpc.py, in its order (the python client runs the same list). */
const SCENARIOS = ["unary", "large messages", "server streaming", "client streaming", "bidi streaming", "trailers-only error", "deadline", "cancellation"];
const LARGE = 4 * 1024 * 1024 + 3;

async function grpcJsClient(port: number): Promise<Outcome[]> {
  const c = new EchoClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), UNLIMITED) as EchoClientT;
  const trailer = (md: grpc.Metadata | undefined, name: string) => md?.get(name)[0]?.toString();
  const runs: Record<string, () => Promise<[boolean, string]>> = {
    unary: async () => {
      const md = new grpc.Metadata();
      md.set("x-from", "grpc-js");
      const r = await unary(c, "unary", Buffer.from("hello"), { metadata: md });
      return [r.value?.toString() === "hello" && trailer(r.trailers, "x-echo-bytes") === "5", `${r.err?.message ?? r.value}`];
    },
    "large messages": async () => {
      const payload = randomBytes(LARGE);
      const r = await unary(c, "unary", payload);
      return [r.value?.equals(payload) === true && trailer(r.trailers, "x-echo-bytes") === String(LARGE), `${r.err?.message ?? r.value?.length}`];
    },
    "server streaming": async () => {
      const request = Buffer.alloc(8);
      request.writeUInt32BE(8, 0);
      request.writeUInt32BE(512 * 1024, 4);
      const call = c.stream!(request) as grpc.ClientReadableStream<Buffer>;
      const status = once(call, "status") as Promise<[grpc.StatusObject]>;
      const messages: Buffer[] = [];
      for await (const m of call) messages.push(m as Buffer);
      const [s] = await status;
      const ok = messages.length === 8 && messages.every((m, i) => m.equals(Buffer.alloc(512 * 1024, i)));
      return [ok && trailer(s.metadata, "x-sent") === "8", `${messages.length} messages, ${s.code}`];
    },
    "client streaming": async () => {
      const messages = Array.from({ length: 12 }, () => randomBytes(300 * 1024));
      let statusMd: grpc.Metadata | undefined;
      const value = await new Promise<Buffer | undefined>((resolve) => {
        const call = c.collect!((err: grpc.ServiceError | null, v?: Buffer) => setImmediate(() => resolve(err ? undefined : v))) as grpc.ClientWritableStream<Buffer>;
        call.on("status", (s: grpc.StatusObject) => (statusMd = s.metadata));
        for (const m of messages) call.write(m);
        call.end();
      });
      return [value?.toString("hex") === sha256(Buffer.concat(messages)) && trailer(statusMd, "x-received") === "12", `${value?.toString("hex")}`];
    },
    "bidi streaming": async () => {
      // One message out, its echo back, then the next: only a real bidi stream gets through.
      const call = c.chat!() as grpc.ClientDuplexStream<Buffer, Buffer>;
      const status = once(call, "status") as Promise<[grpc.StatusObject]>;
      const replies = call[Symbol.asyncIterator]();
      for (let i = 0; i < 20; i++) {
        const m = randomBytes(1000 + i * 5000);
        call.write(m);
        const reply = await replies.next();
        if (!(reply.value as Buffer).equals(m)) return [false, `echo ${i} differs`];
      }
      call.end();
      const rest = await replies.next();
      const [s] = await status;
      return [rest.done === true && s.code === grpc.status.OK, `${s.code}`];
    },
    "trailers-only error": async () => {
      const r = await unary(c, "fail", Buffer.from("x"));
      return [r.err?.code === grpc.status.NOT_FOUND && r.err.details === "no such thing", `${r.err?.code} ${r.err?.details}`];
    },
    deadline: async () => {
      const r = await unary(c, "hang", Buffer.from("x"), { deadlineMs: 300 });
      return [r.err?.code === grpc.status.DEADLINE_EXCEEDED, `${r.err?.code}`];
    },
    cancellation: async () => {
      const { call, result } = startUnary(c, "hang", Buffer.from("x"));
      await new Promise((r) => setTimeout(r, 300));
      call.cancel();
      const r = await result;
      return [r.err?.code === grpc.status.CANCELLED, `${r.err?.code}`];
    },
  };
  const out: Outcome[] = [];
  try {
    for (const scenario of SCENARIOS) {
      const [ok, detail] = await runs[scenario]!().catch((err: Error): [boolean, string] => [false, err.message]);
      out.push({ scenario, ok, detail });
    }
  } finally {
    c.close();
  }
  return out;
}

async function grpcioClient(port: number): Promise<Outcome[]> {
  const client = python("interop_grpc.py", ["client", `127.0.0.1:${port}`]);
  const out: Outcome[] = [];
  for (const _ of SCENARIOS) out.push((await client.next()) as unknown as Outcome);
  return out;
}

interface GrpcServer {
  port: number;
  /** Hang calls the server saw cancelled so far. */
  cancelled(): number;
}

async function grpcJsServer(): Promise<GrpcServer> {
  const s = await startEchoServer();
  cleanups.push(() => s.close());
  return s;
}

async function grpcioServer(): Promise<GrpcServer> {
  const s = python("interop_grpc.py", ["server"]);
  cleanups.push(() => (s.child.stdin.end(), s.child.kill()));
  const port = (await s.next()).port as number;
  return { port, cancelled: () => s.lines.filter((l) => l.event === "cancelled").length };
}

const NEEDS_GRPCIO = skipUnless(PY_GRPC, `${PYTHON} has no grpc (apt-get install python3-grpcio)`);
const CLIENTS = { "grpc-js": { run: grpcJsClient, options: {} }, grpcio: { run: grpcioClient, options: NEEDS_GRPCIO } };
const SERVERS = { "grpc-js": { start: grpcJsServer, options: {} }, grpcio: { start: grpcioServer, options: NEEDS_GRPCIO } };
const meshes = new Map<string, Promise<{ server: GrpcServer; outbound: number }>>();
/** Each server and its mesh, started once, when a test first needs it. */
function grpcMesh(name: keyof typeof SERVERS) {
  if (!meshes.has(name)) meshes.set(name, SERVERS[name].start().then(async (server) => ({ server, outbound: await mesh(`grpc-${name}`, server.port) })));
  return meshes.get(name)!;
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const [serverName, server] of Object.entries(SERVERS) as [keyof typeof SERVERS, (typeof SERVERS)[keyof typeof SERVERS]][]) {
  for (const [clientName, client] of Object.entries(CLIENTS)) {
    test(`interop: ${clientName} -> mesh -> ${serverName}: ${SCENARIOS.join(", ")}`, { timeout: 90_000, ...server.options, ...client.options }, async () => {
      const { server: s, outbound } = await grpcMesh(serverName);
      const cancelledBefore = s.cancelled();
      const outcomes = await client.run(outbound);
      assert.deepEqual(outcomes.map((o) => o.scenario), SCENARIOS);
      assert.deepEqual(outcomes.filter((o) => !o.ok), []);
      // The deadline and the cancellation both reached the server as a cancelled call.
      await until(() => s.cancelled() - cancelledBefore >= 2, 5000, `the server to see 2 calls cancelled (saw ${s.cancelled() - cancelledBefore})`);
    });
  }

  test(`interop: a gRPC error from ${serverName} stays trailers-only through the mesh (one HEADERS, END_STREAM, no DATA)`, { timeout: 30_000, ...server.options }, async () => {
    const { outbound } = await grpcMesh(serverName);
    const peer = await RawPeer.connect(outbound);
    cleanups.push(() => peer.destroy());
    const message = Buffer.from("x");
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(message.length, 1);
    peer.headers(1, [":method", "POST", ":scheme", "http", ":path", "/test.Echo/Fail", ":authority", "echo", "content-type", "application/grpc", "te", "trailers"], false);
    peer.send(frame(T.DATA, F.END_STREAM, 1, Buffer.concat([prefix, message])));
    const r = await peer.response(1);
    const blocks = peer.frames.filter((f) => f.streamId === 1 && (f.type === T.HEADERS || f.type === T.DATA));
    assert.deepEqual(blocks.map((f) => [f.type, f.flags & F.END_STREAM]), [[T.HEADERS, F.END_STREAM]]);
    // grpc-message is percent-encoded (gRPC's HTTP/2 protocol); grpc-js encodes spaces, C-core does not.
    const details = decodeURIComponent(fieldValue(r.fields!, "grpc-message") ?? "");
    assert.deepEqual([fieldValue(r.fields!, ":status"), fieldValue(r.fields!, "grpc-status"), details], ["200", "5", "no such thing"]);
  });
}
