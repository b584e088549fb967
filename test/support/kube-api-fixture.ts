/**
 * An in-process fake kube-apiserver speaking the list/watch wire protocol over plain HTTP, written
 * from the Kubernetes API conventions (https://kubernetes.io/docs/reference/using-api/api-concepts/).
 * The real @kubernetes/client-node talks to it, so adapters are tested through the same bytes a
 * cluster would send. No kube-apiserver can run on the development machines; this is the stand-in.
 *
 * What it serves (core kinds under /api/v1, grouped kinds under /apis/GROUP/VERSION):
 * - list:  GET .../PLURAL (all namespaces or cluster-scoped) and .../namespaces/NS/PLURAL
 *          -> {kind: "PodList", apiVersion, metadata: {resourceVersion}, items}. Like the real server,
 *          items of built-in kinds carry no kind/apiVersion; items of custom resources do.
 * - watch: the same paths with ?watch=true[&resourceVersion=N][&allowWatchBookmarks=true][&timeoutSeconds=S]
 *          -> 200, chunked, one JSON event per line: {type: ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, object}.
 *          Without resourceVersion (or "0") it first sends a synthetic ADDED per existing object;
 *          with N it replays every change after N from its history, then streams live changes.
 *          BOOKMARK events ({kind, apiVersion, metadata: {resourceVersion}}) are sent every
 *          `bookmarkIntervalMs` to watches that asked for them.
 * - GET/PUT/PATCH/DELETE of one object (.../PLURAL/NAME), PATCH/PUT of .../NAME/status, POST create.
 *   PATCH accepts application/merge-patch+json and application/json-patch+json; PUT checks
 *   metadata.resourceVersion (409 Conflict when stale). Errors are Status objects.
 * - GET /version, /api, /apis, /api/v1 and /apis/GROUP/VERSION discovery documents.
 * - Unknown resources (e.g. a CRD not installed) answer 404 NotFound, like the real server.
 *
 * resourceVersion is one global counter, increased by every change (as etcd's revision).
 *
 * Test controls (all synchronous, so a test can make several changes "at once" — before any
 * client gets a chance to reconnect):
 * - apply(obj) creates or updates (kind/apiVersion from the object; namespace "default" when a
 *   namespaced object has none); `{silent: true}` changes the store without telling watchers,
 *   simulating an event lost in transit (only a re-list can see it).
 * - remove(apiVersion, kind, namespace, name) deletes (DELETED event with the last state).
 * - expire({as}) compacts the history: a watch resuming from an older resourceVersion gets 410
 *   Gone, either `as: "status"` (HTTP 410 + Status body on watch start, the default) or
 *   `as: "event"` (HTTP 200 then an ERROR event whose object is a Status with code 410 reason
 *   Expired, and the stream ends; open watches get that event too and are closed).
 * - dropWatches() destroys every open watch connection abruptly (no clean end);
 *   dropWatches({graceful: true}) ends them cleanly, as a server-side timeout does.
 * - defineResource(def) / removeResource(kind) install or uninstall a kind (a CRD); by default
 *   the built-in kinds and every kind tether reads (RESOURCE_API) are installed, minus `omitKinds`.
 * - route(method, pathPrefix, handler) serves other paths (TokenReview, SubjectAccessReview…) or
 *   overrides built-in ones (to inject failures); routes are tried before the built-in handlers,
 *   newest first, and a handler returning `false` passes the request on. Returns an unregister function.
 * - requests: every request seen ({method, path, query, status, authorization}).
 * - kubeconfigPath() writes a kubeconfig (token user "fixture") pointing at `url`.
 * - close() stops the server, ends every connection and removes the kubeconfig.
 *
 * Not implemented: label/field selectors, pagination (limit/continue), server-side apply,
 * finalizers, generateName collisions, admission. Add them here when a test needs them.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import type { AddressInfo, Socket } from "node:net";
import jsonpatch from "fast-json-patch";
import { stringify as toYaml } from "yaml";
import { RESOURCE_API } from "../../src/cluster/types.js";

export interface KubeResourceDef {
  group: string;
  version: string;
  kind: string;
  plural: string;
  namespaced: boolean;
  /** Whether /status is a subresource (then a PATCH of the object ignores status, and vice versa). */
  statusSubresource?: boolean;
  /** Custom resources list their items with kind/apiVersion; built-in kinds do not. */
  custom?: boolean;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    uid?: string;
    generation?: number;
    creationTimestamp?: string;
    generateName?: string;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  status: number;
  authorization: string | undefined;
}

