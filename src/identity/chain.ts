/**
 * Certificate chains: parsing PEM bundles, walking a leaf up to a trust anchor (validity, CA flag,
 * signatures), and reading the tether identity a certificate carries (URI SAN first, DNS SAN
 * second). Built on node's X509Certificate, so the checks are OpenSSL's.
 */
import { X509Certificate } from "node:crypto";
import { CertificateError, IdentityNameError } from "../core/errors.js";
import { parseDnsName, parseSpiffeId, type WorkloadIdentity } from "./names.js";

export function parseCertificates(pem: string | Buffer, what = "certificate bundle"): X509Certificate[] {
  const text = pem.toString();
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new CertificateError("CERT_MALFORMED", `${what} contains no PEM CERTIFICATE block`);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new CertificateError("CERT_MALFORMED", `${what}: certificate #${i + 1} cannot be parsed: ${(err as Error).message}`);
    }
  });
}

export function notBefore(cert: X509Certificate): number {
  return Date.parse(cert.validFrom);
}

export function notAfter(cert: X509Certificate): number {
  return Date.parse(cert.validTo);
}

/** Node renders SANs as `DNS:a, URI:b`, quoting entries that contain special characters as JSON strings. */
export function parseSubjectAltNames(text: string | undefined): { dns: string[]; uri: string[] } {
  const out = { dns: [] as string[], uri: [] as string[] };
  if (!text) return out;
  const re = /(DNS|URI|[A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;
  for (const m of text.matchAll(re)) {
    const value = m[2]!.startsWith('"') ? (JSON.parse(m[2]!) as string) : m[2]!;
    if (m[1] === "DNS") out.dns.push(value);
    else if (m[1] === "URI") out.uri.push(value);
  }
  return out;
}

/** The identity named by a SAN list: the first parseable SPIFFE URI, else the first tether DNS name. */
export function identityFromSans(sans: { dns: string[]; uri: string[] }): WorkloadIdentity | undefined {
  for (const uri of sans.uri) {
    try {
      return parseSpiffeId(uri);
    } catch (err) {
      if (!(err instanceof IdentityNameError)) throw err;
    }
  }
  for (const dns of sans.dns) {
    try {
      return parseDnsName(dns);
    } catch (err) {
      if (!(err instanceof IdentityNameError)) throw err;
    }
  }
  return undefined;
}

export function certificateIdentity(cert: X509Certificate): WorkloadIdentity | undefined {
  return identityFromSans(parseSubjectAltNames(cert.subjectAltName));
}

function checkValidity(cert: X509Certificate, now: number, role: string): void {
  if (now < notBefore(cert)) throw new CertificateError("CERT_NOT_YET_VALID", `${role} (${cert.subject.replace(/\n/g, ", ")}) is not valid before ${cert.validFrom}; check the clocks`);
  if (now > notAfter(cert)) throw new CertificateError("CERT_EXPIRED", `${role} (${cert.subject.replace(/\n/g, ", ")}) expired at ${cert.validTo}`);
}

const signedBy = (child: X509Certificate, parent: X509Certificate): boolean => parent.ca && child.checkIssued(parent) && child.verify(parent.publicKey);

/**
 * The path from `chain[0]` through the other certificates of `chain` to one of `anchors`
 * (anchor included). Every certificate on it must be valid at `now`; issuers must be CAs.
 */
export function buildPath(chain: X509Certificate[], anchors: X509Certificate[], now: number): X509Certificate[] {
  const first = chain[0];
  if (!first) throw new CertificateError("CERT_MALFORMED", "empty certificate chain");
  if (anchors.length === 0) throw new CertificateError("CERT_NO_ANCHORS", "no trust anchors given");
  const path = [first];
  let current = first;
  checkValidity(current, now, "certificate");
  for (let depth = 0; depth < 8; depth++) {
    const same = anchors.find((a) => a.fingerprint256 === current.fingerprint256);
    if (same) return path;
    const anchor = anchors.find((a) => signedBy(current, a));
    if (anchor) {
      checkValidity(anchor, now, "trust anchor");
      path.push(anchor);
      return path;
    }
    const parent = chain.find((c) => !path.includes(c) && signedBy(current, c));
    if (!parent) break;
    checkValidity(parent, now, "intermediate");
    path.push(parent);
    current = parent;
  }
  throw new CertificateError(
    "CERT_UNTRUSTED",
    `certificate ${first.subject.replace(/\n/g, ", ")} (issued by ${current.issuer.replace(/\n/g, ", ")}) does not chain to any trust anchor; check that the issuer was signed by an anchor in the bundle`,
  );
}

/** Verifies leaf + intermediates against the anchors at `now` and returns the leaf's identity. */
export function verifyChain(leafAndIntermediatesPem: string | Buffer, anchorsPem: string | Buffer, now: number): WorkloadIdentity {
  const chain = parseCertificates(leafAndIntermediatesPem, "certificate chain");
  const anchors = parseCertificates(anchorsPem, "trust anchors");
  buildPath(chain, anchors, now);
  const leaf = chain[0]!;
  if (leaf.ca) throw new CertificateError("CERT_IS_CA", "the leaf certificate is a CA; workload certificates must have CA:FALSE");
  const identity = certificateIdentity(leaf);
  if (!identity) throw new CertificateError("CERT_NO_IDENTITY", `the certificate carries no tether identity (SANs: ${leaf.subjectAltName ?? "none"})`);
  return identity;
}
