/**
 * The Certify decision and the issuance: token -> identity -> CSR -> certificate. No sockets: the
 * gRPC server is a thin adapter around `Certifier.certify`.
 */
import { randomFillSync } from "node:crypto";
import type { Clock } from "../core/clock.js";
import { IdentityNameError } from "../core/errors.js";
import { parseDnsName, toDnsName, toSpiffeId, type WorkloadIdentity } from "../identity/names.js";
import { buildLeaf } from "./certificate.js";
import { VerifiedCsrCache, checkCsr } from "./csr-policy.js";
import { invalidArgument, permissionDenied, unauthenticated } from "./errors.js";
import type { Issuer } from "./issuer.js";
import type { TokenValidator } from "./tokens.js";

export const MAX_TOKEN_BYTES = 16 * 1024;

export interface CertifierOptions {
  trustDomain: string;
  lifetimeMs: number;
  clockSkewMs: number;
  tokenValidator: TokenValidator;
  issuer: () => Issuer;
  clock: Clock;
  randomBytes?: (n: number) => Buffer;
}

export interface Issued {
  leafDer: Buffer;
  chainDer: Buffer[];
  notBefore: number;
  validUntil: number;
  identity: WorkloadIdentity;
}

/** Serial numbers from a pre-filled pool: one randomFillSync per 256 certificates instead of per certificate. */
export function pooledRandomBytes(poolSize = 4096): (n: number) => Buffer {
  const pool = Buffer.alloc(poolSize);
  let at = poolSize;
  return (n) => {
    if (n > poolSize) return randomFillSync(Buffer.alloc(n));
    if (at + n > poolSize) {
      randomFillSync(pool);
      at = 0;
    }
    const out = Buffer.from(pool.subarray(at, at + n));
    at += n;
    return out;
  };
}

/**
 * X.509 times carry whole seconds. Rounding the expiry up keeps a leaf valid for at least the
 * configured lifetime; truncating took up to a second, a fifth of a 5-second certificate.
 */
function wholeSecondAtOrAfter(ms: number): number {
  return Math.ceil(ms / 1000) * 1000;
}

export class Certifier {
  private readonly random: (n: number) => Buffer;
  private readonly verifiedCsrs = new VerifiedCsrCache();

  constructor(private readonly options: CertifierOptions) {
    this.random = options.randomBytes ?? pooledRandomBytes();
  }

  async certify(req: { identity: string; token: Buffer | string; csrDer: Buffer }): Promise<Issued> {
    const token = typeof req.token === "string" ? req.token : req.token.toString("utf8");
    if (token.length === 0) throw unauthenticated("TOKEN_MISSING", "the request carries no service-account token; mount a projected token with audience identity.tether.io");
    if (token.length > MAX_TOKEN_BYTES) throw unauthenticated("TOKEN_TOO_LARGE", `token is ${token.length} bytes; at most ${MAX_TOKEN_BYTES} are accepted`);
    const subject = await this.options.tokenValidator.validate(token, this.options.clock.now());

    let identity: WorkloadIdentity;
    try {
      identity = parseDnsName(req.identity);
    } catch (err) {
      if (err instanceof IdentityNameError) throw invalidArgument("IDENTITY_MALFORMED", `requested identity: ${err.message}`);
      throw err;
    }
    if (identity.trustDomain !== this.options.trustDomain) {
      throw permissionDenied("IDENTITY_WRONG_TRUST_DOMAIN", `requested identity ${req.identity} is in trust domain ${identity.trustDomain}; this CA issues for ${this.options.trustDomain}`);
    }
    if (identity.namespace !== subject.namespace || identity.serviceAccount !== subject.serviceAccount) {
      throw permissionDenied(
        "IDENTITY_MISMATCH",
        `token is for service account ${subject.serviceAccount} in namespace ${subject.namespace}, but the request asks for ${req.identity}; a workload can only get a certificate for its own service account`,
      );
    }
    const dnsName = toDnsName(identity);
    const spiffeId = toSpiffeId(identity);
    const accepted = checkCsr(req.csrDer, { identity, dnsName, spiffeId }, this.verifiedCsrs);
    return this.issue(identity, accepted.spki, accepted.keyBits);
  }

  /** Signs a leaf for an identity and key that have already been checked. */
  issue(identity: WorkloadIdentity, spki: Buffer, keyBits: Buffer): Issued {
    const issuer = this.options.issuer();
    const now = this.options.clock.now();
    const notBefore = now - this.options.clockSkewMs;
    // A leaf never outlives its issuer: verifiers would reject it after the issuer expires anyway.
    const validUntil = Math.min(wholeSecondAtOrAfter(now + this.options.lifetimeMs), issuer.notAfter);
    const leafDer = buildLeaf(issuer.signer, {
      spki,
      keyBits,
      dnsName: toDnsName(identity),
      spiffeId: toSpiffeId(identity),
      notBefore,
      notAfter: validUntil,
      serial: this.random(16),
    });
    return { leafDer, chainDer: issuer.chainDer, notBefore, validUntil: Math.floor(validUntil / 1000) * 1000, identity };
  }
}