/** Serves a request; returning `false` (without touching `res`) passes it on to the next route or the built-in API. */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void | boolean | Promise<void | boolean>;

export interface KubeApiFixtureOptions {
  /** Kinds not to install at start (e.g. a CRD that is "not installed yet"). */
  omitKinds?: string[];
  /** Extra kinds to install at start. */
  resources?: KubeResourceDef[];
  /** How often open watches that asked for bookmarks get one. Default 500 ms. */
  bookmarkIntervalMs?: number;
}

export interface KubeApiFixture {
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** The current (latest) resourceVersion. */
  resourceVersion(): number;
  apply(obj: KubeObject, options?: { silent?: boolean }): KubeObject;
  remove(apiVersion: string, kind: string, namespace: string | undefined, name: string, options?: { silent?: boolean }): boolean;
  get(apiVersion: string, kind: string, namespace: string | undefined, name: string): KubeObject | undefined;
  expire(options?: { as?: "status" | "event" }): void;
  dropWatches(options?: { graceful?: boolean }): number;
  openWatches(): number;
  defineResource(def: KubeResourceDef): void;
  removeResource(kind: string): void;
  route(method: string, pathPrefix: string, handler: RouteHandler): () => void;
  kubeconfigPath(): Promise<string>;
  close(): Promise<void>;
}

const BUILTIN_RESOURCES: KubeResourceDef[] = [
  { group: "", version: "v1", kind: "Namespace", plural: "namespaces", namespaced: false, statusSubresource: true },
  { group: "", version: "v1", kind: "Pod", plural: "pods", namespaced: true, statusSubresource: true },
  { group: "", version: "v1", kind: "Service", plural: "services", namespaced: true, statusSubresource: true },
  { group: "", version: "v1", kind: "ServiceAccount", plural: "serviceaccounts", namespaced: true },
  { group: "", version: "v1", kind: "Secret", plural: "secrets", namespaced: true },
  { group: "", version: "v1", kind: "ConfigMap", plural: "configmaps", namespaced: true },
  { group: "", version: "v1", kind: "Endpoints", plural: "endpoints", namespaced: true },
  { group: "discovery.k8s.io", version: "v1", kind: "EndpointSlice", plural: "endpointslices", namespaced: true },
  { group: "apps", version: "v1", kind: "Deployment", plural: "deployments", namespaced: true, statusSubresource: true },
];

/** Every built-in kind plus each kind tether reads (its CRDs installed). */
function defaultResources(): KubeResourceDef[] {
  const defs = [...BUILTIN_RESOURCES];
  for (const [kind, api] of Object.entries(RESOURCE_API)) {
    if (defs.some((d) => d.kind === kind)) continue;
    defs.push({ ...api, kind, custom: true, statusSubresource: true });
  }
  return defs;
}

function apiVersionOf(def: KubeResourceDef): string {
  return def.group ? `${def.group}/${def.version}` : def.version;
}

function keyOf(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

interface HistoryEntry {
  rv: number;
  def: KubeResourceDef;
  type: "ADDED" | "MODIFIED" | "DELETED";
  object: KubeObject;
}

interface OpenWatch {
  def: KubeResourceDef;
  namespace: string | undefined;
  res: ServerResponse;
  socket: Socket;
  bookmarks: boolean;
  timeout?: NodeJS.Timeout;
}

class StatusError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

function statusBody(code: number, reason: string, message: string): Record<string, unknown> {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, details: {}, code };
}

/** A history this long is plenty for tests; older entries are compacted (as etcd does). */
const MAX_HISTORY = 10_000;

class Fixture implements KubeApiFixture {
  url = "";
  readonly requests: RecordedRequest[] = [];
  private rv = 1;
  private compactedRv = 0;
  private goneAs: "status" | "event" = "status";
  private readonly defs = new Map<string, KubeResourceDef>();
  private readonly store = new Map<string, Map<string, KubeObject>>();
  private history: HistoryEntry[] = [];
  private readonly watches = new Set<OpenWatch>();
  private readonly routes: { method: string; prefix: string; handler: RouteHandler }[] = [];
  private readonly server: Server;
  private readonly bookmarkTimer: NodeJS.Timeout;
  private kubeconfigDir: string | undefined;

