/**
 * Two tiny programs the substrate's checks run inside pods with the same node binary: a TCP
 * server that answers every connection with its name, and a client that opens N sequential
 * connections to an address and prints how many answers came from each name (JSON). One TCP
 * connection per call makes kube-proxy's per-connection choice visible.
 */
import { connect } from "node:net";
import { LocalMeshError } from "./errors.js";

const SERVER = `
const net = require("node:net");
const [name, port] = process.argv.slice(1);
net.createServer((s) => { s.on("error", () => {}); s.end(name + "\\n"); })
  .listen(Number(port), "0.0.0.0", () => console.log("listening", name, port));
`;

const CLIENT = `
const net = require("node:net");
const [host, port, count] = process.argv.slice(1);
const once = () => new Promise((resolve) => {
  const s = net.connect({ host, port: Number(port), timeout: 3000 });
  let data = "";
  s.setEncoding("utf8");
  s.on("data", (d) => (data += d));
  s.on("end", () => resolve(data.trim() || "<empty>"));
  s.on("timeout", () => { s.destroy(); resolve("<timeout>"); });
  s.on("error", (e) => resolve("<" + e.code + ">"));
});
(async () => {
  const counts = {};
  for (let i = 0; i < Number(count); i++) { const n = await once(); counts[n] = (counts[n] || 0) + 1; }
  console.log(JSON.stringify(counts));
})();
`;

/** argv of a server answering `name` on `port`. */
export function nameServerArgv(name: string, port: number): string[] {
  return [process.execPath, "-e", SERVER, name, String(port)];
}

/** argv of a client printing `{"<name>": count, "<ECONNREFUSED>": count, ...}` for `count` connections. */
export function nameClientArgv(host: string, port: number, count: number): string[] {
  return [process.execPath, "-e", CLIENT, host, String(port), String(count)];
}

/** Resolves once `host:port` accepts a TCP connection; fails after `timeoutMs`. */
export async function waitForTcp(host: string, port: number, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port, timeout: 500 });
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("timeout", () => {
        s.destroy();
        resolve(false);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new LocalMeshError("LOCAL_TIMEOUT", `${host}:${port} did not accept connections within ${timeoutMs} ms; see the server's log under the state dir`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
