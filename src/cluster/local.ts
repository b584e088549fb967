/**
 * ClusterState read from a folder of YAML manifests (*.yaml, *.yml, in subfolders too; dot-entries
 * such as a mounted ConfigMap's `..data` are reached only through their symlinks). The folder is
 * watched (fs.watch, debounced, plus a polling fallback for file systems where fs.watch is blind);
 * every change becomes ADDED/MODIFIED/DELETED events.
 *
 * - A file with any problem (bad YAML, an object without kind or name…) keeps its last good state
 *   as a whole: a half-edited file never half-applies (a policy file half applied could widen
 *   access). Problems are logged and listed by problems() with file:line:column.
 * - Objects the process applies itself (the local runner's Pods with status, generated
 *   EndpointSlices) are runtime-owned: a re-scan never deletes or reverts them. When one has the
 *   same name as a folder object the runtime one is what readers see; removing it brings the
 *   folder's version back.
 * - Kinds tether does not read (Deployment…) are kept apart: manifests() and watchManifests().
 * - When the same object is defined in two files, the file later in path order wins (logged).
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { watch, type FSWatcher } from "node:fs";
import { join, relative } from "node:path";
import { pino, type Logger } from "pino";
import { Counter, Registry } from "prom-client";
import { ClusterError } from "./errors.js";
import { formatProblem, isResourceKind, parseManifest, type LocatedObject, type ManifestObject, type ManifestProblem } from "./manifests.js";
import { MemoryCluster } from "./memory.js";
import { RESOURCE_API, objectKey, type ResourceKind, type ResourceTypes, type Unsubscribe, type WatchEventType } from "./types.js";

export type { ManifestObject, ManifestProblem } from "./manifests.js";

export interface ManifestEvent {
  type: WatchEventType;
  object: ManifestObject;
}

export interface LocalFolderOptions {
  logger?: Logger;
  registry?: Registry;
  /** Quiet time after a file-system event before re-scanning (editors write in bursts). Default 50 ms. */
  debounceMs?: number;
  /** Re-scan by polling this often as well (0: never). Default 1000 ms. */
  pollMs?: number;
}

interface FileState {
  stamp: string;
  text: string;
  /** The objects of the last version of this file that parsed without problems. */
  objects: LocatedObject[];
  problems: ManifestProblem[];
}

interface Named {
  metadata?: { name?: string; namespace?: string };
}

/** The identity of an object across sources: kind plus namespace/name. */
function identity(kind: string, object: Named): string {
  const meta = object.metadata ?? {};
  const namespaced = isResourceKind(kind) ? RESOURCE_API[kind].namespaced : meta.namespace !== undefined;
  return `${kind}|${objectKey(namespaced ? meta.namespace ?? "default" : undefined, meta.name ?? "")}`;
}

export class LocalFolderCluster extends MemoryCluster {
  readonly registry: Registry;
  private readonly logger: Logger;
  private readonly files = new Map<string, FileState>();
  /** What the folder defines, by identity: the merged view of every file's last good state. */
  private folder = new Map<string, LocatedObject>();
  /** Objects applied by the process (tether kinds only), by identity. */
  private readonly runtime = new Map<string, { kind: ResourceKind; object: unknown }>();
  private readonly others = new Map<string, ManifestObject>();
  private readonly otherHandlers = new Set<(e: ManifestEvent) => void>();
  private readonly problemsCounter: Counter;
  private readonly rescans: Counter;
  /** One non-recursive watcher per folder: Node 20's recursive fs.watch on Linux misses writes to renamed-over files. */
  private readonly watchers = new Map<string, FSWatcher>();
  private dirs = new Set<string>();
  private debounceTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private rescanAgain: "force" | "stat" | undefined;
  private closed = false;
  private started = false;

  private constructor(
    readonly dir: string,
    private readonly options: LocalFolderOptions,
  ) {
    super();
    this.logger = (options.logger ?? pino({ level: "info" })).child({ component: "cluster", source: dir });
    this.registry = options.registry ?? new Registry();
    this.problemsCounter = new Counter({
      name: "tether_cluster_manifest_problems_total",
      help: "Problems found in manifest files (bad YAML, invalid objects); the file's last good state stayed.",
      registers: [this.registry],
    });
    this.rescans = new Counter({ name: "tether_cluster_manifest_rescans_total", help: "Scans of the manifest folder.", registers: [this.registry] });
  }

