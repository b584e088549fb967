import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, rename, rm, symlink, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { LocalFolderCluster, type ManifestEvent } from "../../src/cluster/local.js";
import { openCluster, ClusterError } from "../../src/cluster/index.js";
import { formatProblem } from "../../src/cluster/manifests.js";
import type { ResourceEvent } from "../../src/cluster/types.js";
import { waitFor } from "../support/kube-wait.js";

const silent = pino({ level: "silent" });

async function setup(t: { after: (fn: () => Promise<void>) => void }, files: Record<string, string> = {}, pollMs = 0) {
  const dir = await mkdtemp(join(tmpdir(), "tether-local-"));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  const cluster = await LocalFolderCluster.open(dir, { logger: silent, debounceMs: 20, pollMs });
  t.after(async () => {
    await cluster.close();
    await rm(dir, { recursive: true, force: true });
  });
  const seen: string[] = [];
  cluster.watch("Pod", (e: ResourceEvent<"Pod">) => seen.push(`${e.type} ${e.object.metadata?.name}${e.object.metadata?.labels?.v ? `:${e.object.metadata.labels.v}` : ""}`));
  return { dir, cluster, seen };
}

function pod(name: string, v = "1", namespace = "shop"): string {
  return `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\n  labels: {v: "${v}"}\nspec:\n  containers: [{name: app, image: app}]\n`;
}

/** Writes through a temp file and a rename, as editors and kubectl-style tools do. */
async function replace(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}

test("reads a folder: multi-document files, Lists, subfolders; other kinds kept apart", { timeout: 20_000 }, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "tether-local-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await mkdir(join(dir, "shop"));
    await writeFile(join(dir, "ns.yml"), "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n");
    await writeFile(join(dir, "shop", "pods.yaml"), `${pod("a")}---\n${pod("b")}`);
    await writeFile(
      join(dir, "shop", "list.yaml"),
      "apiVersion: v1\nkind: List\nitems:\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: web, namespace: shop}\n  spec: {replicas: 3}\n- apiVersion: v1\n  kind: Service\n  metadata: {name: web, namespace: shop}\n  spec: {ports: [{port: 80}]}\n",
    );
    await writeFile(join(dir, "notes.txt"), "not a manifest: {");
    const cluster = await openCluster({ dir, logger: silent });
    t.after(() => cluster.close());
    await cluster.ready();
    assert.ok(cluster instanceof LocalFolderCluster);
    assert.deepEqual(cluster.list("Pod", "shop").map((p) => p.metadata?.name).sort(), ["a", "b"]);
    assert.ok(cluster.get("Namespace", undefined, "shop"));
    assert.equal(cluster.get("Service", "shop", "web")?.spec?.ports?.[0]?.port, 80);
    assert.deepEqual(cluster.manifests("Deployment").map((d) => d.metadata.name), ["web"]);
    assert.deepEqual(cluster.problems(), []);
});

test("creations, edits and deletions of files become events", { timeout: 20_000 }, async (t) => {
  const { dir, cluster, seen } = await setup(t, { "a.yaml": pod("a") });
  assert.ok(cluster.get("Pod", "shop", "a"));
  await writeFile(join(dir, "b.yaml"), pod("b"));
  await waitFor(() => cluster.get("Pod", "shop", "b"), "pod b created");
  await replace(join(dir, "a.yaml"), pod("a", "2"));
  await waitFor(() => cluster.get("Pod", "shop", "a")?.metadata?.labels?.v === "2", "pod a edited");
  await unlink(join(dir, "b.yaml"));
  await waitFor(() => cluster.get("Pod", "shop", "b") === undefined, "pod b deleted");
  // A document removed from a multi-document file is a deletion too.
  await writeFile(join(dir, "a.yaml"), `${pod("a", "2")}---\n${pod("c")}`);
  await waitFor(() => cluster.get("Pod", "shop", "c"), "pod c added");
  await writeFile(join(dir, "a.yaml"), pod("c"));
  await waitFor(() => cluster.get("Pod", "shop", "a") === undefined, "pod a gone from the file");
  assert.deepEqual(seen, ["ADDED b:1", "MODIFIED a:2", "DELETED b:1", "ADDED c:1", "DELETED a:2"]);
});

