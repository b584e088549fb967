/**
 * The record of everything the substrate creates in the host. Each entry is written (atomically:
 * temp file + rename) BEFORE the thing it names is created and removed only after it is gone, so
 * after any crash, even kill -9 of the runner, `tether local down` knows what may exist.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LocalMeshError } from "./errors.js";
import { validateInstance } from "./names.js";
import { isRunning, processIdentity, type ProcessId } from "./procfs.js";

/** A rule in one of the host's own chains, deleted with `iptables -t TABLE -D CHAIN ...spec`. */
export interface HostRuleEntry {
  kind: "hostRule";
  table: string;
  chain: string;
  spec: string[];
}
export interface BridgeEntry {
  kind: "bridge";
  name: string;
}
export interface NetnsEntry {
  kind: "netns";
  name: string;
}
export interface LinkEntry {
  kind: "link";
  name: string;
}
export interface ProcessEntry {
  kind: "process";
  /** Stable key of the entry (the pid is only known after spawning). */
  id: string;
  /** Namespace it runs in; undefined for the host's. */
  netns?: string;
  argv: string[];
  pid?: number;
  startTime?: string;
  stdout: string;
  stderr: string;
}
export type ResourceEntry = HostRuleEntry | BridgeEntry | NetnsEntry | LinkEntry | ProcessEntry;

export interface PodRecord {
  netns: string;
  link: string;
  ip: string;
}

export interface StateData {
  version: 1;
  instance: string;
  podSubnet: string;
  serviceSubnet: string;
  /** The runner that owns this state, so a second runner refuses and `down` can stop it first. */
  owner?: ProcessId;
  nextLink: number;
  nextProcess: number;
  resources: ResourceEntry[];
  pods: Record<string, PodRecord>;
  serviceIps: Record<string, string>;
}

export const STATE_FILE = "state.json";

export function sameResource(a: ResourceEntry, b: ResourceEntry): boolean {
  if (a.kind !== b.kind) return false;
  switch (a.kind) {
    case "hostRule": {
      const o = b as HostRuleEntry;
      return a.table === o.table && a.chain === o.chain && a.spec.join("\0") === o.spec.join("\0");
    }
    case "process":
      return a.id === (b as ProcessEntry).id;
    default:
      return a.name === (b as BridgeEntry | NetnsEntry | LinkEntry).name;
  }
}

function validate(data: unknown, file: string): StateData {
  const d = data as Partial<StateData> | null;
  if (
    !d ||
    d.version !== 1 ||
    typeof d.instance !== "string" ||
    !Array.isArray(d.resources) ||
    typeof d.pods !== "object" ||
    typeof d.nextLink !== "number"
  ) {
    throw new LocalMeshError(
      "LOCAL_STATE_CORRUPT",
      `${file} is not a tether local state file; remove it, then run \`tether local down --instance NAME\` to sweep by name`,
    );
  }
  validateInstance(d.instance);
  return { nextProcess: 0, serviceIps: {}, ...d } as StateData;
}

/** Reads the state in `dir`; undefined when there is none. */
export function readState(dir: string): StateData | undefined {
  const file = join(dir, STATE_FILE);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = null;
  }
  return validate(parsed, file);
}

export interface OpenStateOptions {
  dir: string;
  instance: string;
  podSubnet: string;
  serviceSubnet: string;
}

/** The writable state of one running substrate instance. Synchronous writes keep the order exact. */
export class StateStore {
  private closed = false;

  private constructor(
    readonly dir: string,
    private data: StateData,
  ) {}

