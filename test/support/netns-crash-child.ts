/**
 * A runner that builds a small local mesh and then waits to be killed (used by the crash tests):
 * a bridge, two pods with servers, Service rules, a pod process whose child escaped into its own
 * session, and a process in the host's namespace. Prints "ready" when everything exists.
 * Usage: node --import tsx test/support/netns-crash-child.ts STATE_DIR INSTANCE SUBNET
 */
import { LocalSubstrate } from "../../src/local/substrate.js";
import { nameServerArgv } from "../../src/local/probe-apps.js";
import { errorCode, errorMessage } from "../../src/core/errors.js";

const [stateDir, instance, podSubnet] = process.argv.slice(2);
if (!stateDir || !instance || !podSubnet) {
  console.error("usage: netns-crash-child.ts STATE_DIR INSTANCE SUBNET");
  process.exit(2);
}
const substrate = await LocalSubstrate.up({ stateDir, instance, podSubnet }).catch((err: unknown) => {
  console.error(`${errorCode(err)}: ${errorMessage(err)}`);
  process.exit(1);
});
const a = await substrate.createPod("a");
const b = await substrate.createPod("b");
await substrate.exec(a, nameServerArgv("a", 8080));
await substrate.exec(b, ["sh", "-c", "setsid sleep 300 & exec sleep 300"]);
await substrate.spawnHost(["sleep", "300"]);
await substrate.syncServices(a, [{ name: "x/y:80", vip: substrate.serviceIp("x/y"), port: 80, endpoints: [{ ip: b.ip, port: 8080 }] }]);
process.stdout.write("ready\n");
setInterval(() => {}, 60_000);
