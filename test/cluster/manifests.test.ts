import { test } from "node:test";
import assert from "node:assert/strict";
import { formatProblem, parseManifest } from "../../src/cluster/manifests.js";

test("parses multi-document files and Lists, with the line of each object", () => {
  const text = [
    "apiVersion: v1",
    "kind: Namespace",
    "metadata: {name: shop}",
    "---",
    "# a comment",
    "apiVersion: v1",
    "kind: List",
    "items:",
    "  - apiVersion: v1",
    "    kind: ServiceAccount",
    "    metadata: {name: web, namespace: shop}",
    "  - apiVersion: apps/v1",
    "    kind: Deployment",
    "    metadata: {name: web}",
    "---",
    "",
  ].join("\n");
  const { objects, problems } = parseManifest(text, "shop.yaml");
  assert.deepEqual(problems, []);
  assert.deepEqual(
    objects.map((o) => [o.object.kind, o.object.metadata.name, o.object.metadata.namespace, o.line]),
    [
      ["Namespace", "shop", undefined, 1],
      ["ServiceAccount", "web", "shop", 9],
      ["Deployment", "web", undefined, 12],
    ],
  );
});

test("namespaced tether kinds default to namespace default; cluster-scoped ones drop it", () => {
  const { objects } = parseManifest("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b, namespace: x}\n", "f.yaml");
  assert.equal(objects[0]!.object.metadata.namespace, "default");
  assert.equal(objects[1]!.object.metadata.namespace, undefined);
});

const invalid: [string, string, number, RegExp][] = [
  ["syntax error", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: [a\n", 5, /flow sequence|end with a \]/i],
  ["no kind", "apiVersion: v1\nmetadata: {name: a}\n", 1, /no kind/],
  ["no name", "---\napiVersion: v1\nkind: Pod\nmetadata: {namespace: x}\n", 2, /no metadata.name/],
  ["no metadata", "apiVersion: v1\nkind: Pod\n", 1, /no metadata/],
  ["bad name", "apiVersion: v1\nkind: Pod\nmetadata: {name: Web_1}\n", 1, /DNS subdomain/],
  ["bad namespace", "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: A.B}\n", 1, /DNS label/],
  ["non-string label", "apiVersion: v1\nkind: Pod\nmetadata: {name: a, labels: {x: 1}}\n", 1, /strings to strings/],
  ["wrong apiVersion for a tether kind", "apiVersion: v1\nkind: Server\nmetadata: {name: a}\n", 1, /policy\.tether\.io\/v1alpha1/],
  ["not a mapping", "- a\n- b\n", 1, /mapping/],
  ["duplicate keys", "apiVersion: v1\nkind: Pod\nkind: Service\nmetadata: {name: a}\n", 3, /unique/i],
  ["List without items array", "apiVersion: v1\nkind: List\nitems: 3\n", 1, /items array/],
];

for (const [what, text, line, message] of invalid) {
  test(`reports ${what} with file and line`, () => {
    const { problems } = parseManifest(text, "dir/bad.yaml");
    assert.ok(problems.length >= 1, "a problem is reported");
    const p = problems[0]!;
    assert.equal(p.file, "dir/bad.yaml");
    assert.equal(p.line, line, formatProblem(p));
    assert.match(p.message, message);
    assert.match(formatProblem(p), new RegExp(`^dir/bad\\.yaml:${line}:\\d+: `));
  });
}

test("a bad item in a List is reported at its own line", () => {
  const text = "apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: Pod\n    metadata: {name: ok}\n  - apiVersion: v1\n    kind: Pod\n    metadata: {}\n";
  const { objects, problems } = parseManifest(text, "l.yaml");
  assert.equal(objects.length, 1);
  assert.equal(problems[0]?.line, 7);
});

test("empty files and empty documents are fine", () => {
  assert.deepEqual(parseManifest("", "e.yaml"), { objects: [], problems: [] });
  assert.deepEqual(parseManifest("---\n---\n# nothing\n", "e.yaml"), { objects: [], problems: [] });
});