  constructor(options: KubeApiFixtureOptions) {
    const omit = new Set(options.omitKinds ?? []);
    for (const def of [...defaultResources(), ...(options.resources ?? [])]) {
      if (!omit.has(def.kind)) this.defineResource(def);
    }
    this.server = createServer((req, res) => void this.handle(req, res));
    this.bookmarkTimer = setInterval(() => this.sendBookmarks(), options.bookmarkIntervalMs ?? 500);
    this.bookmarkTimer.unref();
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
  }

  resourceVersion(): number {
    return this.rv;
  }

  defineResource(def: KubeResourceDef): void {
    this.defs.set(def.kind, def);
    if (!this.store.has(def.kind)) this.store.set(def.kind, new Map());
  }

  /** Uninstalls a kind: its objects disappear and its open watches end, as when a CRD is deleted. */
  removeResource(kind: string): void {
    this.defs.delete(kind);
    this.store.delete(kind);
    for (const w of this.watches) if (w.def.kind === kind) this.endWatch(w, false);
  }

  apply(obj: KubeObject, options: { silent?: boolean } = {}): KubeObject {
    const def = this.defForObject(obj);
    const meta = obj.metadata ?? {};
    if (!meta.name) throw new Error(`fixture.apply: ${obj.kind} without metadata.name`);
    const namespace = def.namespaced ? meta.namespace ?? "default" : undefined;
    const existing = this.store.get(def.kind)!.get(keyOf(namespace, meta.name));
    const next = structuredClone(obj);
    next.metadata = { ...next.metadata, name: meta.name };
    if (namespace) next.metadata.namespace = namespace;
    else delete next.metadata.namespace;
    if (existing && sameContent(existing, next)) return existing;
    return this.write(def, next, existing, options.silent ?? false);
  }

  remove(apiVersion: string, kind: string, namespace: string | undefined, name: string, options: { silent?: boolean } = {}): boolean {
    const def = this.defForObject({ apiVersion, kind });
    return this.delete(def, def.namespaced ? namespace ?? "default" : undefined, name, options.silent ?? false) !== undefined;
  }

  get(apiVersion: string, kind: string, namespace: string | undefined, name: string): KubeObject | undefined {
    const def = this.defForObject({ apiVersion, kind });
    const found = this.store.get(def.kind)!.get(keyOf(def.namespaced ? namespace ?? "default" : undefined, name));
    return found && structuredClone(found);
  }

  expire(options: { as?: "status" | "event" } = {}): void {
    this.compactedRv = this.rv;
    this.history = [];
    this.goneAs = options.as ?? "status";
    if (this.goneAs === "event") {
      for (const w of [...this.watches]) {
        this.send(w, { type: "ERROR", object: this.expiredStatus(0) });
        this.endWatch(w, true);
      }
    }
  }

  dropWatches(options: { graceful?: boolean } = {}): number {
    const count = this.watches.size;
    for (const w of [...this.watches]) this.endWatch(w, options.graceful ?? false);
    return count;
  }

  openWatches(): number {
    return this.watches.size;
  }

  route(method: string, pathPrefix: string, handler: RouteHandler): () => void {
    const entry = { method: method.toUpperCase(), prefix: pathPrefix, handler };
    this.routes.unshift(entry);
    return () => {
      const i = this.routes.indexOf(entry);
      if (i >= 0) this.routes.splice(i, 1);
    };
  }

  async kubeconfigPath(): Promise<string> {
    this.kubeconfigDir ??= await mkdtemp(join(tmpdir(), "tether-kubeconfig-"));
    const path = join(this.kubeconfigDir, "kubeconfig");
    const config = {
      apiVersion: "v1",
      kind: "Config",
      // client-node refuses a plain-HTTP server unless TLS verification is explicitly off.
      clusters: [{ name: "fixture", cluster: { server: this.url, "insecure-skip-tls-verify": true } }],
      users: [{ name: "fixture", user: { token: "fixture-token" } }],
      contexts: [{ name: "fixture", context: { cluster: "fixture", user: "fixture" } }],
      "current-context": "fixture",
    };
    await writeFile(path, toYaml(config));
    return path;
  }

