/**
 * Parses one YAML manifest file (multi-document, `kind: List` included) into Kubernetes objects,
 * with the file and line of every object and of every problem. Pure: no file system here.
 *
 * An object needs `apiVersion`, `kind` and `metadata.name` (a DNS subdomain); a kind tether reads
 * must carry its own apiVersion (a `Server` of another group is someone else's resource).
 * Namespaced kinds tether reads get namespace "default" when none is given, as kubectl does.
 */
import { LineCounter, parseAllDocuments, type Document } from "yaml";
import { RESOURCE_API, type ResourceKind } from "./types.js";

export interface ManifestObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [key: string]: unknown };
  [key: string]: unknown;
}

export interface ManifestProblem {
  file: string;
  line: number;
  column: number;
  message: string;
}

export interface LocatedObject {
  object: ManifestObject;
  file: string;
  line: number;
}

export interface ParsedManifest {
  objects: LocatedObject[];
  problems: ManifestProblem[];
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function isResourceKind(kind: string): kind is ResourceKind {
  return Object.hasOwn(RESOURCE_API, kind);
}

export function formatProblem(p: ManifestProblem): string {
  return `${p.file}:${p.line}:${p.column}: ${p.message}`;
}

export function parseManifest(text: string, file: string): ParsedManifest {
  const lineCounter = new LineCounter();
  const objects: LocatedObject[] = [];
  const problems: ManifestProblem[] = [];
  const at = (offset: number | undefined) => lineCounter.linePos(offset ?? 0);
  let docs: Document.Parsed[];
  try {
    docs = parseAllDocuments(text, { lineCounter, prettyErrors: true, uniqueKeys: true }) as Document.Parsed[];
  } catch (err) {
    return { objects, problems: [{ file, line: 1, column: 1, message: `cannot parse YAML: ${String(err)}` }] };
  }
  if (!Array.isArray(docs)) return { objects, problems };
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      for (const err of doc.errors) {
        const pos = err.linePos?.[0] ?? at(err.pos[0]);
        problems.push({ file, line: pos.line, column: pos.col, message: err.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "") });
      }
      continue;
    }
    if (doc.contents === null) continue; // an empty document (e.g. a trailing "---")
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      const pos = at(doc.contents.range?.[0]);
      problems.push({ file, line: pos.line, column: pos.col, message: String(err instanceof Error ? err.message : err) });
      continue;
    }
    if (value === null || value === undefined) continue;
    const docPos = at(doc.contents.range?.[0]);
    if (isRecord(value) && value.kind === "List") {
      const itemsNode = (doc.contents as { get?: (k: string, keep: boolean) => unknown }).get?.("items", true) as { items?: { range?: [number, number, number] }[] } | undefined;
      const items = Array.isArray(value.items) ? value.items : [];
      if (!Array.isArray(value.items)) problems.push({ file, line: docPos.line, column: docPos.col, message: "a List needs an items array" });
      items.forEach((item, i) => {
        const pos = at(itemsNode?.items?.[i]?.range?.[0] ?? doc.contents!.range?.[0]);
        check(item, file, pos, objects, problems);
      });
      continue;
    }
    check(value, file, docPos, objects, problems);
  }
  return { objects, problems };
}

function check(value: unknown, file: string, pos: { line: number; col: number }, objects: LocatedObject[], problems: ManifestProblem[]): void {
  const problem = (message: string) => problems.push({ file, line: pos.line, column: pos.col, message });
  if (!isRecord(value)) return void problem("a manifest must be a mapping with apiVersion, kind and metadata");
  const { kind, apiVersion } = value;
  if (typeof kind !== "string" || kind === "") return void problem("the object has no kind: add e.g. `kind: Pod`");
  if (typeof apiVersion !== "string" || apiVersion === "") return void problem(`the ${kind} has no apiVersion: add e.g. \`apiVersion: v1\``);
  const metadata = value.metadata;
  if (!isRecord(metadata)) return void problem(`the ${kind} has no metadata: add metadata.name`);
  const { name, namespace } = metadata;
  if (typeof name !== "string" || name === "") return void problem(`the ${kind} has no metadata.name`);
  if (name.length > 253 || !DNS_SUBDOMAIN.test(name)) return void problem(`${kind} name "${name}" is not a valid DNS subdomain (lowercase letters, digits, '-' and '.')`);
  if (namespace !== undefined && (typeof namespace !== "string" || namespace.length > 63 || !DNS_LABEL.test(namespace))) {
    return void problem(`${kind} ${name}: metadata.namespace ${JSON.stringify(namespace)} is not a valid DNS label`);
  }
  for (const field of ["labels", "annotations"] as const) {
    const map = metadata[field];
    if (map === undefined) continue;
    if (!isRecord(map) || !Object.values(map).every((v) => typeof v === "string")) {
      return void problem(`${kind} ${name}: metadata.${field} must map strings to strings (quote numbers and booleans)`);
    }
  }
  const object = value as ManifestObject;
  if (isResourceKind(kind)) {
    const api = RESOURCE_API[kind];
    const expected = api.group ? `${api.group}/${api.version}` : api.version;
    if (apiVersion !== expected) return void problem(`${kind} ${name}: apiVersion must be ${expected}, not ${apiVersion}`);
    if (api.namespaced) object.metadata.namespace ??= "default";
    else delete object.metadata.namespace;
  }
  objects.push({ object, file, line: pos.line });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}
