/**
 * Turns issuer material (cert-manager's `tls.crt`, `tls.key`, and the trust anchors) into a
 * validated, ready-to-sign issuer. Pure: text in, an Issuer or an IssuerError that says exactly
 * what is wrong out.
 */
import { createHash, createPrivateKey, type KeyObject, type X509Certificate } from "node:crypto";
import { CertificateError, type CodeOf } from "../core/errors.js";
import { buildPath, notAfter, notBefore, parseCertificates } from "../identity/chain.js";
import { keyIdentifier, readCertificateParts } from "../identity/pkix.js";
import { leafSigner, type LeafSigner } from "./certificate.js";
import { IssuerError } from "./errors.js";

export interface IssuerMaterial {
  /** `tls.crt`: the issuer certificate, optionally followed by its chain. */
  certPem: string;
  /** `tls.key`: PKCS#8, SEC1 or PKCS#1 PEM. */
  keyPem: string;
  /** The trust-anchor bundle (`ca.crt` or a separate file). */
  anchorsPem: string;
}

export interface Issuer {
  cert: X509Certificate;
  /** Issuer first, then any intermediates up to (not including) the anchor, as DER. */
  chainDer: Buffer[];
  anchors: X509Certificate[];
  anchorsPem: string;
  signer: LeafSigner;
  notBefore: number;
  notAfter: number;
  /** Earliest expiry among the anchors. */
  anchorsNotAfter: number;
  /** Identifies this material (certificate + key + anchors) to tell a real change from a no-op reload. */
  fingerprint: string;
  subject: string;
}

export function materialFingerprint(m: IssuerMaterial): string {
  return createHash("sha256").update(m.certPem).update("\0").update(m.keyPem).update("\0").update(m.anchorsPem).digest("hex");
}

function fail(code: CodeOf<"IssuerError">, message: string, cause?: unknown): never {
  throw new IssuerError(code, message, cause === undefined ? undefined : { cause });
}

export function loadIssuer(m: IssuerMaterial, now: number): Issuer {
  let chain: X509Certificate[];
  let anchors: X509Certificate[];
  try {
    chain = parseCertificates(m.certPem, "issuer certificate (tls.crt)");
  } catch (err) {
    fail("ISSUER_BAD_CERT", (err as Error).message, err);
  }
  try {
    anchors = parseCertificates(m.anchorsPem, "trust anchors");
  } catch (err) {
    fail("ANCHORS_BAD", `${(err as Error).message}; give a PEM bundle of one or more root certificates`, err);
  }
  const cert = chain[0]!;
  const subject = cert.subject.replace(/\n/g, ", ");
  let key: KeyObject;
  try {
    key = createPrivateKey(m.keyPem);
  } catch (err) {
    fail("ISSUER_BAD_KEY", `issuer key (tls.key) cannot be read: ${(err as Error).message}; expected a PEM private key (PKCS#8, SEC1 or PKCS#1)`, err);
  }
  if (!cert.ca) fail("ISSUER_NOT_CA", `issuer certificate ${subject} is not a CA (basicConstraints CA:TRUE missing); cert-manager's Certificate needs isCA: true`);
  if (!cert.checkPrivateKey(key)) fail("ISSUER_KEY_MISMATCH", `issuer key (tls.key) does not match the issuer certificate ${subject}`);
  const from = notBefore(cert);
  const until = notAfter(cert);
  if (now < from) fail("ISSUER_NOT_YET_VALID", `issuer certificate ${subject} is not valid before ${cert.validFrom}`);
  if (now >= until) fail("ISSUER_EXPIRED", `issuer certificate ${subject} expired at ${cert.validTo}; renew it (cert-manager renews before expiry when renewBefore is set)`);
  try {
    buildPath(chain, anchors, now);
  } catch (err) {
    const reason = err instanceof CertificateError ? err.message : String(err);
    fail("ISSUER_UNTRUSTED", `issuer certificate ${subject} does not chain to a valid trust anchor: ${reason}`, err);
  }
  const anchorPrints = new Set(anchors.map((a) => a.fingerprint256));
  const parts = readCertificateParts(cert.raw);
  let signer: LeafSigner;
  try {
    signer = leafSigner({ issuerName: parts.subject, issuerKeyId: parts.subjectKeyId ?? keyIdentifier(parts.spki.keyBits), key });
  } catch (err) {
    fail("ISSUER_BAD_KEY", `issuer key cannot sign: ${(err as Error).message}`, err);
  }
  return {
    cert,
    chainDer: chain.filter((c) => !anchorPrints.has(c.fingerprint256)).map((c) => c.raw),
    anchors,
    anchorsPem: m.anchorsPem,
    signer,
    notBefore: from,
    notAfter: until,
    anchorsNotAfter: Math.min(...anchors.map(notAfter)),
    fingerprint: materialFingerprint(m),
    subject,
  };
}
