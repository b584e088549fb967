/**
 * `tether inject` (src/cli/install/inject-yaml.ts): YAML manifests of every workload kind around
 * random pod templates (the admission target's pods), as text, sometimes mutated, sometimes random.
 * Oracle: reading and injecting either succeeds or refuses with a TetherError (never another
 * exception); an injected workload carries the proxy first in its pod template and is otherwise
 * unchanged; injecting the output again changes nothing; the output survives YAML round trips.
 */
import fc from "fast-check";
import { parse, stringify } from "yaml";
import { TetherError } from "../../../src/core/errors.js";
import { parseYamlObjects } from "../../../src/cli/install/manifests.js";
import { injectObject, type InjectReport } from "../../../src/cli/install/inject-yaml.js";
import { isInjected } from "../../../src/webhook/inject.js";
import { defaultInjectionSettings } from "../../../src/webhook/settings.js";
import { pod } from "./admission.js";
import { expect, target, type Verdict } from "./target.js";

const settings = defaultInjectionSettings();

const TEMPLATE_PATH: Record<string, string[]> = {
  Pod: [],
  Deployment: ["spec", "template"],
  StatefulSet: ["spec", "template"],
  DaemonSet: ["spec", "template"],
  Job: ["spec", "template"],
  CronJob: ["spec", "jobTemplate", "spec", "template"],
  ConfigMap: [],
};

function wrap(kind: string, template: Record<string, unknown>): Record<string, unknown> {
  const metadata = { name: "app", namespace: "shop" };
  if (kind === "Pod") return { apiVersion: "v1", kind, metadata, ...template };
  if (kind === "ConfigMap") return { apiVersion: "v1", kind, metadata, data: { a: "b" } };
  const path = TEMPLATE_PATH[kind]!;
  let inner: Record<string, unknown> = template;
  for (const key of [...path].reverse()) inner = { [key]: inner };
  return { apiVersion: "apps/v1", kind, metadata, ...inner, ...(kind === "CronJob" ? {} : {}) };
}

type Input = { kind: "manifest"; objects: [string, unknown][]; list: boolean; edits: [number, number][] } | { kind: "text"; text: string };

const arbitrary: fc.Arbitrary<Input> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("manifest" as const),
      objects: fc.array(fc.tuple(fc.constantFrom(...Object.keys(TEMPLATE_PATH)), pod), { minLength: 1, maxLength: 3 }),
      list: fc.boolean(),
      edits: fc.oneof({ weight: 3, arbitrary: fc.constant([] as [number, number][]) }, { weight: 1, arbitrary: fc.array(fc.tuple(fc.nat(5000), fc.integer({ min: 9, max: 126 })), { minLength: 1, maxLength: 3 }) }),
    }),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 300 }).map((text) => ({ kind: "text" as const, text })) },
);

function at(obj: unknown, path: string[]): unknown {
  let cur = obj;
  for (const p of path) cur = cur && typeof cur === "object" ? (cur as Record<string, unknown>)[p] : undefined;
  return cur;
}

function text(input: Input): string {
  if (input.kind === "text") return input.text;
  const objects = input.objects.map(([kind, p]) => wrap(kind, p as Record<string, unknown>));
  let out = input.list ? stringify({ apiVersion: "v1", kind: "List", items: objects }) : objects.map((o) => stringify(o)).join("---\n");
  for (const [i, code] of input.edits) {
    const k = i % Math.max(1, out.length);
    out = out.slice(0, k) + String.fromCharCode(code) + out.slice(k + 1);
  }
  return out;
}

function check(input: Input): Verdict {
  const source = text(input);
  let objects: unknown[];
  try {
    objects = parseYamlObjects(source, "fuzz.yaml");
  } catch (err) {
    if (err instanceof TetherError) return "refused";
    throw err;
  }
  let injected = false;
  for (const obj of objects) {
    const reports: InjectReport[] = [];
    let out: unknown;
    try {
      out = injectObject(obj, settings, reports);
    } catch (err) {
      if (err instanceof TetherError) continue;
      throw err;
    }
    const flat = (o: unknown): unknown[] => (o && typeof o === "object" && Array.isArray((o as { items?: unknown }).items) && String((o as { kind?: unknown }).kind).endsWith("List") ? (o as { items: unknown[] }).items.flatMap(flat) : [o]);
    if (!obj || typeof obj !== "object" || Array.isArray(obj)) {
      // Not a Kubernetes object: passed through as it is.
      expect(out === obj && reports.length === 0, "a document that is not an object was changed");
      continue;
    }
    const before = flat(obj);
    const after = flat(out);
    expect(before.length === after.length && reports.length === after.length, "objects were lost or added");
    after.forEach((o, i) => {
      const report = reports[i]!;
      if (!report.injected) return void expect(JSON.stringify(o) === JSON.stringify(before[i]), `${report.kind} not injected but changed`);
      injected = true;
      const path = TEMPLATE_PATH[report.kind] ?? ["spec", "template"];
      const template = (path.length === 0 ? o : at(o, path)) as { spec?: { containers?: { name?: string }[] } };
      expect(isInjected(template as never) && template.spec?.containers?.[0]?.name === "tether-proxy", `${report.kind}: the template is not injected`);
      const strip = (x: unknown) => JSON.stringify({ ...(x as object), spec: undefined, metadata: undefined });
      expect(strip(o) === strip(before[i]), `${report.kind}: fields outside the pod template changed`);
      const again: InjectReport[] = [];
      const twice = injectObject(o, settings, again);
      expect(!again[0]?.injected && JSON.stringify(twice) === JSON.stringify(o), `${report.kind}: injecting twice changed it again`);
    });
    expect(JSON.stringify(parse(stringify(out))) === JSON.stringify(out), "the output does not survive a YAML round trip");
  }
  return injected ? "accepted" : "refused";
}

export const injectYamlTarget = target<Input>({
  name: "inject-yaml",
  what: "`tether inject` on YAML (every workload kind, Lists, mutated text): TetherError or a correct, idempotent injection",
  testRuns: 1000,
  shares: { accepted: 0.1, refused: 0.1 },
  open: () => ({ arbitrary, check }),
});
