/**
 * The control plane as `tether controller serve` runs it: identity from a real CA, discovery and
 * policy over mTLS from a folder of manifests, one admin server whose /ready follows the parts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { stringify } from "yaml";
import { createDestinationClient, DestinationState, watchDestination } from "../../src/api/destination-client.js";
import { startControlPlane } from "../../src/controlplane/index.js";
import { endpointSlicesFor } from "../../src/discovery/slice-controller.js";
import { AgentCertificateProvider, mtlsChannelCredentials, mtlsChannelOptions } from "../../src/identity/grpc-credentials.js";
import { startCaFixture } from "../support/ca-fixture.js";
import { certifiedAgent } from "../support/identity-workloads.js";
import { makePod, makeService, quietLogger } from "../discovery/support.js";

test("controller: certified by the CA, serves discovery over mTLS only, /ready once serving", { timeout: 60_000 }, async (t) => {
  const f = await startCaFixture();
  t.after(() => f.close());
  const dir = await mkdtemp(join(tmpdir(), "tether-controlplane-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const service = makeService({ name: "web", clusterIP: "10.96.0.10" });
  const pod = makePod({ name: "web-1", ip: "10.0.0.1", meshed: true });
  await writeFile(join(dir, "shop.yaml"), [service, pod, ...endpointSlicesFor(service, [pod])].map((o) => stringify(o)).join("---\n"));
  const tokenFile = join(dir, "token");
  await writeFile(tokenFile, await f.tokens.mint({ namespace: "tether", serviceAccount: "tether-destination", podName: "tether-destination-0", lifetimeSeconds: 3600 }));

  const controlPlane = await startControlPlane({
    cluster: { dir },
    host: "127.0.0.1",
    destinationPort: 0,
    policyPort: 0,
    adminPort: 0,
    trustDomain: "cluster.local",
    clusterDomain: "cluster.local",
    defaultInboundPolicy: "all-authenticated",
    clusterNetworks: ["10.0.0.0/8"],
    credentials: { kind: "identity", identityAddr: f.ca.address, tokenFile, anchorsFile: f.paths.anchorsPath, serviceAccount: "tether-destination", namespace: "tether" },
    logger: quietLogger,
  });
  t.after(() => controlPlane.close());
  assert.equal(controlPlane.identity, "tether-destination.tether.serviceaccount.identity.tether.cluster.local");
  assert.ok(controlPlane.policyAddress);
  const ready = await fetch(`http://127.0.0.1:${controlPlane.adminPort}/ready`);
  assert.equal(ready.status, 200);
  assert.match(await (await fetch(`http://127.0.0.1:${controlPlane.adminPort}/metrics`)).text(), /tether_destination_/);

  const workload = await certifiedAgent(f, "web", "shop");
  t.after(() => workload.agent.stop());
  const serverName = controlPlane.identity!;
  const client = createDestinationClient(
    controlPlane.destinationAddress!,
    mtlsChannelCredentials(new AgentCertificateProvider(workload.agent, f.anchorsPem), serverName),
    mtlsChannelOptions(serverName),
  );
  t.after(() => client.close());
  const state = new DestinationState();
  await new Promise<void>((resolve, reject) => {
    const watch = watchDestination(client, "10.96.0.10:80", (update, first) => {
      state.apply(update, first);
      watch.close();
      resolve();
    }, { onError: reject });
  });
  assert.deepEqual([...state.endpoints.keys()], ["10.0.0.1:8080"]);

  // Without a client certificate the same server refuses the connection.
  const anonymous = createDestinationClient(controlPlane.destinationAddress!, grpc.credentials.createSsl(Buffer.from(f.anchorsPem)), mtlsChannelOptions(serverName));
  t.after(() => anonymous.close());
  const refused = await new Promise<Error>((resolve) => {
    const watch = watchDestination(anonymous, "10.96.0.10:80", () => resolve(new Error("answered")), { onError: (err) => (watch.close(), resolve(err)) });
  });
  assert.equal((refused as grpc.ServiceError).code, grpc.status.UNAVAILABLE);
});
