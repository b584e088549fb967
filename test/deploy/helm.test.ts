import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { parse } from "yaml";
import { helmChartFiles, helmValues } from "../../src/cli/install/helm.js";
import { installObjects, type InstallSettings } from "../../src/cli/install/render.js";
import { parseYamlObjects, DEPLOY_DIR } from "../../src/cli/install/manifests.js";
import { settingsFromFlags } from "../../src/cli/install.js";
import { validateManifest } from "./validate.js";

const CHART = join(DEPLOY_DIR, "helm", "tether");

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? filesUnder(join(dir, f)) : [join(dir, f)]));
}

/**
 * Evaluates the only Helm constructs the generated chart may use: `{{ .Values.a.b }}` and
 * whole-document `{{- if [not] .Values.x }} ... {{- end }}`. Anything else is an error, so a
 * template that needs real Helm cannot pass this test unnoticed.
 */
function evaluate(template: string, values: Record<string, unknown>): string {
  const lookup = (path: string): unknown => path.split(".").reduce<any>((v, k) => (v == null ? undefined : v[k]), values);
  let out = template.replace(/\{\{- if (not )?\.Values\.([\w.]+) \}\}\n([\s\S]*?)\{\{- end \}\}\n/g, (_m, not, path, body) => (Boolean(lookup(path)) !== Boolean(not) ? body : ""));
  out = out.replace(/\{\{ \.Values\.([\w.]+) \}\}/g, (_m, path) => {
    const v = lookup(path);
    assert.notEqual(v, undefined, `values.yaml has no ${path}`);
    return String(v);
  });
  assert.ok(!out.includes("{{"), `unsupported template construct: ${/\{\{.*?\}\}/.exec(out)?.[0]}`);
  return out;
}

describe("Helm chart", () => {
  it("is the generator's output (regenerate: node bin/tether.mjs install --helm-chart deploy/helm/tether)", () => {
    const expected = helmChartFiles();
    const actual = new Map(filesUnder(CHART).map((f) => [relative(CHART, f), readFileSync(f, "utf8")]));
    assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
    for (const [path, text] of expected) assert.equal(actual.get(path), text, `deploy/helm/tether/${path} is stale`);
  });

  const cases: [string, InstallSettings][] = [
    ["default values", settingsFromFlags({ trustDomain: "cluster.local", defaultInboundPolicy: "all-authenticated", identityLifetime: "24h", trustManager: true })],
    [
      "overridden values",
      settingsFromFlags({
        trustDomain: "prod.example.com",
        defaultInboundPolicy: "cluster-authenticated",
        identityLifetime: "6h",
        ha: true,
        image: "registry.example.com/tether:dev",
        proxyCpuLimit: "",
        proxyMemoryLimit: "1Gi",
        proxyLogLevel: "debug",
        trustManager: false,
        externalTrustAnchor: true,
        ipv6: true,
      }),
    ],
  ];
  for (const [name, settings] of cases) {
    it(`renders what tether install renders, with ${name}`, () => {
      const defaults = parse(readFileSync(join(CHART, "values.yaml"), "utf8"));
      // The defaults case uses values.yaml as shipped: it must render exactly `tether install`.
      const values = name === "default values" ? defaults : { ...defaults, ...helmValues(settings) };
      const rendered = parseYamlObjects(evaluate(readFileSync(join(CHART, "templates", "tether.yaml"), "utf8"), values), "chart");
      assert.deepEqual(rendered, installObjects(settings, []));
      for (const o of rendered) validateManifest(o);
      const crds = filesUnder(join(CHART, "crds")).flatMap((f) => parseYamlObjects(readFileSync(f, "utf8"), f));
      assert.equal(crds.length, 4);
    });
  }
});
