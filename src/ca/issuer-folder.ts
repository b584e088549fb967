/**
 * The issuer source: a folder in cert-manager's Secret layout (`tls.crt`, `tls.key`, `ca.crt`),
 * possibly mounted by Kubernetes with the `..data` symlink swap. It watches the folder (fs.watch
 * plus a slow poll, because inotify on symlink swaps is not reliable everywhere), validates any
 * new material, and only then makes it current; a bad update leaves the old issuer in service.
 * Requests read `current()` once, so a swap never affects a request half-way.
 */
import { EventEmitter } from "node:events";
import { watch, type FSWatcher } from "node:fs";
import { readFile, realpath } from "node:fs/promises";
import { join } from "node:path";
import type { Clock } from "../core/clock.js";
import { errorCode, errorMessage } from "../core/errors.js";
import { IssuerError } from "./errors.js";
import { loadIssuer, materialFingerprint, type Issuer, type IssuerMaterial } from "./issuer.js";

/** Where the issuer comes from; a folder today, a Kubernetes Secret could be another. */
export interface IssuerSource extends EventEmitter {
  current(): Issuer;
  close(): void;
}

export interface IssuerFolderOptions {
  dir: string;
  /** Trust-anchor bundle; defaults to the folder's `ca.crt`. */
  anchorsPath?: string;
  clock: Clock;
  pollMs?: number;
}

/** Reads the three files from one consistent version of the folder (resolving `..data` once). */
export async function readIssuerFolder(dir: string, anchorsPath?: string): Promise<IssuerMaterial> {
  const base = await realpath(join(dir, "..data")).catch(() => dir);
  const read = async (path: string, what: string): Promise<string> => {
    try {
      return await readFile(path, "utf8");
    } catch (err) {
      throw new IssuerError("ISSUER_FILE_MISSING", `cannot read ${what} at ${path}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}; the folder must hold tls.crt, tls.key and ca.crt (a kubernetes.io/tls Secret from cert-manager)`);
    }
  };
  const [certPem, keyPem, anchorsPem] = await Promise.all([
    read(join(base, "tls.crt"), "the issuer certificate"),
    read(join(base, "tls.key"), "the issuer key"),
    read(anchorsPath ?? join(base, "ca.crt"), "the trust anchors"),
  ]);
  return { certPem, keyPem, anchorsPem };
}

/** Loads and validates once; throws IssuerError saying what is wrong (used at start-up). */
export async function loadIssuerFolder(dir: string, anchorsPath: string | undefined, now: number): Promise<Issuer> {
  return loadIssuer(await readIssuerFolder(dir, anchorsPath), now);
}

export type ReloadResult = { result: "success"; issuer: Issuer } | { result: "error"; code: string; message: string } | { result: "unchanged" };

export class FolderIssuerSource extends EventEmitter implements IssuerSource {
  private active: Issuer;
  private lastRefused: string | undefined;
  private watcher: FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private reloading: Promise<ReloadResult> | undefined;
  private again = false;

  private constructor(private readonly options: IssuerFolderOptions, initial: Issuer) {
    super();
    this.active = initial;
  }

  /** Loads the folder (throwing if unusable) and starts watching it. */
  static async open(options: IssuerFolderOptions): Promise<FolderIssuerSource> {
    const source = new FolderIssuerSource(options, await loadIssuerFolder(options.dir, options.anchorsPath, options.clock.now()));
    source.startWatching();
    return source;
  }

  current(): Issuer {
    return this.active;
  }

  private startWatching(): void {
    const trigger = (): void => void this.reload();
    try {
      this.watcher = watch(this.options.dir, trigger);
      this.watcher.on("error", () => undefined);
    } catch {
      this.watcher = undefined;
    }
    this.poll = setInterval(trigger, this.options.pollMs ?? 5000);
    this.poll.unref();
  }

  /**
   * Re-reads the folder; emits 'reload' with the outcome. Concurrent triggers coalesce into at
   * most one follow-up read, so a burst of fs events costs two reads.
   */
  async reload(): Promise<ReloadResult> {
    if (this.reloading) {
      this.again = true;
      return this.reloading;
    }
    this.reloading = this.reloadOnce();
    try {
      let outcome = await this.reloading;
      while (this.again) {
        this.again = false;
        this.reloading = this.reloadOnce();
        outcome = await this.reloading;
      }
      return outcome;
    } finally {
      this.reloading = undefined;
    }
  }

  private async reloadOnce(): Promise<ReloadResult> {
    let material: IssuerMaterial;
    try {
      material = await readIssuerFolder(this.options.dir, this.options.anchorsPath);
    } catch (err) {
      return this.refuse(errorCode(err), errorMessage(err), "read");
    }
    const print = materialFingerprint(material);
    if (print === this.active.fingerprint || print === this.lastRefused) return { result: "unchanged" };
    try {
      const issuer = loadIssuer(material, this.options.clock.now());
      this.active = issuer;
      this.lastRefused = undefined;
      const outcome: ReloadResult = { result: "success", issuer };
      this.emit("reload", outcome);
      return outcome;
    } catch (err) {
      this.lastRefused = print;
      return this.refuse(errorCode(err), errorMessage(err), print);
    }
  }

  private refuse(code: string, message: string, key: string): ReloadResult {
    const outcome: ReloadResult = { result: "error", code, message };
    // A missing file mid-swap is reported each time; content refusals once per version.
    if (key === "read" && this.lastRefused === `read:${code}`) return outcome;
    if (key === "read") this.lastRefused = `read:${code}`;
    this.emit("reload", outcome);
    return outcome;
  }

  close(): void {
    this.watcher?.close();
    if (this.poll) clearInterval(this.poll);
  }
}