  /** Reads the folder once (so the cache is ready) and starts watching it. */
  static async open(dir: string, options: LocalFolderOptions = {}): Promise<LocalFolderCluster> {
    const info = await stat(dir).catch(() => undefined);
    if (!info?.isDirectory()) {
      throw new ClusterError("CLUSTER_DIR_NOT_FOUND", `the manifest folder ${dir} does not exist or is not a folder: create it or pass another --dir`);
    }
    const cluster = new LocalFolderCluster(dir, options);
    await cluster.rescan();
    cluster.startWatching();
    return cluster;
  }

  /** Problems of the current files, each `file:line:column: message` when formatted. */
  problems(): ManifestProblem[] {
    return [...this.files.values()].flatMap((f) => f.problems);
  }

  /** Objects of kinds tether does not read (e.g. Deployments for the local runner), of one kind or all. */
  manifests(kind?: string): ManifestObject[] {
    const all = [...this.others.values()];
    return kind === undefined ? all : all.filter((o) => o.kind === kind);
  }

  /** Changes to manifests() (no replay: call manifests() after subscribing). */
  watchManifests(handler: (event: ManifestEvent) => void): Unsubscribe {
    this.otherHandlers.add(handler);
    return () => this.otherHandlers.delete(handler);
  }

  /** Runtime-owned: survives re-scans of the folder. */
  override apply<K extends ResourceKind>(kind: K, object: ResourceTypes[K]): void {
    this.runtime.set(identity(kind, object as Named), { kind, object });
    super.apply(kind, object);
  }

  /** Removes a runtime-owned object; a folder object of the same name becomes visible again. */
  override remove(kind: ResourceKind, namespace: string | undefined, name: string): boolean {
    const id = identity(kind, { metadata: { name, ...(namespace === undefined ? {} : { namespace }) } });
    const owned = this.runtime.delete(id);
    const fromFolder = this.folder.get(id);
    if (owned && fromFolder) {
      super.apply(kind, fromFolder.object as unknown as ResourceTypes[ResourceKind]);
      return true;
    }
    return super.remove(kind, namespace, name);
  }

  /**
   * Re-reads the folder and applies the differences. `force` re-reads every file; otherwise only
   * files whose size/mtime/ctime changed. Concurrent calls are coalesced.
   */
  async rescan(force = true): Promise<void> {
    if (this.scanning) {
      this.rescanAgain = force || this.rescanAgain === "force" ? "force" : "stat";
      return this.scanning;
    }
    this.scanning = (async () => {
      try {
        let mode: boolean | undefined = force;
        while (mode !== undefined && !this.closed) {
          this.rescanAgain = undefined;
          await this.scanOnce(mode);
          mode = this.rescanAgain === undefined ? undefined : this.rescanAgain === "force";
        }
      } finally {
        this.scanning = undefined;
      }
    })();
    return this.scanning;
  }

  override async close(): Promise<void> {
    this.closed = true;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    clearTimeout(this.debounceTimer);
    clearInterval(this.pollTimer);
    await this.scanning?.catch(() => undefined);
    this.otherHandlers.clear();
    await super.close();
  }

  private async scanOnce(force: boolean): Promise<void> {
    this.rescans.inc();
    let paths: string[];
    const dirs = new Set<string>([this.dir]);
    try {
      paths = await this.listFiles(this.dir, dirs);
    } catch (err) {
      // A vanished folder is more likely a remount in progress than "delete everything": keep the state.
      this.logger.error({ err: String(err) }, "cannot read the manifest folder; keeping the last state");
      return;
    }
    const seen = new Set<string>();
    for (const path of paths) {
      seen.add(path);
      await this.readFile(path, force);
    }
    for (const path of [...this.files.keys()]) if (!seen.has(path)) this.files.delete(path);
    this.dirs = dirs;
    this.applyFolder();
    if (this.started) this.syncWatchers();
  }

  private async listFiles(dir: string, dirs: Set<string>): Promise<string[]> {
    const out: string[] = [];
    for (const name of (await readdir(dir)).sort()) {
      if (name.startsWith(".")) continue;
      const path = join(dir, name);
      const info = await stat(path).catch(() => undefined); // follows symlinks; a dangling one is skipped
      if (!info) continue;
      if (info.isDirectory()) {
        dirs.add(path);
        out.push(...(await this.listFiles(path, dirs)));
      }
      else if (info.isFile() && /\.ya?ml$/i.test(name)) out.push(path);
    }
    return out;
  }

