/**
 * Worker thread of bench/discovery.ts: the subscribers, on their own thread (the machine's other
 * core), so the server's event loop is not also decoding every subscriber's copy. Reports
 * absolute times (timeOrigin + now) so the main thread can subtract across threads.
 */
import { parentPort, workerData } from "node:worker_threads";
import { createDestinationClient, watchDestination } from "../src/api/destination-client.js";

interface Setup {
  address: string;
  path: string;
  subscribers: number;
  connections: number;
}

const { address, path, subscribers, connections } = workerData as Setup;
const port = parentPort!;
const now = () => performance.timeOrigin + performance.now();

const clients = Array.from({ length: connections }, () =>
  createDestinationClient(address, undefined, { "grpc.use_local_subchannel_pool": 1, "grpc.max_receive_message_length": 64 << 20 }),
);
let received = 0;
let expected = subscribers;
const onMessage = () => {
  if (++received === expected) port.postMessage({ type: "received", at: now() });
};
const watches: { close(): void }[] = [];

port.on("message", (msg: { type: "start" } | { type: "expect"; count: number } | { type: "close" }) => {
  if (msg.type === "start") {
    for (let i = 0; i < subscribers; i++) {
      const onError = (e: Error) => port.postMessage({ type: "error", message: e.message });
      watches.push(watchDestination(clients[i % connections]!, path, onMessage, { onError }));
    }
  } else if (msg.type === "expect") {
    received = 0;
    expected = msg.count;
    port.postMessage({ type: "armed" });
  } else {
    for (const w of watches) w.close();
    for (const c of clients) c.close();
    port.close();
  }
});

// Loaded (the TypeScript loader is slow to start): the main thread starts the clock now.
port.postMessage({ type: "loaded" });