  /**
   * Opens (creating) the state in `dir` and takes ownership. Refuses when another live runner
   * owns it, or when a dead runner left resources behind (run `down` first).
   */
  static open(options: OpenStateOptions): StateStore {
    validateInstance(options.instance);
    mkdirSync(options.dir, { recursive: true, mode: 0o700 });
    const existing = readState(options.dir);
    if (existing) {
      if (existing.owner && existing.owner.pid !== process.pid && isRunning(existing.owner)) {
        throw new LocalMeshError(
          "LOCAL_STATE_BUSY",
          `another tether local runner (pid ${existing.owner.pid}) uses ${options.dir}; stop it with \`tether local down --state-dir ${options.dir}\` or pass another --state-dir`,
        );
      }
      if (existing.resources.length > 0) {
        throw new LocalMeshError(
          "LOCAL_STATE_STALE",
          `${options.dir} records ${existing.resources.length} resources of a runner that is gone; run \`tether local down --state-dir ${options.dir}\` first`,
        );
      }
    }
    const owner = processIdentity(process.pid);
    const data: StateData = {
      version: 1,
      instance: options.instance,
      podSubnet: options.podSubnet,
      serviceSubnet: options.serviceSubnet,
      ...(owner ? { owner } : {}),
      nextLink: 0,
      nextProcess: 0,
      resources: [],
      pods: {},
      serviceIps: {},
    };
    const store = new StateStore(options.dir, data);
    store.flush();
    return store;
  }

  /**
   * Loads existing state without taking ownership or refusing anything: `down` uses it to remove
   * what a crashed (or stopped) runner recorded. Undefined when there is no state in `dir`.
   */
  static adopt(dir: string): StateStore | undefined {
    const data = readState(dir);
    return data ? new StateStore(dir, data) : undefined;
  }

  get owner(): ProcessId | undefined {
    return this.data.owner;
  }

  get instance(): string {
    return this.data.instance;
  }

  get podSubnet(): string {
    return this.data.podSubnet;
  }

  get serviceSubnet(): string {
    return this.data.serviceSubnet;
  }

  get file(): string {
    return join(this.dir, STATE_FILE);
  }

  snapshot(): StateData {
    return structuredClone(this.data);
  }

  resources(): readonly ResourceEntry[] {
    return this.data.resources;
  }

  pods(): Readonly<Record<string, PodRecord>> {
    return this.data.pods;
  }

  serviceIps(): Readonly<Record<string, string>> {
    return this.data.serviceIps;
  }

  has(entry: ResourceEntry): boolean {
    return this.data.resources.some((r) => sameResource(r, entry));
  }

  /** Records entries (and optional pod bookkeeping) in one write, before they are created. */
  record(entries: readonly ResourceEntry[], pod?: { name: string; record: PodRecord }): void {
    for (const entry of entries) {
      const i = this.data.resources.findIndex((r) => sameResource(r, entry));
      if (i >= 0) this.data.resources[i] = entry;
      else this.data.resources.push(entry);
    }
    if (pod) this.data.pods[pod.name] = pod.record;
    this.flush();
  }

  /** Forgets entries (after they are gone) and optionally a pod's bookkeeping. */
  forget(entries: readonly ResourceEntry[], podName?: string): void {
    this.data.resources = this.data.resources.filter((r) => !entries.some((e) => sameResource(r, e)));
    if (podName !== undefined) delete this.data.pods[podName];
    this.flush();
  }

  takeLinkIndex(): number {
    const index = this.data.nextLink++;
    this.flush();
    return index;
  }

  takeProcessId(): string {
    const id = `p${this.data.nextProcess++}`;
    this.flush();
    return id;
  }

  setServiceIp(key: string, ip: string): void {
    this.data.serviceIps[key] = ip;
    this.flush();
  }

  deleteServiceIp(key: string): void {
    delete this.data.serviceIps[key];
    this.flush();
  }

  /** Removes the state file (after `down` removed everything it lists); later writes are ignored. */
  remove(): void {
    this.close();
    rmSync(this.file, { force: true });
  }

  /** Stops writing: another store (down's) now owns the file. */
  close(): void {
    this.closed = true;
  }

  private flush(): void {
    if (this.closed) return;
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.data, null, 2) + "\n", { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}