test("invalid YAML is reported with file and line, and the file's last good state stays", { timeout: 20_000 }, async (t) => {
  const { dir, cluster, seen } = await setup(t, { "pods.yaml": `${pod("a")}---\n${pod("b")}` });
  await writeFile(join(dir, "pods.yaml"), `${pod("a", "2")}---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: [b\n`);
  const problems = await waitFor(() => cluster.problems().length > 0 && cluster.problems(), "the problem reported");
  assert.equal(problems[0]!.file, "pods.yaml");
  assert.ok(problems[0]!.line >= 10, formatProblem(problems[0]!));
  // Nothing of the broken version applied: a still has v1, b is still there.
  assert.equal(cluster.get("Pod", "shop", "a")?.metadata?.labels?.v, "1");
  assert.ok(cluster.get("Pod", "shop", "b"));
  // An object without a name in an otherwise valid file: same rule.
  await writeFile(join(dir, "pods.yaml"), `${pod("a", "3")}---\napiVersion: v1\nkind: Pod\nmetadata: {namespace: shop}\n`);
  await waitFor(() => cluster.problems().some((p) => /no metadata.name/.test(p.message) && p.line === 10), "the nameless pod reported at line 10");
  assert.equal(cluster.get("Pod", "shop", "a")?.metadata?.labels?.v, "1");
  // Fixed: applied, problems cleared.
  await writeFile(join(dir, "pods.yaml"), pod("a", "4"));
  await waitFor(() => cluster.get("Pod", "shop", "a")?.metadata?.labels?.v === "4", "the fixed file applied");
  assert.deepEqual(cluster.problems(), []);
  assert.equal(cluster.get("Pod", "shop", "b"), undefined);
  assert.deepEqual(seen, ["DELETED b:1", "MODIFIED a:4"]);
  const counted = (await cluster.registry.getSingleMetric("tether_cluster_manifest_problems_total")!.get()).values[0]?.value;
  assert.ok((counted ?? 0) >= 2);
});

test("a new file that is invalid from the start applies nothing", { timeout: 20_000 }, async (t) => {
  const { dir, cluster } = await setup(t, { "a.yaml": pod("a") });
  await writeFile(join(dir, "new.yaml"), `${pod("n")}---\nkind: Pod\n`);
  await waitFor(() => cluster.problems().length > 0, "the problem reported");
  assert.equal(cluster.get("Pod", "shop", "n"), undefined);
  assert.match(formatProblem(cluster.problems()[0]!), /^new\.yaml:10:1: .*no apiVersion/);
});

