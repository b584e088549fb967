import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { injectObject, type InjectReport } from "../../src/cli/install/inject-yaml.js";
import { parseYamlObjects } from "../../src/cli/install/manifests.js";
import { defaultInjectionSettings } from "../../src/webhook/settings.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const settings = defaultInjectionSettings();
const spec = { containers: [{ name: "app", image: "w:1", ports: [{ containerPort: 8080 }] }] };
const template = { metadata: { labels: { app: "w" } }, spec };

const workloads: [string, unknown, string[]][] = [
  ["Pod", { apiVersion: "v1", kind: "Pod", metadata: { name: "p", labels: { app: "w" } }, spec }, []],
  ["Deployment", { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "d" }, spec: { template } }, ["spec", "template"]],
  ["StatefulSet", { apiVersion: "apps/v1", kind: "StatefulSet", metadata: { name: "s" }, spec: { template } }, ["spec", "template"]],
  ["DaemonSet", { apiVersion: "apps/v1", kind: "DaemonSet", metadata: { name: "ds" }, spec: { template } }, ["spec", "template"]],
  ["ReplicaSet", { apiVersion: "apps/v1", kind: "ReplicaSet", metadata: { name: "rs" }, spec: { template } }, ["spec", "template"]],
  ["Job", { apiVersion: "batch/v1", kind: "Job", metadata: { name: "j" }, spec: { template } }, ["spec", "template"]],
  ["CronJob", { apiVersion: "batch/v1", kind: "CronJob", metadata: { name: "c" }, spec: { schedule: "@hourly", jobTemplate: { spec: { template } } } }, ["spec", "jobTemplate", "spec", "template"]],
];

function at(obj: any, path: string[]): any {
  return path.reduce((v, k) => v?.[k], obj);
}

describe("tether inject: reading YAML", () => {
  // Found by the inject-yaml fuzz target (fast-check's shrunk input): an alias with no anchor made
  // the yaml library throw a ReferenceError out of `tether inject` instead of a refusal.
  it("an alias without its anchor, or an alias bomb, is a YAML_INVALID refusal, not a crash", () => {
    assert.throws(() => parseYamlObjects("*!", "in.yaml"), (err: Error & { code?: string }) => err.code === "YAML_INVALID" && /in\.yaml/.test(err.message));
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]", ...Array.from({ length: 8 }, (_, i) => `${"bcdefghi"[i]}: &${"bcdefghi"[i]} [${Array(10).fill(`*${"abcdefgh"[i]}`).join(", ")}]`)].join("\n");
    assert.throws(() => parseYamlObjects(bomb, "bomb.yaml"), (err: Error & { code?: string }) => err.code === "YAML_INVALID");
  });
});

describe("tether inject (offline)", () => {
  for (const [kind, obj, path] of workloads) {
    it(`injects a ${kind} and leaves everything else of it alone`, () => {
      const reports: InjectReport[] = [];
      const before = structuredClone(obj);
      const out = injectObject(obj, settings, reports) as any;
      assert.deepEqual(obj, before, "the input is not mutated");
      const pod = at(out, path);
      assert.deepEqual(pod.spec.containers.map((c: any) => c.name), ["tether-proxy", "app"]);
      assert.deepEqual(pod.spec.initContainers.map((c: any) => c.name), ["tether-init"]);
      assert.equal(pod.metadata.annotations["tether.io/proxy-version"], "0.1.0");
      assert.equal(pod.metadata.labels.app, "w");
      // Outside the template nothing changed.
      const strip = (o: any) => {
        const c = structuredClone(o);
        if (path.length === 0) return { apiVersion: c.apiVersion, kind: c.kind, name: c.metadata.name };
        delete at(c, path.slice(0, -1))[path.at(-1)!];
        return c;
      };
      assert.deepEqual(strip(out), strip(obj));
      assert.equal(reports.length, 1);
      assert.equal(reports[0]!.injected, true);
      if (kind === "Job" || kind === "CronJob") assert.match(reports[0]!.detail, /shutdown/);
      // Injecting again changes nothing.
      const again: InjectReport[] = [];
      assert.deepEqual(injectObject(out, settings, again), out);
      assert.match(again[0]!.detail, /already has the tether proxy/);
    });
  }

  it("walks Lists, leaves other kinds alone, and honours opt-out and host network", () => {
    const reports: InjectReport[] = [];
    const list = {
      apiVersion: "v1",
      kind: "List",
      items: [
        { apiVersion: "v1", kind: "Service", metadata: { name: "svc" }, spec: { ports: [{ port: 80 }] } },
        { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "optout" }, spec: { template: { metadata: { annotations: { "tether.io/inject": "disabled" } }, spec } } },
        { apiVersion: "apps/v1", kind: "DaemonSet", metadata: { name: "node-agent" }, spec: { template: { spec: { ...spec, hostNetwork: true } } } },
        { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web" }, spec: { template } },
      ],
    };
    const out = injectObject(list, settings, reports) as any;
    assert.deepEqual(out.items.slice(0, 3), list.items.slice(0, 3));
    assert.equal(out.items[3].spec.template.spec.containers[0].name, "tether-proxy");
    assert.deepEqual(reports.map((r) => [r.name, r.injected]), [["svc", false], ["optout", false], ["node-agent", false], ["web", true]]);
    assert.match(reports[1]!.detail, /disabled/);
    assert.match(reports[2]!.detail, /host network/);
  });

  it("works as a command on standard input", async () => {
    const input = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: w:1\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n";
    const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(process.execPath, ["bin/tether.mjs", "inject", "-", "--trust-domain", "example.org"], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? 1 : 0, stdout, stderr }),
      );
      child.stdin!.end(input);
    });
    assert.equal(result.code, 0, result.stderr);
    const docs = parseYamlObjects(result.stdout, "stdout") as any[];
    assert.equal(docs.length, 2);
    const proxy = docs[0].spec.template.spec.containers[0];
    assert.equal(proxy.name, "tether-proxy");
    assert.equal(proxy.env.find((e: any) => e.name === "TETHER_TRUST_DOMAIN").value, "example.org");
    assert.deepEqual(docs[1], { apiVersion: "v1", kind: "Service", metadata: { name: "web" } });
    assert.match(result.stderr, /Deployment\/web: injected/);
    assert.match(result.stderr, /Service\/web: not a workload/);
  });
});
