/**
 * The workload's certificate agent. It generates an ECDSA P-256 key that never leaves the
 * process, asks the CA for a certificate with the pod's projected token (re-read before every
 * call, since kubelet rotates it), renews at 70% of the lifetime with jitter, retries with capped
 * exponential backoff, and keeps the current certificate until it expires. Listeners swap TLS
 * contexts on 'certificate'; readiness is "holds an unexpired certificate".
 *
 * Events: 'certificate' (Credentials), 'expired' (Credentials), 'failure' (error, retryInMs).
 */
import { EventEmitter } from "node:events";
import { readFile } from "node:fs/promises";
import { X509Certificate, generateKeyPairSync, type KeyObject } from "node:crypto";
import { Backoff } from "./backoff.js";
import type { Clock, TimerHandle } from "./clock.js";
import { buildCsr } from "./csr.js";
import { CertificateError, errorCode, errorMessage } from "./errors.js";
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
  /** Counts certify attempts, so the answer to an abandoned one is ignored. */
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

  /**
   * How long one request may take: a hung request must not outlive the certificate, so while we
   * hold one the wait is capped at a third of its remaining validity (at least a second).
   */
  private attemptTimeoutMs(): number {
    const cap = this.options.attemptTimeoutMs ?? 10_000;
    const creds = this.creds;
    if (!creds) return cap;
    return Math.max(1000, Math.min(cap, (creds.notAfter - this.options.clock.now()) / 3));
  }

  private async attempt(): Promise<void> {
    const attempt = ++this.attempts;
    let timer: TimerHandle | undefined;
    try {
      const token = await readFile(this.options.tokenFile);
      const timeoutMs = this.attemptTimeoutMs();
      const timedOut = new Promise<never>((_, reject) => {
        timer = this.options.clock.setTimeout(
          () => reject(new CertificateError("AGENT_CERTIFY_TIMEOUT", `the identity CA did not answer within ${Math.round(timeoutMs)} ms`)),
          timeoutMs,
        );
      });
      const result = await Promise.race([this.options.certify({ identity: this.dnsName, token, csrDer: this.csrDer }), timedOut]);
      // A late answer to an attempt we already gave up on is not installed.
      if (!this.running || attempt !== this.attempts) return;
      this.install(result);
    } catch (err) {
      if (!this.running || attempt !== this.attempts) return;
      const retryIn = this.backoff.next();
      this.log.warn({ err: { code: errorCode(err), message: errorMessage(err) }, retryInMs: retryIn, identity: this.dnsName }, "certificate request failed");
      this.emit("failure", err, retryIn);
      this.schedule(retryIn);
    } finally {
      if (timer) this.options.clock.clearTimeout(timer);
    }
  }

  /** Checks that the CA returned a certificate for our key and identity, then makes it current. */
  private install(result: CertifyResult): void {
    const leaf = new X509Certificate(result.leafDer);
    if (!leaf.checkPrivateKey(this.privateKey)) throw new CertificateError("AGENT_WRONG_KEY", "the CA returned a certificate for a different key");
    const identity = certificateIdentity(leaf);
    if (!identity || !sameIdentity(identity, this.options.identity)) {
      throw new CertificateError("AGENT_WRONG_IDENTITY", `the CA returned a certificate for ${identity ? toDnsName(identity) : "no identity"}, expected ${this.dnsName}`);
    }
    const now = this.options.clock.now();
    const notAfter = certNotAfter(leaf);
    if (notAfter <= now) throw new CertificateError("AGENT_EXPIRED_CERT", `the CA returned a certificate that expired at ${leaf.validTo}`);
    const creds: Credentials = {
      identity: this.options.identity,
      dnsName: this.dnsName,
      keyPem: this.keyPem,
      certChainPem: [result.leafDer, ...result.chainDer].map((d) => pemEncode("CERTIFICATE", d)).join(""),
      notBefore: certNotBefore(leaf),
      notAfter,
    };
    this.creds = creds;
    this.backoff.reset();
    const remaining = notAfter - now;
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
