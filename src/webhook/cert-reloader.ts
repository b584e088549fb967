/**
 * The webhook's serving certificate comes from a cert-manager Secret mounted as a volume; the
 * kubelet swaps it atomically (the `..data` symlink) when cert-manager renews it. The reloader
 * notices (directory watch, plus a poll because symlink swaps are not always reported), checks
 * the new pair, and hands it over; a bad pair is refused and the old one stays in service.
 */
import { readFileSync, watch, type FSWatcher } from "node:fs";
import { dirname } from "node:path";
import { X509Certificate, createPrivateKey } from "node:crypto";
import type { Logger } from "pino";
import { CertificateError, errorMessage } from "../core/errors.js";
import type { Clock, TimerHandle } from "../core/clock.js";

export interface ServingPair {
  cert: string;
  key: string;
  notAfter: Date;
}

/** Reads and checks a PEM pair: parses, key matches certificate, currently valid. */
export function loadServingPair(certFile: string, keyFile: string, now: number): ServingPair {
  let cert: string;
  let key: string;
  try {
    cert = readFileSync(certFile, "utf8");
    key = readFileSync(keyFile, "utf8");
  } catch (err) {
    throw new CertificateError("WEBHOOK_CERT_UNREADABLE", `cannot read the serving certificate or key: ${errorMessage(err)}`);
  }
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new CertificateError("WEBHOOK_CERT_MALFORMED", `${certFile} is not a PEM certificate: ${errorMessage(err)}`);
  }
  let matches = false;
  try {
    matches = x509.checkPrivateKey(createPrivateKey(key));
  } catch (err) {
    throw new CertificateError("WEBHOOK_KEY_MALFORMED", `${keyFile} is not a PEM private key: ${errorMessage(err)}`);
  }
  if (!matches) throw new CertificateError("WEBHOOK_KEY_MISMATCH", `${keyFile} is not the key of the certificate in ${certFile}`);
  const notAfter = new Date(x509.validTo);
  if (notAfter.getTime() <= now || new Date(x509.validFrom).getTime() > now) {
    throw new CertificateError("WEBHOOK_CERT_NOT_VALID_NOW", `the certificate in ${certFile} is valid from ${x509.validFrom} to ${x509.validTo}, not now`);
  }
  return { cert, key, notAfter };
}

export interface CertReloaderOptions {
  certFile: string;
  keyFile: string;
  clock: Clock;
  log: Logger;
  /** Called with each new valid pair (not with the initial one). */
  onChange: (pair: ServingPair) => void;
  onRefused?: (err: unknown) => void;
  pollMs?: number;
}

export class CertReloader {
  private current: ServingPair;
  private watcher: FSWatcher | undefined;
  private timer: TimerHandle | undefined;
  private debounce: TimerHandle | undefined;
  private stopped = false;
  /** The last refusal's message: the same broken files are reported once, not on every poll. */
  private lastRefusal: string | undefined;

  constructor(private readonly options: CertReloaderOptions) {
    this.current = loadServingPair(options.certFile, options.keyFile, options.clock.now());
  }

  get pair(): ServingPair {
    return this.current;
  }

  /** Re-reads the files; returns true when a new pair was taken into service. */
  check(): boolean {
    const { certFile, keyFile, clock, log } = this.options;
    let next: ServingPair;
    try {
      next = loadServingPair(certFile, keyFile, clock.now());
    } catch (err) {
      const message = errorMessage(err);
      if (message !== this.lastRefusal) {
        this.lastRefusal = message;
        log.error({ err: errorMessage(err) }, "new webhook serving certificate refused; keeping the current one");
        this.options.onRefused?.(err);
      }
      return false;
    }
    this.lastRefusal = undefined;
    if (next.cert === this.current.cert && next.key === this.current.key) return false;
    this.current = next;
    log.info({ notAfter: next.notAfter.toISOString() }, "webhook serving certificate reloaded");
    this.options.onChange(next);
    return true;
  }

  start(): void {
    const { clock } = this.options;
    const soon = () => {
      // A swap touches several entries; read once they have settled.
      if (this.debounce) clock.clearTimeout(this.debounce);
      this.debounce = clock.setTimeout(() => this.check(), 100);
    };
    try {
      this.watcher = watch(dirname(this.options.certFile), soon);
      this.watcher.on("error", () => undefined);
    } catch {
      // No inotify (some sandboxes): the poll below still picks changes up.
    }
    const poll = () => {
      if (this.stopped) return;
      this.check();
      this.timer = clock.setTimeout(poll, this.options.pollMs ?? 10_000);
    };
    this.timer = clock.setTimeout(poll, this.options.pollMs ?? 10_000);
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    if (this.debounce) this.options.clock.clearTimeout(this.debounce);
  }
}
