/**
 * The workload's certificate agent. It generates an ECDSA P-256 key that never leaves the
 * process, asks the CA for a certificate with the pod's projected token (re-read before every
 * call, since kubelet rotates it), renews at 70% of the lifetime with jitter, retries with capped
 * exponential backoff, and keeps the current certificate until it expires. Listeners swap TLS
 * contexts on 'certificate'; readiness is "holds an unexpired certificate".
 *
 * While it holds a certificate, no wait (for one certify call, or before the next try) takes more
 * than a third of the validity left, so certificates of a few seconds still get several tries
 * before they expire; and an answer that comes after the agent stopped waiting is still installed
 * if it outlives the certificate in hand.
 *
 * Events: 'certificate' (Credentials), 'expired' (Credentials), 'failure' (error, retryInMs).
 */
import { EventEmitter } from "node:events";
import { readFile } from "node:fs/promises";
import { X509Certificate, generateKeyPairSync, type KeyObject } from "node:crypto";
import { Backoff } from "../core/backoff.js";
import type { Clock, TimerHandle } from "../core/clock.js";
import { buildCsr } from "./csr.js";
import { CertificateError, errorCode, errorMessage } from "../core/errors.js";
import { certificateIdentity, notAfter as certNotAfter, notBefore as certNotBefore } from "./chain.js";
import { sameIdentity, toDnsName, toSpiffeId, type WorkloadIdentity } from "./names.js";
import { pemEncode } from "./pkix.js";
import type { Credentials } from "./tls.js";

export interface CertifyCall {
  identity: string;
  token: Buffer;
  csrDer: Buffer;
}

export interface CertifyResult {
  leafDer: Buffer;
  chainDer: Buffer[];
  validUntil: number;
}

/** The subset of a pino logger the agent uses. */
export interface AgentLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface CertificateAgentOptions {
  identity: WorkloadIdentity;
  tokenFile: string;
  certify: (req: CertifyCall) => Promise<CertifyResult>;
  clock: Clock;
  random?: () => number;
  /** Fraction of the lifetime after which to renew (default 0.7). */
  renewAt?: number;
  /** Renewal time varies by +/- this fraction of the renewal delay (default 0.1). */
  jitter?: number;
  backoff?: { initialMs: number; maxMs: number };
  /** Longest wait for one certify call (default 10 s; less when the current certificate is close to expiry). */
  attemptTimeoutMs?: number;
  logger?: AgentLogger;
}

const silent: AgentLogger = { info() {}, warn() {} };

/** Node fires timers longer than 2^31-1 ms at once; longer waits are split into re-armed steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The largest share of the remaining validity that one wait may take. A renewal at 70% of a
 * 5-second certificate starts with about 1.5 s to go: neither a 1 s attempt floor nor a 1-60 s
 * backoff fits in that, a third of it does, and leaves room for more tries.
 */
const SHARE_OF_REMAINING = 1 / 3;

/** The shortest wait, so that a CA refusing at once is not hammered in a certificate's last moments. */
const MIN_WAIT_MS = 100;

const CERTIFY_TIMEOUT = "AGENT_CERTIFY_TIMEOUT";

export class CertificateAgent extends EventEmitter {
  readonly dnsName: string;
  private readonly privateKey: KeyObject;
  private readonly keyPem: string;
  private readonly csrDer: Buffer;
  private readonly backoff: Backoff;
  private readonly random: () => number;
  private readonly log: AgentLogger;
  private creds: Credentials | undefined;
  private renewTimer: TimerHandle | undefined;
  /** Counts certify attempts, to tell the one the agent waits for from abandoned ones (see acceptLateAnswer). */
  private attempts = 0;
  private expiryTimer: TimerHandle | undefined;
  private running = false;
  private inFlight: Promise<void> | undefined;

