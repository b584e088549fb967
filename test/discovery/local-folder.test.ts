/**
 * Discovery on the local cluster source: pods are YAML files in a watched folder; EndpointSlices
 * are applied at run time by a controller reacting to the cache, as the local mesh runner does.
 */
import { test } from "node:test";
import { mkdtemp, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { LocalFolderCluster } from "../../src/cluster/local.js";
import { createDestinationClient } from "../../src/api/destination-client.js";
import { startDestinationServer } from "../../src/discovery/server.js";
import { Follower, lifecycleScenario, quietLogger, runSliceController } from "./support.js";

test("local folder: create, scale, make unready, delete pod files reach subscribers within the bound", { timeout: 30_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "tether-discovery-"));
  // A short debounce: the bound is on discovery, not on how long the folder waits for editors.
  const cluster = await LocalFolderCluster.open(dir, { logger: quietLogger, debounceMs: 5, pollMs: 200 });
  await cluster.ready();
  const stopController = runSliceController(cluster, {
    put: (s) => cluster.apply("EndpointSlice", s),
    delete: (ns, name) => void cluster.remove("EndpointSlice", ns, name),
  });
  const server = await startDestinationServer({ cluster, listen: "127.0.0.1:0", logger: quietLogger });
  const client = createDestinationClient(server.address);
  const followers: Follower[] = [];
  t.after(async () => {
    for (const f of followers) f.close();
    client.close();
    await server.close();
    stopController();
    await cluster.close();
    await rm(dir, { recursive: true, force: true });
  });
  const file = (kind: string, ns: string, name: string) => join(dir, `${kind}-${ns}-${name}.yaml`);
  await lifecycleScenario({
    client,
    cluster,
    objects: {
      applyPod: (p) => writeFile(file("pod", p.metadata!.namespace!, p.metadata!.name!), stringify(p)),
      removePod: (ns, name) => unlink(file("pod", ns, name)),
      applyService: (s) => writeFile(file("svc", s.metadata!.namespace!, s.metadata!.name!), stringify(s)),
    },
    changeMs: 100,
    connectMs: 5000,
    track: (f) => followers.push(f),
  });
});