  async close(): Promise<void> {
    clearInterval(this.bookmarkTimer);
    for (const w of [...this.watches]) this.endWatch(w, false);
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    if (this.kubeconfigDir) await rm(this.kubeconfigDir, { recursive: true, force: true });
  }

  // --- storage -----------------------------------------------------------------------------

  private defForObject(obj: { apiVersion?: string; kind?: string }): KubeResourceDef {
    const def = obj.kind ? this.defs.get(obj.kind) : undefined;
    if (!def || apiVersionOf(def) !== obj.apiVersion) {
      throw new Error(`fixture: no resource ${obj.apiVersion} ${obj.kind} is installed (defineResource it first)`);
    }
    return def;
  }

  private write(def: KubeResourceDef, next: KubeObject, existing: KubeObject | undefined, silent: boolean): KubeObject {
    const meta = next.metadata!;
    this.rv += 1;
    meta.resourceVersion = String(this.rv);
    meta.uid = existing?.metadata?.uid ?? meta.uid ?? randomUUID();
    meta.creationTimestamp = existing?.metadata?.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, "Z");
    const specChanged = !existing || JSON.stringify(existing.spec) !== JSON.stringify(next.spec);
    meta.generation = (existing?.metadata?.generation ?? 0) + (specChanged ? 1 : 0);
    // kind and apiVersion first, as the API server's Go structs serialize them.
    const { kind: _k, apiVersion: _a, ...rest } = next;
    const stored: KubeObject = { kind: def.kind, apiVersion: apiVersionOf(def), ...rest };
    this.store.get(def.kind)!.set(keyOf(meta.namespace, meta.name!), stored);
    if (!silent) this.record(def, existing ? "MODIFIED" : "ADDED", stored);
    return structuredClone(stored);
  }

  private delete(def: KubeResourceDef, namespace: string | undefined, name: string, silent: boolean): KubeObject | undefined {
    const objects = this.store.get(def.kind)!;
    const existing = objects.get(keyOf(namespace, name));
    if (!existing) return undefined;
    objects.delete(keyOf(namespace, name));
    this.rv += 1;
    // The DELETED event carries the last state at the deletion's resourceVersion.
    const last = structuredClone(existing);
    last.metadata!.resourceVersion = String(this.rv);
    if (!silent) this.record(def, "DELETED", last);
    return last;
  }

  private record(def: KubeResourceDef, type: HistoryEntry["type"], object: KubeObject): void {
    const entry = { rv: this.rv, def, type, object: structuredClone(object) };
    this.history.push(entry);
    if (this.history.length > MAX_HISTORY) {
      const dropped = this.history.splice(0, this.history.length - MAX_HISTORY);
      this.compactedRv = dropped[dropped.length - 1]!.rv;
    }
    for (const w of this.watches) {
      if (this.matches(w, entry)) this.send(w, { type, object: entry.object });
    }
  }

  private matches(w: OpenWatch, entry: HistoryEntry): boolean {
    return w.def.kind === entry.def.kind && (w.namespace === undefined || entry.object.metadata?.namespace === w.namespace);
  }

  private objectsIn(def: KubeResourceDef, namespace: string | undefined): KubeObject[] {
    const all = [...this.store.get(def.kind)!.values()];
    const selected = namespace === undefined ? all : all.filter((o) => o.metadata?.namespace === namespace);
    return selected.sort((a, b) => keyOf(a.metadata?.namespace, a.metadata!.name!).localeCompare(keyOf(b.metadata?.namespace, b.metadata!.name!)));
  }

  // --- HTTP --------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://fixture");
    const record: RecordedRequest = {
      method: req.method ?? "GET",
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      status: 0,
      authorization: req.headers.authorization,
    };
    this.requests.push(record);
    res.on("finish", () => (record.status = res.statusCode));
    res.on("close", () => (record.status ||= res.statusCode));
    try {
      const body = await readBody(req);
      for (const route of [...this.routes]) {
        if (route.method !== record.method || !url.pathname.startsWith(route.prefix)) continue;
        if ((await route.handler(req, res, body)) !== false) return;
      }
      this.dispatch(record.method, url, body, req, res);
    } catch (err) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof StatusError) sendJson(res, err.code, statusBody(err.code, err.reason, err.message));
      else sendJson(res, 500, statusBody(500, "InternalError", String(err)));
    }
  }

  private dispatch(method: string, url: URL, body: Buffer, req: IncomingMessage, res: ServerResponse): void {
    const path = url.pathname.replace(/\/+$/, "");
    if (method === "GET" && path === "/version") {
      sendJson(res, 200, { major: "1", minor: "30", gitVersion: "v1.30.0-tether-fixture", platform: "linux/amd64" });
      return;
    }
    if (method === "GET" && (path === "/api" || path === "/apis")) {
      sendJson(res, 200, path === "/api" ? { kind: "APIVersions", versions: ["v1"] } : this.groupList());
      return;
    }
    const target = this.resolve(path);
    if (target.discovery) {
      if (method !== "GET") throw new StatusError(405, "MethodNotAllowed", `${method} is not allowed on ${path}`);
      sendJson(res, 200, this.resourceList(target.discovery.group, target.discovery.version));
      return;
    }
    const { def, namespace, name, status } = target;
    if (status && !def.statusSubresource) throw new StatusError(404, "NotFound", "the server could not find the requested resource");
    if (name === undefined) {
      if (method === "GET" && (url.searchParams.get("watch") === "true" || url.searchParams.get("watch") === "1")) {
        this.startWatch(def, namespace, url.searchParams, req, res);
      } else if (method === "GET") {
        sendJson(res, 200, this.listBody(def, namespace));
      } else if (method === "POST") {
        sendJson(res, 201, this.create(def, namespace, parseJson(body)));
      } else {
        throw new StatusError(405, "MethodNotAllowed", `${method} is not allowed on a collection`);
      }
      return;
    }
    const key = keyOf(namespace, name);
    const existing = this.store.get(def.kind)!.get(key);
    if (method === "DELETE") {
      const last = existing && this.delete(def, namespace, name, false);
      if (!last) throw notFound(def, name);
      sendJson(res, 200, last);
      return;
    }
    if (!existing) throw notFound(def, name);
    if (method === "GET") {
      sendJson(res, 200, existing);
      return;
    }
    let next: KubeObject;
    if (method === "PATCH") {
      next = applyPatch(existing, req.headers["content-type"], body);
    } else if (method === "PUT") {
      next = parseJson(body);
      const sentRv = next.metadata?.resourceVersion;
      if (sentRv !== undefined && sentRv !== existing.metadata?.resourceVersion) {
        throw new StatusError(409, "Conflict", `Operation cannot be fulfilled on ${def.plural} "${name}": the object has been modified; please apply your changes to the latest version and try again`);
      }
    } else {
      throw new StatusError(405, "MethodNotAllowed", `${method} is not allowed on an object`);
    }
    // Identity is not patchable; the subresource split decides which half of the object changes.
    next.metadata = { ...next.metadata, name, ...(namespace ? { namespace } : {}) };
    if (def.statusSubresource) {
      if (status) next = { ...structuredClone(existing), status: next.status };
      else next = { ...next, status: structuredClone(existing.status) };
      if (next.status === undefined) delete next.status;
    }
    const stored = sameContent(existing, next) ? existing : this.write(def, next, existing, false);
    sendJson(res, 200, stored);
  }

  private create(def: KubeResourceDef, namespace: string | undefined, obj: KubeObject): KubeObject {
    if (def.namespaced && namespace === undefined) throw new StatusError(405, "MethodNotAllowed", "create a namespaced object under /namespaces/NS/");
    const meta = { ...obj.metadata };
    if (!meta.name && meta.generateName) meta.name = `${meta.generateName}${randomUUID().slice(0, 5)}`;
    if (!meta.name) throw new StatusError(422, "Invalid", `${def.kind} "" is invalid: metadata.name: Required value: name or generateName is required`);
    if (meta.namespace && meta.namespace !== namespace) {
      throw new StatusError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request");
    }
    if (this.store.get(def.kind)!.has(keyOf(namespace, meta.name))) {
      throw new StatusError(409, "AlreadyExists", `${def.plural} "${meta.name}" already exists`);
    }
    if (namespace) meta.namespace = namespace;
    delete meta.resourceVersion;
    return this.write(def, { ...obj, metadata: meta }, undefined, false);
  }

  private listBody(def: KubeResourceDef, namespace: string | undefined): Record<string, unknown> {
    const items = this.objectsIn(def, namespace).map((o) => {
      if (def.custom) return o;
      const { kind: _k, apiVersion: _a, ...rest } = o;
      return rest;
    });
    return { kind: `${def.kind}List`, apiVersion: apiVersionOf(def), metadata: { resourceVersion: String(this.rv) }, items };
  }

  private startWatch(def: KubeResourceDef, namespace: string | undefined, params: URLSearchParams, req: IncomingMessage, res: ServerResponse): void {
    const rvParam = params.get("resourceVersion") ?? "";
    const from = rvParam === "" || rvParam === "0" ? undefined : Number(rvParam);
    if (from !== undefined && !Number.isInteger(from)) throw new StatusError(400, "BadRequest", `invalid resourceVersion "${rvParam}"`);
    const expired = from !== undefined && from < this.compactedRv;
    if (expired && this.goneAs === "status") {
      throw new StatusError(410, "Expired", `too old resource version: ${from} (${this.compactedRv})`);
    }
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked", "cache-control": "no-cache, private" });
    res.flushHeaders();
    const w: OpenWatch = { def, namespace, res, socket: req.socket, bookmarks: params.get("allowWatchBookmarks") === "true" };
    if (expired) {
      this.send(w, { type: "ERROR", object: this.expiredStatus(from) });
      res.end();
      return;
    }
    this.watches.add(w);
    res.on("close", () => this.forget(w));
    const timeoutSeconds = Number(params.get("timeoutSeconds") ?? "0");
    if (timeoutSeconds > 0) w.timeout = setTimeout(() => this.endWatch(w, true), timeoutSeconds * 1000);
    // Replay and registration happen in one turn of the event loop, so no change falls between them.
    if (from === undefined) {
      for (const object of this.objectsIn(def, namespace)) this.send(w, { type: "ADDED", object });
    } else {
      for (const entry of this.history) if (entry.rv > from && this.matches(w, entry)) this.send(w, { type: entry.type, object: entry.object });
    }
  }

  private expiredStatus(from: number | undefined): Record<string, unknown> {
    return statusBody(410, "Expired", `too old resource version: ${from ?? 0} (${this.compactedRv})`);
  }

  private sendBookmarks(): void {
    for (const w of this.watches) {
      if (!w.bookmarks) continue;
      this.send(w, { type: "BOOKMARK", object: { kind: w.def.kind, apiVersion: apiVersionOf(w.def), metadata: { resourceVersion: String(this.rv) } } });
    }
  }

  private send(w: OpenWatch, event: { type: string; object: unknown }): void {
    if (!w.res.writableEnded && !w.res.destroyed) w.res.write(`${JSON.stringify(event)}\n`);
  }

  private endWatch(w: OpenWatch, graceful: boolean): void {
    this.forget(w);
    if (graceful) w.res.end();
    else w.socket.destroy();
  }

  private forget(w: OpenWatch): void {
    if (w.timeout) clearTimeout(w.timeout);
    this.watches.delete(w);
  }

  /** Maps a URL path to a resource (and namespace, name, subresource) or a discovery document. */
  private resolve(path: string):
    | { discovery: { group: string; version: string }; def?: undefined; namespace?: undefined; name?: undefined; status?: undefined }
    | { discovery?: undefined; def: KubeResourceDef; namespace: string | undefined; name: string | undefined; status: boolean } {
    const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
    let group: string;
    let version: string;
    let rest: string[];
    if (parts[0] === "api" && parts.length >= 2) {
      group = "";
      version = parts[1]!;
      rest = parts.slice(2);
    } else if (parts[0] === "apis" && parts.length >= 3) {
      group = parts[1]!;
      version = parts[2]!;
      rest = parts.slice(3);
    } else {
      throw new StatusError(404, "NotFound", "the server could not find the requested resource");
    }
    if (rest.length === 0) {
      if (![...this.defs.values()].some((d) => d.group === group && d.version === version)) {
        throw new StatusError(404, "NotFound", "the server could not find the requested resource");
      }
      return { discovery: { group, version } };
    }
    const find = (plural: string | undefined) =>
      [...this.defs.values()].find((d) => d.group === group && d.version === version && d.plural === plural);
    // namespaces/NS/PLURAL[/NAME[/status]] when PLURAL is a namespaced kind of this group/version.
    if (rest[0] === "namespaces" && rest.length >= 3) {
      const def = find(rest[2]);
      if (def?.namespaced && rest.length <= 5 && (rest.length < 5 || rest[4] === "status")) {
        return { def, namespace: rest[1], name: rest[3], status: rest[4] === "status" };
      }
    }
    const def = find(rest[0]);
    if (def && rest.length <= 3 && (rest.length < 3 || rest[2] === "status") && (!def.namespaced || rest.length === 1)) {
      return { def, namespace: undefined, name: rest[1], status: rest[2] === "status" };
    }
    throw new StatusError(404, "NotFound", "the server could not find the requested resource");
  }

  private groupList(): Record<string, unknown> {
    const groups = new Map<string, Set<string>>();
    for (const d of this.defs.values()) if (d.group) (groups.get(d.group) ?? groups.set(d.group, new Set()).get(d.group)!).add(d.version);
    return {
      kind: "APIGroupList",
      apiVersion: "v1",
      groups: [...groups].map(([name, versions]) => {
        const list = [...versions].map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
        return { name, versions: list, preferredVersion: list[0] };
      }),
    };
  }

  private resourceList(group: string, version: string): Record<string, unknown> {
    const defs = [...this.defs.values()].filter((d) => d.group === group && d.version === version);
    const resources = defs.flatMap((d) => [
      { name: d.plural, singularName: d.kind.toLowerCase(), namespaced: d.namespaced, kind: d.kind, verbs: ["create", "delete", "get", "list", "patch", "update", "watch"] },
      ...(d.statusSubresource ? [{ name: `${d.plural}/status`, singularName: "", namespaced: d.namespaced, kind: d.kind, verbs: ["get", "patch", "update"] }] : []),
    ]);
    return { kind: "APIResourceList", apiVersion: "v1", groupVersion: group ? `${group}/${version}` : version, resources };
  }
}