test("runtime-applied objects survive re-scans; folder objects are restored when a runtime one is removed", { timeout: 20_000 }, async (t) => {
  const { dir, cluster } = await setup(t, { "pods.yaml": pod("a") });
  cluster.apply("Pod", { apiVersion: "v1", kind: "Pod", metadata: { name: "gen-1", namespace: "shop" }, spec: { containers: [] }, status: { podIP: "10.0.0.9" } });
  cluster.apply("EndpointSlice", { apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice", metadata: { name: "web-1", namespace: "shop" }, addressType: "IPv4", endpoints: [] });
  // The runtime also overrides a folder pod with its live state.
  cluster.apply("Pod", { apiVersion: "v1", kind: "Pod", metadata: { name: "a", namespace: "shop", labels: { v: "1" } }, spec: { containers: [] }, status: { podIP: "10.0.0.1" } });
  await writeFile(join(dir, "pods.yaml"), `${pod("a", "2")}---\n${pod("b")}`);
  await waitFor(() => cluster.get("Pod", "shop", "b"), "pod b from the folder");
  await cluster.rescan();
  assert.equal(cluster.get("Pod", "shop", "gen-1")?.status?.podIP, "10.0.0.9");
  assert.ok(cluster.get("EndpointSlice", "shop", "web-1"));
  assert.equal(cluster.get("Pod", "shop", "a")?.status?.podIP, "10.0.0.1", "the runtime version wins");
  assert.ok(cluster.remove("Pod", "shop", "a"));
  assert.equal(cluster.get("Pod", "shop", "a")?.metadata?.labels?.v, "2", "the folder version is back");
  assert.equal(cluster.get("Pod", "shop", "a")?.status, undefined);
  // Deleting the file removes folder objects only.
  await unlink(join(dir, "pods.yaml"));
  await waitFor(() => cluster.get("Pod", "shop", "b") === undefined, "pod b deleted with its file");
  assert.equal(cluster.get("Pod", "shop", "a"), undefined);
  assert.ok(cluster.get("Pod", "shop", "gen-1"));
  assert.ok(cluster.remove("Pod", "shop", "gen-1"));
  assert.equal(cluster.get("Pod", "shop", "gen-1"), undefined);
});

test("other kinds (Deployments) get their own events", { timeout: 20_000 }, async (t) => {
  const deployment = (replicas: number) => `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec: {replicas: ${replicas}}\n`;
  const { dir, cluster } = await setup(t, { "d.yaml": deployment(1) });
  const events: string[] = [];
  cluster.watchManifests((e: ManifestEvent) => events.push(`${e.type} ${e.object.kind} ${(e.object.spec as { replicas: number }).replicas}`));
  await writeFile(join(dir, "d.yaml"), deployment(3));
  await waitFor(() => events.length === 1, "deployment modified");
  await unlink(join(dir, "d.yaml"));
  await waitFor(() => events.length === 2, "deployment deleted");
  assert.deepEqual(events, ["MODIFIED Deployment 3", "DELETED Deployment 3"]);
  assert.deepEqual(cluster.manifests(), []);
});

test("polling finds changes when file-system events are missed", { timeout: 20_000 }, async (t) => {
  const { dir, cluster } = await setup(t, {}, 30);
  // Closing the fs watcher leaves polling as the only way to notice changes.
  for (const w of (cluster as unknown as { watchers: Map<string, { close(): void }> }).watchers.values()) w.close();
  await writeFile(join(dir, "late.yaml"), pod("late"));
  await waitFor(() => cluster.get("Pod", "shop", "late"), "pod found by polling");
});

test("symlinked files (a mounted ConfigMap's ..data) are read; dot-entries are not scanned twice", { timeout: 20_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "tether-local-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, "..2026_01_01"));
  await writeFile(join(dir, "..2026_01_01", "pods.yaml"), pod("a"));
  await symlink("..2026_01_01", join(dir, "..data"));
  await symlink(join("..data", "pods.yaml"), join(dir, "pods.yaml"));
  const cluster = await LocalFolderCluster.open(dir, { logger: silent, pollMs: 0 });
  t.after(() => cluster.close());
  assert.equal(cluster.list("Pod").length, 1);
  assert.deepEqual(cluster.problems(), []);
});

test("openCluster needs exactly one source, and an existing folder", async () => {
  await assert.rejects(openCluster({}), (e: unknown) => e instanceof ClusterError && e.code === "CLUSTER_SOURCE_INVALID");
  await assert.rejects(openCluster({ dir: "/tmp", kubeconfig: "/x" }), (e: unknown) => e instanceof ClusterError && e.code === "CLUSTER_SOURCE_INVALID");
  await assert.rejects(openCluster({ dir: "/nonexistent/tether" }), (e: unknown) => e instanceof ClusterError && e.code === "CLUSTER_DIR_NOT_FOUND");
});