  private async readFile(path: string, force: boolean): Promise<void> {
    const info = await stat(path).catch(() => undefined);
    if (!info) return; // deleted since the listing; the next scan drops it
    const stamp = `${info.size}:${info.mtimeMs}:${info.ctimeMs}:${info.ino}`;
    const previous = this.files.get(path);
    if (previous && !force && previous.stamp === stamp) return;
    const text = await readFile(path, "utf8").catch(() => undefined);
    if (text === undefined) return;
    if (previous && previous.text === text) {
      previous.stamp = stamp;
      return;
    }
    const shown = relative(this.dir, path) || path;
    const parsed = parseManifest(text, shown);
    if (parsed.problems.length > 0) {
      for (const p of parsed.problems) {
        this.problemsCounter.inc();
        this.logger.warn({ file: p.file, line: p.line, column: p.column }, `${formatProblem(p)} (skipped; the file's last good state stays)`);
      }
      this.files.set(path, { stamp, text, objects: previous?.objects ?? [], problems: parsed.problems });
      return;
    }
    if (previous?.problems.length) this.logger.info({ file: shown }, "manifest file fixed; applying it");
    this.files.set(path, { stamp, text, objects: parsed.objects, problems: [] });
  }

  /** Computes the folder's merged view and turns the difference with the last one into events. */
  private applyFolder(): void {
    const next = new Map<string, LocatedObject>();
    for (const path of [...this.files.keys()].sort()) {
      for (const located of this.files.get(path)!.objects) {
        const id = identity(located.object.kind, located.object);
        const earlier = next.get(id);
        if (earlier) {
          this.logger.warn(`${located.file}:${located.line}: ${located.object.kind} ${located.object.metadata.name} is also defined at ${earlier.file}:${earlier.line}; using ${located.file}`);
        }
        next.set(id, located);
      }
    }
    const previous = this.folder;
    this.folder = next;
    for (const [id, old] of previous) {
      if (next.has(id)) continue;
      const { kind, metadata } = old.object;
      if (isResourceKind(kind)) {
        if (!this.runtime.has(id)) super.remove(kind, metadata.namespace, metadata.name);
      } else {
        this.others.delete(id);
        this.emitOther({ type: "DELETED", object: old.object });
      }
    }
    for (const [id, located] of next) {
      const { kind } = located.object;
      if (isResourceKind(kind)) {
        if (!this.runtime.has(id)) super.apply(kind, located.object as unknown as ResourceTypes[ResourceKind]);
        continue;
      }
      const before = this.others.get(id);
      if (before && JSON.stringify(before) === JSON.stringify(located.object)) continue;
      this.others.set(id, located.object);
      this.emitOther({ type: before ? "MODIFIED" : "ADDED", object: located.object });
    }
  }

  private emitOther(event: ManifestEvent): void {
    for (const handler of [...this.otherHandlers]) {
      try {
        handler(event);
      } catch (err) {
        this.logger.error({ err: String(err) }, "a manifest watcher threw");
      }
    }
  }

  private startWatching(): void {
    this.started = true;
    this.syncWatchers();
    const pollMs = this.options.pollMs ?? 1000;
    if (pollMs > 0) {
      this.pollTimer = setInterval(() => void this.rescan(false).catch((err) => this.logger.error({ err: String(err) }, "rescan failed")), pollMs);
    }
  }

  /** Watches every folder found by the last scan (and stops watching vanished ones). */
  private syncWatchers(): void {
    if (this.closed) return;
    for (const [dir, w] of this.watchers) {
      if (this.dirs.has(dir)) continue;
      w.close();
      this.watchers.delete(dir);
    }
    for (const dir of this.dirs) {
      if (this.watchers.has(dir)) continue;
      try {
        const w = watch(dir, () => this.scheduleRescan());
        w.on("error", (err) => {
          // The folder went away (or the watch limit was hit): polling and the next scan take over.
          this.logger.debug({ dir, err: String(err) }, "folder watch ended");
          w.close();
          this.watchers.delete(dir);
        });
        this.watchers.set(dir, w);
      } catch (err) {
        this.logger.warn({ dir, err: String(err) }, "cannot watch a manifest folder; relying on polling");
      }
    }
  }

  private scheduleRescan(): void {
    clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(
      () => void this.rescan(true).catch((err) => this.logger.error({ err: String(err) }, "rescan failed")),
      this.options.debounceMs ?? 50,
    );
  }
}