  constructor(private readonly options: CertificateAgentOptions) {
    super();
    this.dnsName = toDnsName(options.identity);
    this.random = options.random ?? Math.random;
    this.log = options.logger ?? silent;
    this.backoff = new Backoff({ ...(options.backoff ?? { initialMs: 1000, maxMs: 60_000 }), random: this.random });
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    this.privateKey = privateKey;
    this.keyPem = privateKey.export({ format: "pem", type: "pkcs8" }).toString();
    // One key per process, so one CSR serves every renewal.
    this.csrDer = buildCsr({ privateKey, publicKey, dnsName: this.dnsName, spiffeId: toSpiffeId(options.identity) });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  stop(): void {
    this.running = false;
    this.clearTimer("renewTimer");
    this.clearTimer("expiryTimer");
  }

  current(): Credentials | undefined {
    const creds = this.creds;
    return creds && this.options.clock.now() < creds.notAfter ? creds : undefined;
  }

  isReady(): boolean {
    return this.current() !== undefined;
  }

  /** Resolves when the attempt under way (if any) has finished; for tests and orderly shutdown. */
  async settled(): Promise<void> {
    while (this.inFlight) await this.inFlight;
  }

  private clearTimer(which: "renewTimer" | "expiryTimer"): void {
    const handle = this[which];
    if (handle) this.options.clock.clearTimeout(handle);
    this[which] = undefined;
  }

  /** Runs `fn` at clock time `at`, splitting waits that exceed the timer limit. */
  private at(which: "renewTimer" | "expiryTimer", at: number, fn: () => void): void {
    this.clearTimer(which);
    const wait = Math.max(0, at - this.options.clock.now());
    this[which] = this.options.clock.setTimeout(
      () => {
        this[which] = undefined;
        if (this.options.clock.now() < at) this.at(which, at, fn);
        else fn();
      },
      Math.min(wait, MAX_TIMER_MS),
    );
  }

  private schedule(delayMs: number): void {
    this.at("renewTimer", this.options.clock.now() + Math.max(0, delayMs), () => {
      this.inFlight = this.attempt().finally(() => {
        this.inFlight = undefined;
      });
    });
  }

  /** How long the certificate in hand stays valid, or undefined when there is none (or it has expired). */
  private remainingMs(): number | undefined {
    const creds = this.current();
    return creds ? creds.notAfter - this.options.clock.now() : undefined;
  }

  /** A wait of at most a third of the validity left (but at least MIN_WAIT_MS) while a certificate is held. */
  private fitBeforeExpiry(waitMs: number): number {
    const remaining = this.remainingMs();
    if (remaining === undefined) return waitMs;
    return Math.min(waitMs, Math.max(MIN_WAIT_MS, Math.round(remaining * SHARE_OF_REMAINING)));
  }

  /** How long one request may take: a hung request must not outlive the certificate. */
  private attemptTimeoutMs(): number {
    return this.fitBeforeExpiry(this.options.attemptTimeoutMs ?? 10_000);
  }

  /** The pause before the next try: the backoff, but never so long that the certificate expires meanwhile. */
  private retryDelayMs(): number {
    return this.fitBeforeExpiry(this.backoff.next());
  }

  private async attempt(): Promise<void> {
    const attempt = ++this.attempts;
    const held = this.creds;
    const request = this.request();
    let timer: TimerHandle | undefined;
    try {
      const timeoutMs = this.attemptTimeoutMs();
      const timedOut = new Promise<never>((_, reject) => {
        timer = this.options.clock.setTimeout(
          () => reject(new CertificateError(CERTIFY_TIMEOUT, `the identity CA did not answer within ${timeoutMs} ms`)),
          timeoutMs,
        );
      });
      const result = await Promise.race([request, timedOut]);
      if (this.isCurrent(attempt)) this.install(this.verify(result));
    } catch (err) {
      if (errorCode(err) === CERTIFY_TIMEOUT) this.acceptLateAnswer(request);
      // A late answer to an earlier attempt may have renewed the certificate meanwhile: nothing to retry.
      if (!this.isCurrent(attempt) || this.creds !== held) return;
      this.retryAfter(err);
    } finally {
      if (timer) this.options.clock.clearTimeout(timer);
    }
  }

  /** Whether the agent is still waiting for this attempt (not stopped, no newer attempt begun). */
  private isCurrent(attempt: number): boolean {
    return this.running && attempt === this.attempts;
  }

  private async request(): Promise<CertifyResult> {
    const token = await readFile(this.options.tokenFile);
    return this.options.certify({ identity: this.dnsName, token, csrDer: this.csrDer });
  }

  private retryAfter(err: unknown): void {
    const retryIn = this.retryDelayMs();
    this.log.warn({ err: { code: errorCode(err), message: errorMessage(err) }, retryInMs: retryIn, identity: this.dnsName }, "certificate request failed");
    this.emit("failure", err, retryIn);
    this.schedule(retryIn);
  }

  /**
   * A CA slower than the agent's patience (a starved machine) may still answer, often before any
   * retry does; such an answer is installed if it outlives the certificate in hand. Its failure
   * needs nothing: the retry was scheduled when the agent stopped waiting.
   */
  private acceptLateAnswer(request: Promise<CertifyResult>): void {
    request.then(
      (result) => {
        if (!this.running) return;
        try {
          const creds = this.verify(result);
          if (this.creds && creds.notAfter <= this.creds.notAfter) return;
          this.log.info({ identity: this.dnsName }, "late answer from the identity CA");
          this.install(creds);
        } catch (err) {
          this.log.warn({ err: { code: errorCode(err), message: errorMessage(err) }, identity: this.dnsName }, "late answer from the identity CA refused");
        }
      },
      () => {},
    );
  }

  /** Checks that the CA returned an unexpired certificate for our key and identity. */
  private verify(result: CertifyResult): Credentials {
    const leaf = new X509Certificate(result.leafDer);
    if (!leaf.checkPrivateKey(this.privateKey)) throw new CertificateError("AGENT_WRONG_KEY", "the CA returned a certificate for a different key");
    const identity = certificateIdentity(leaf);
    if (!identity || !sameIdentity(identity, this.options.identity)) {
      throw new CertificateError("AGENT_WRONG_IDENTITY", `the CA returned a certificate for ${identity ? toDnsName(identity) : "no identity"}, expected ${this.dnsName}`);
    }
    const notAfter = certNotAfter(leaf);
    if (notAfter <= this.options.clock.now()) throw new CertificateError("AGENT_EXPIRED_CERT", `the CA returned a certificate that expired at ${leaf.validTo}`);
    return {
      identity: this.options.identity,
      dnsName: this.dnsName,
      keyPem: this.keyPem,
      certChainPem: [result.leafDer, ...result.chainDer].map((d) => pemEncode("CERTIFICATE", d)).join(""),
      notBefore: certNotBefore(leaf),
      notAfter,
    };
  }

  /** Makes the credentials current and times their renewal and expiry from their notAfter. */
  private install(creds: Credentials): void {
    const { notAfter } = creds;
    this.creds = creds;
    this.backoff.reset();
    const remaining = notAfter - this.options.clock.now();
    const jitter = this.options.jitter ?? 0.1;
    const renewIn = remaining * (this.options.renewAt ?? 0.7) * (1 + jitter * (2 * this.random() - 1));
    this.schedule(renewIn);
    this.at("expiryTimer", notAfter, () => {
      if (this.creds !== creds) return;
      this.log.warn({ identity: this.dnsName, notAfter: new Date(notAfter).toISOString() }, "certificate expired without renewal; not ready");
      this.emit("expired", creds);
    });
    this.log.info({ identity: this.dnsName, notAfter: new Date(notAfter).toISOString(), renewInMs: Math.round(renewIn) }, "certificate installed");
    this.emit("certificate", creds);
  }
}
