/**
 * `tether inject`: the webhook's injection applied offline to manifests (for GitOps). Each pod
 * template gets exactly the patch the webhook would send, prefixed with the template's path.
 */
import type { Pod } from "kubernetes-types/core/v1.js";
import { planInjection, type InjectionResult } from "../../webhook/inject.js";
import { applyPatch } from "../../webhook/json-patch.js";
import type { InjectionSettings } from "../../webhook/settings.js";

export interface InjectReport {
  kind: string;
  name: string;
  injected: boolean;
  detail: string;
}

/** Where each workload kind keeps its pod template. */
const TEMPLATE_PATH: Record<string, string[]> = {
  Pod: [],
  Deployment: ["spec", "template"],
  StatefulSet: ["spec", "template"],
  DaemonSet: ["spec", "template"],
  ReplicaSet: ["spec", "template"],
  ReplicationController: ["spec", "template"],
  Job: ["spec", "template"],
  CronJob: ["spec", "jobTemplate", "spec", "template"],
};

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

function at(obj: Obj, path: string[]): unknown {
  let cur: unknown = obj;
  for (const p of path) cur = isObj(cur) ? cur[p] : undefined;
  return cur;
}

/** Injects one object (recursing into Lists); returns the new object and what was done. */
export function injectObject(obj: unknown, settings: InjectionSettings, reports: InjectReport[] = []): unknown {
  if (!isObj(obj)) return obj;
  const kind = String(obj.kind ?? "");
  const name = String((obj.metadata as Obj | undefined)?.name ?? "");
  if (kind.endsWith("List") && Array.isArray(obj.items)) {
    return { ...obj, items: obj.items.map((item) => injectObject(item, settings, reports)) };
  }
  const path = TEMPLATE_PATH[kind];
  if (!path) {
    reports.push({ kind, name, injected: false, detail: "not a workload; left unchanged" });
    return obj;
  }
  const template = kind === "Pod" ? obj : at(obj, path);
  if (!isObj(template)) {
    reports.push({ kind, name, injected: false, detail: `no pod template at ${path.join(".")}; left unchanged` });
    return obj;
  }
  const pod: Pod = { metadata: template.metadata as Pod["metadata"], spec: template.spec as Pod["spec"] };
  const namespaceName = String((obj.metadata as Obj | undefined)?.namespace ?? "");
  const result: InjectionResult = planInjection({ pod, namespaceName, namespace: undefined, settings, explicit: true });
  if (!result.injected) {
    reports.push({ kind, name, injected: false, detail: result.message });
    return obj;
  }
  const injected = applyPatch(pod, result.patch);
  const notes = [...result.warnings];
  // A sidecar proxy outlives the job's own containers; the job must stop it when done.
  if (kind === "Job" || kind === "CronJob") notes.push("the proxy keeps the job's pod running: end the job with a POST to http://127.0.0.1:4191/shutdown");
  reports.push({ kind, name, injected: true, detail: notes.length ? `injected; ${notes.join("; ")}` : "injected" });
  if (kind === "Pod") return { ...obj, metadata: injected.metadata, spec: injected.spec };
  // Rebuild the path down to the template with the injected one at its end.
  const out = structuredClone(obj);
  let parent: Obj = out;
  for (const p of path.slice(0, -1)) parent = parent[p] as Obj;
  parent[path[path.length - 1]!] = { ...template, metadata: injected.metadata, spec: injected.spec };
  return out;
}
