/**
 * What a workload may ask for: a CSR for exactly its own identity, with an ECDSA P-256 key,
 * self-signed with ECDSA-SHA256, and nothing else (no CA, no other names, no other extensions).
 * Pure: bytes in, the key to certify or a CertifyError out.
 */
import { createHash } from "node:crypto";
import { parseCsr, verifyCsrSignature, type ParsedCsr } from "../identity/csr.js";
import { TAG, children, readBoolean, readOnly } from "../identity/der.js";
import { parseIdentity, sameIdentity, type WorkloadIdentity } from "../identity/names.js";
import { OID, OID_NAMES, readGeneralNames } from "../identity/pkix.js";
import { CertifyError, invalidArgument, permissionDenied } from "./errors.js";

export const MAX_CSR_BYTES = 4096;

export interface CsrExpectation {
  identity: WorkloadIdentity;
  dnsName: string;
  spiffeId: string;
}

export interface AcceptedCsr {
  spki: Buffer;
  keyBits: Buffer;
}

const describeOid = (id: string): string => (OID_NAMES[id] ? `${OID_NAMES[id]} (${id})` : id);

/** A name in the CSR that is not ours: naming another tether identity is a permission problem. */
function foreignName(kind: string, value: string, want: CsrExpectation): CertifyError {
  let other: WorkloadIdentity | undefined;
  try {
    other = parseIdentity(value);
  } catch {
    other = undefined;
  }
  if (other && !sameIdentity(other, want.identity)) {
    return permissionDenied("CSR_FOREIGN_IDENTITY", `CSR ${kind} names identity ${value}, but the request is for ${want.dnsName}; a workload can only get a certificate for its own service account`);
  }
  return invalidArgument("CSR_EXTRA_NAME", `CSR ${kind} ${JSON.stringify(value)} is not allowed; only DNS ${want.dnsName} and URI ${want.spiffeId} may be requested`);
}

function checkKey(csr: ParsedCsr): void {
  const { algorithm, curve, keyBits } = csr.key;
  if (algorithm === OID.rsaEncryption) throw invalidArgument("CSR_KEY_NOT_P256", "CSR key is RSA; tether certifies only ECDSA P-256 keys: generate an EC key on prime256v1");
  if (algorithm !== OID.ecPublicKey) throw invalidArgument("CSR_KEY_NOT_P256", `CSR key algorithm ${describeOid(algorithm)} is not supported; tether certifies only ECDSA P-256 keys`);
  if (curve !== OID.prime256v1) throw invalidArgument("CSR_KEY_NOT_P256", `CSR key is on curve ${curve ? describeOid(curve) : "(none)"}; tether certifies only ECDSA P-256 (prime256v1) keys`);
  if (keyBits.length !== 65 || keyBits[0] !== 0x04) throw invalidArgument("CSR_KEY_NOT_P256", "CSR P-256 key must be an uncompressed point (65 bytes starting 0x04)");
  if (csr.signatureAlgorithm !== OID.ecdsaWithSha256 || csr.signatureAlgorithmHasParams) {
    throw invalidArgument("CSR_BAD_SIGNATURE_ALGORITHM", `CSR is signed with ${describeOid(csr.signatureAlgorithm)}; it must be signed with ecdsa-with-SHA256`);
  }
}

function checkNames(csr: ParsedCsr, want: CsrExpectation): void {
  for (const { type, value } of csr.subject) {
    if (type !== OID.commonName) throw invalidArgument("CSR_BAD_SUBJECT", `CSR subject attribute ${describeOid(type)} is not allowed; the subject may only be empty or CN=${want.dnsName}`);
    if (value !== want.dnsName) throw foreignName("subject CN", value, want);
  }
  if (csr.otherAttributes.length > 0) {
    throw invalidArgument("CSR_UNEXPECTED_ATTRIBUTE", `CSR carries attribute ${describeOid(csr.otherAttributes[0]!)}; only extensionRequest is allowed`);
  }
  const seen = new Set<string>();
  for (const ext of csr.extensions) {
    if (seen.has(ext.oid)) throw invalidArgument("CSR_DUPLICATE_EXTENSION", `CSR requests extension ${describeOid(ext.oid)} twice`);
    seen.add(ext.oid);
    if (ext.oid === OID.basicConstraints) {
      const fields = children(readOnly(ext.value, TAG.SEQUENCE));
      if (fields[0]?.tag === TAG.BOOLEAN && readBoolean(fields[0])) {
        throw invalidArgument("CSR_REQUESTS_CA", "CSR asks for a CA certificate (basicConstraints CA:TRUE); workload certificates are never CAs");
      }
      if (fields.length > 0) throw invalidArgument("CSR_REQUESTS_CA", "CSR basicConstraints must be empty (CA:FALSE)");
      continue;
    }
    if (ext.oid === OID.subjectAltName) {
      for (const name of readGeneralNames(ext.value)) {
        if (name.type === "other") throw invalidArgument("CSR_EXTRA_NAME", `CSR asks for a subjectAltName of type [${name.tag & 0x1f}]; only DNS ${want.dnsName} and URI ${want.spiffeId} may be requested`);
        if (name.type === "dns" && name.value === want.dnsName) continue;
        if (name.type === "uri" && name.value === want.spiffeId) continue;
        throw foreignName(`subjectAltName ${name.type.toUpperCase()}`, name.value, want);
      }
      continue;
    }
    throw invalidArgument("CSR_UNEXPECTED_EXTENSION", `CSR requests extension ${describeOid(ext.oid)}; only subjectAltName (and an empty basicConstraints) may be requested`);
  }
}

/**
 * CSRs whose self-signature already verified, by SHA-256 of their exact bytes. An agent keeps one
 * key and one CSR for its life, so every renewal resends identical bytes; the signature over them
 * cannot have changed. Bounded, oldest evicted first. All other checks still run every time.
 */
export class VerifiedCsrCache {
  private readonly seen = new Set<string>();

  constructor(private readonly capacity = 16_384) {}

  has(digest: string): boolean {
    return this.seen.has(digest);
  }

  add(digest: string): void {
    if (this.seen.size >= this.capacity) this.seen.delete(this.seen.values().next().value!);
    this.seen.add(digest);
  }

  get size(): number {
    return this.seen.size;
  }
}

/** Checks a DER CSR against the identity it must name; returns the key to put in the certificate. */
export function checkCsr(der: Buffer, want: CsrExpectation, verified?: VerifiedCsrCache): AcceptedCsr {
  if (der.length === 0) throw invalidArgument("CSR_MISSING", "the request carries no CSR; send a DER-encoded PKCS#10 request");
  if (der.length > MAX_CSR_BYTES) throw invalidArgument("CSR_TOO_LARGE", `CSR is ${der.length} bytes; at most ${MAX_CSR_BYTES} are accepted`);
  let csr: ParsedCsr;
  try {
    csr = parseCsr(der);
    checkKey(csr);
    checkNames(csr, want);
  } catch (err) {
    if (err instanceof CertifyError) throw err;
    throw invalidArgument("CSR_MALFORMED", `CSR is not a well-formed DER PKCS#10 request: ${(err as Error).message}`);
  }
  const digest = verified ? createHash("sha256").update(der).digest("base64") : "";
  if (!verified?.has(digest)) {
    try {
      verifyCsrSignature(csr);
    } catch (err) {
      throw invalidArgument("CSR_BAD_SIGNATURE", (err as Error).message);
    }
    verified?.add(digest);
  }
  return { spki: csr.spki, keyBits: csr.key.keyBits };
}
