/** `tether authz` and `tether policy validate` as a user runs them, against a cluster folder. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { explainInboundServer } from "../../src/policy/explain.js";
import { pod } from "./fixtures.js";

const root = fileURLToPath(new URL("../../", import.meta.url));

function tether(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(root, "bin/tether.mjs"), ...args], { cwd: root, timeout: 30000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

test("tether authz prints which rules allow whom, and what is not accepted", { timeout: 40000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "tether-authz-"));
  try {
    copyFileSync(join(root, "deploy/crds/examples/policy-examples.yaml"), join(dir, "policy.yaml"));
    const web = pod("shop", "web-1", { app: "web" });
    web.spec!.containers[0]!.ports!.push({ name: "metrics", containerPort: 9990 });
    const broken = { apiVersion: "policy.tether.io/v1alpha1", kind: "NetworkAuthentication", metadata: { name: "broken", namespace: "shop" }, spec: { networks: [{ cidr: "10.0.0.0/33" }] } };
    writeFileSync(join(dir, "base.yaml"), [{ apiVersion: "v1", kind: "Namespace", metadata: { name: "shop" } }, web, broken].map((o) => stringify(o)).join("---\n"));

    const grpcPort = await tether(["authz", "web-1:grpc", "-n", "shop", "--cluster-dir", dir]);
    assert.equal(grpcPort.code, 0, grpcPort.stderr);
    assert.match(grpcPort.stdout, /port 9090: server:shop\/web-grpc \(protocol grpc\)/);
    assert.match(grpcPort.stdout, /grpcroute:shop\/web-get\s+gRPC shop\.v1\.Catalog\/Get\s+authorizationpolicy:shop\/web-get-frontend\s+mTLS identities frontend\.shop\./);
    assert.match(grpcPort.stdout, /no-route/);
    assert.match(grpcPort.stdout, /NetworkAuthentication\/broken: Invalid: spec\.networks\[0\]\.cidr/);

    const json = await tether(["authz", "web-1:8080", "-n", "shop", "--cluster-dir", dir, "--default-inbound-policy", "deny", "--json"]);
    assert.equal(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as { ports: { port: number; policy: { name: string } }[] };
    assert.deepEqual(parsed.ports.map((p) => [p.port, p.policy.name]), [[8080, "default:deny"]]);

    const missing = await tether(["authz", "nope", "-n", "shop", "--cluster-dir", dir]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /pod shop\/nope not found.*\[POLICY_POD_NOT_FOUND\]/);

    const validate = await tether(["policy", "validate", join(dir, "base.yaml"), join(dir, "policy.yaml")]);
    assert.equal(validate.code, 1);
    assert.match(validate.stdout, /base\.yaml:\d+ NetworkAuthentication\/broken: error: spec\.networks\[0\]\.cidr/);
    assert.match(validate.stdout, /policy\.yaml:\d+ Server\/web-grpc: ok/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("explain: a Server without authorizations says nobody is allowed", () => {
  const rows = explainInboundServer({ name: "server:shop/x", protocol: "http1", authorizations: [], routes: [], defaultPolicy: "deny", audit: false });
  assert.deepEqual(rows, [{ route: "(connection)", match: "everything", authorization: "-", allows: "nobody (denied)" }]);
});

// Found by the inject-yaml fuzz target (same reader bug): an alias without its anchor crashed `policy validate`.
test("tether policy validate reports a YAML alias without its anchor as an error", { timeout: 40000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "tether-validate-"));
  try {
    writeFileSync(join(dir, "bad.yaml"), "*!\n");
    const r = await tether(["policy", "validate", join(dir, "bad.yaml")]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /bad\.yaml:1: error: .*alias/i);
    assert.match(r.stderr, /POLICY_INVALID/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

