/** Reading the CRDs from deploy/crds and writing objects as multi-document YAML. */
import { readdirSync, readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments, stringify } from "yaml";
import { errorMessage, UsageError } from "../../core/errors.js";
import type { K8sObject } from "./render.js";

export const DEPLOY_DIR = fileURLToPath(new URL("../../../deploy/", import.meta.url));
export const CRDS_DIR = join(DEPLOY_DIR, "crds");

export function crdFiles(dir = CRDS_DIR): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml") || f.endsWith(".yml"))
    .sort()
    .map((f) => join(dir, f));
}

export function parseYamlObjects(text: string, source: string): unknown[] {
  const out: unknown[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!;
      throw new UsageError("YAML_INVALID", `${source}: ${e.message}`);
    }
    let value: unknown;
    try {
      // Throws on an alias whose anchor is missing, or on more aliases than a manifest needs.
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      throw new UsageError("YAML_INVALID", `${source}: ${errorMessage(err)}`);
    }
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

/** The CustomResourceDefinitions tether installs; refuses anything else found in the folder. */
export function loadCrds(dir = CRDS_DIR): K8sObject[] {
  const files = crdFiles(dir);
  if (files.length === 0) {
    throw new UsageError("INSTALL_NO_CRDS", `no CRD files in ${dir}; the tether checkout is incomplete`);
  }
  return files.flatMap((file) =>
    parseYamlObjects(readFileSync(file, "utf8"), file).map((obj) => {
      const o = obj as Partial<K8sObject>;
      if (o.kind !== "CustomResourceDefinition" || typeof o.metadata?.name !== "string") {
        throw new UsageError("INSTALL_BAD_CRD", `${file} holds a ${String(o.kind)}, not a CustomResourceDefinition`);
      }
      return o as K8sObject;
    }),
  );
}

export function toYamlDocuments(objects: readonly unknown[]): string {
  return objects.map((o) => "---\n" + stringify(o, { lineWidth: 0 })).join("");
}
