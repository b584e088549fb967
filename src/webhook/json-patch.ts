/**
 * The subset of RFC 6902 the injector emits (`add`), with RFC 6901 pointers. The
 * applier exists so `tether inject` can mutate manifests offline with exactly the patch the
 * webhook would send; tests check it against an independent JSON Patch library.
 */
export interface PatchOperation {
  op: "add";
  path: string;
  value: unknown;
}

/** Escapes one reference token: `~` -> `~0`, `/` -> `~1` (RFC 6901 section 3). */
export function escapeToken(token: string): string {
  return token.replace(/~/g, "~0").replace(/\//g, "~1");
}

export function pointer(...tokens: (string | number)[]): string {
  return tokens.map((t) => "/" + escapeToken(String(t))).join("");
}

function parsePointer(path: string): string[] {
  if (path === "") return [];
  if (!path.startsWith("/")) throw new Error(`JSON pointer ${JSON.stringify(path)} must start with "/"`);
  return path
    .slice(1)
    .split("/")
    .map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Applies the patch to a deep copy of `doc` and returns it; throws if an operation does not apply. */
export function applyPatch<T>(doc: T, patch: readonly PatchOperation[]): T {
  const root = structuredClone(doc) as unknown;
  for (const op of patch) {
    const tokens = parsePointer(op.path);
    const last = tokens.pop();
    if (last === undefined) throw new Error(`cannot apply ${op.op} to the document root`);
    let parent: unknown = root;
    for (const t of tokens) {
      parent = Array.isArray(parent) ? parent[Number(t)] : isObject(parent) ? parent[t] : undefined;
      if (parent === undefined) throw new Error(`path ${op.path}: ${t} does not exist`);
    }
    const value = structuredClone(op.value);
    if (Array.isArray(parent)) {
      const index = last === "-" ? parent.length : Number(last);
      if (!Number.isInteger(index) || index < 0 || index > parent.length) throw new Error(`path ${op.path}: bad array index`);
      parent.splice(index, 0, value);
    } else if (isObject(parent)) {
      parent[last] = value;
    } else {
      throw new Error(`path ${op.path}: parent is not a container`);
    }
  }
  return root as T;
}
