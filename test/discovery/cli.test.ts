import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { MemoryCluster } from "../../src/cluster/memory.js";
import { destinationPathFor, endpointsTable } from "../../src/cli/discovery.js";
import { startDestinationServer } from "../../src/discovery/server.js";
import { endpointSlicesFor } from "../../src/discovery/slice-controller.js";
import { makePod, makeService, quietLogger, runSliceController } from "./support.js";

const bin = fileURLToPath(new URL("../../bin/tether.mjs", import.meta.url));

test("what users type becomes a Destination path", () => {
  const cases: [string, string][] = [
    ["web", "web.shop.svc.cluster.local:80"],
    ["web:8080", "web.shop.svc.cluster.local:8080"],
    ["web.other:9000", "web.other.svc.cluster.local:9000"],
    ["web.other.svc:9000", "web.other.svc.cluster.local:9000"],
    ["web.other.svc.cluster.local:9000", "web.other.svc.cluster.local:9000"],
    ["db-0.db.other.svc.cluster.local:5432", "db-0.db.other.svc.cluster.local:5432"],
    ["10.96.0.10", "10.96.0.10:80"],
    ["10.96.0.10:443", "10.96.0.10:443"],
    ["fd00::1", "[fd00::1]:80"],
    ["[fd00::1]:443", "[fd00::1]:443"],
  ];
  for (const [arg, want] of cases) assert.equal(destinationPathFor(arg, "shop", "cluster.local"), want, arg);
  assert.throws(() => destinationPathFor("web:http", "shop", "cluster.local"), /port "http" is not a number/);
});

test("the table shows identities, and says when an endpoint is not meshed", () => {
  const table = endpointsTable([
    { address: "10.0.0.1", port: 8080, weight: 10000, identity: "web.shop.serviceaccount.identity.tether.cluster.local", protocolHint: "h2", labels: { namespace: "shop", pod: "web-1" } },
    { address: "10.0.0.22", port: 8080, weight: 10000, identity: "", protocolHint: "", labels: { namespace: "shop", pod: "legacy-7" } },
  ]).split("\n");
  assert.equal(table.length, 3);
  assert.match(table[0]!, /^NAMESPACE\s+POD\s+IP\s+PORT\s+IDENTITY\s+PROTOCOL\s+WEIGHT$/);
  assert.match(table[1]!, /^shop\s+web-1\s+10\.0\.0\.1\s+8080\s+web\.shop\.serviceaccount\.identity\.tether\.cluster\.local\s+h2\s+10000$/);
  assert.match(table[2]!, /legacy-7\s+10\.0\.0\.22\s+8080\s+\(not meshed\)\s+detect\s+10000$/);
  // Columns line up.
  assert.equal(table[1]!.indexOf("10.0.0.1"), table[0]!.indexOf("IP"));
});

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

test("`tether diagnostics endpoints` prints what a running destination server returns", { timeout: 60_000 }, async () => {
  const cluster = new MemoryCluster();
  const stop = runSliceController(cluster, {
    put: (s) => cluster.apply("EndpointSlice", s),
    delete: (ns, name) => cluster.remove("EndpointSlice", ns, name),
  });
  cluster.apply("Service", makeService({ name: "web" }));
  cluster.apply("Pod", makePod({ name: "web-1", ip: "10.0.0.1", meshed: true }));
  cluster.apply("Pod", makePod({ name: "web-2", ip: "10.0.0.2" }));
  const server = await startDestinationServer({ cluster, listen: "127.0.0.1:0", logger: quietLogger });
  try {
    const [found, missing, bad] = await Promise.all([
      run(["diagnostics", "endpoints", "web.shop", "--destination", server.address]),
      run(["diagnostics", "endpoints", "-n", "shop", "gone:80", "--destination", server.address]),
      run(["diagnostics", "endpoints", "web.shop:0", "--destination", server.address]),
    ]);
    assert.equal(found.code, 0, found.stderr);
    const lines = found.stdout.trim().split("\n");
    assert.equal(lines.length, 3);
    assert.match(lines[1]!, /web-1\s+10\.0\.0\.1\s+8080\s+web\.shop\.serviceaccount\.identity\.tether\.cluster\.local\s+h2/);
    assert.match(lines[2]!, /web-2\s+10\.0\.0\.2\s+8080\s+\(not meshed\)/);

    assert.equal(missing.code, 1);
    assert.match(missing.stdout, /gone\.shop\.svc\.cluster\.local:80: no such Service/);

    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /DISCOVERY_BAD_PORT/);
  } finally {
    await server.close();
    stop();
  }
});

test("`tether destination serve --cluster-dir` serves a folder of manifests", { timeout: 60_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "tether-destination-cli-"));
  const service = makeService({ name: "web", clusterIP: "10.96.0.10" });
  const pod = makePod({ name: "web-1", ip: "10.0.0.1", meshed: true });
  const docs = [service, pod, ...endpointSlicesFor(service, [pod])].map((o) => stringify(o));
  await writeFile(join(dir, "shop.yaml"), docs.join("---\n"));
  const child = spawn(
    process.execPath,
    [bin, "destination", "serve", "--cluster-dir", dir, "--host", "127.0.0.1", "--port", "0", "--admin-port", "0", "--trust-domain", "corp.example", "--log-level", "warn"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  t.after(async () => {
    if (child.exitCode === null) {
      child.kill("SIGTERM");
      await once(child, "exit");
    }
    await rm(dir, { recursive: true, force: true });
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${out}`)), 30_000);
    child.stdout.on("data", () => {
      const m = /listening on (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  const got = await run(["diagnostics", "endpoints", "10.96.0.10:80", "--destination", address, "--json"]);
  assert.equal(got.code, 0, got.stderr);
  const answer = JSON.parse(got.stdout) as { exists: boolean; endpoints: { address: string; identity: string }[] };
  assert.equal(answer.exists, true);
  assert.deepEqual(
    answer.endpoints.map((e) => [e.address, e.identity]),
    [["10.0.0.1", "web.shop.serviceaccount.identity.tether.corp.example"]],
  );
  child.kill("SIGTERM");
  const [code] = await once(child, "exit");
  assert.equal(code, 0, "SIGTERM is a clean shutdown");
});