function notFound(def: KubeResourceDef, name: string): StatusError {
  const resource = def.group ? `${def.plural}.${def.group}` : def.plural;
  return new StatusError(404, "NotFound", `${resource} "${name}" not found`);
}

/** Equal apart from the server-managed metadata. */
function sameContent(a: KubeObject, b: KubeObject): boolean {
  const strip = (o: KubeObject) => {
    const { resourceVersion: _rv, uid: _uid, generation: _g, creationTimestamp: _c, ...meta } = o.metadata ?? {};
    const { kind: _k, apiVersion: _a, ...rest } = o;
    return JSON.stringify({ ...rest, metadata: meta });
  };
  return strip(a) === strip(b);
}

function applyPatch(existing: KubeObject, contentType: string | undefined, body: Buffer): KubeObject {
  const type = (contentType ?? "").split(";")[0]!.trim();
  const patch = parseJson(body) as unknown;
  if (type === "application/merge-patch+json") return mergePatch(structuredClone(existing), patch) as KubeObject;
  if (type === "application/json-patch+json") {
    try {
      return jsonpatch.applyPatch(structuredClone(existing), patch as jsonpatch.Operation[], true, false).newDocument;
    } catch (err) {
      throw new StatusError(422, "Invalid", `json patch failed: ${String(err)}`);
    }
  }
  throw new StatusError(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json (got ${type || "none"})`);
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = target !== null && typeof target === "object" && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function parseJson(body: Buffer): KubeObject {
  try {
    const value = JSON.parse(body.toString("utf8")) as unknown;
    if (value === null || typeof value !== "object") throw new Error("not an object");
    return value as KubeObject;
  } catch (err) {
    throw new StatusError(400, "BadRequest", `the request body is not a JSON object: ${String(err)}`);
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

export async function startKubeApiFixture(options: KubeApiFixtureOptions = {}): Promise<KubeApiFixture> {
  const fixture = new Fixture(options);
  await fixture.listen();
  return fixture;
}
