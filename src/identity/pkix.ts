/**
 * PKIX building blocks shared by the CSR builder (agent), the CSR reader and the certificate
 * builder (CA): object identifiers, signature algorithms per key type, names and SANs.
 */
import { createHash, sign as cryptoSign, type KeyObject } from "node:crypto";
import { CertificateError } from "../core/errors.js";
import {
  TAG,
  children,
  contextPrimitive,
  expectTag,
  nullValue,
  oid,
  readBitString,
  readOid,
  readOnly,
  sequence,
  set,
  tlv,
  utf8String,
  type Element,
} from "./der.js";

export const OID = {
  ecPublicKey: "1.2.840.10045.2.1",
  prime256v1: "1.2.840.10045.3.1.7",
  secp384r1: "1.3.132.0.34",
  rsaEncryption: "1.2.840.113549.1.1.1",
  ed25519: "1.3.101.112",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  ecdsaWithSha384: "1.2.840.10045.4.3.3",
  sha256WithRsa: "1.2.840.113549.1.1.11",
  commonName: "2.5.4.3",
  organization: "2.5.4.10",
  extensionRequest: "1.2.840.113549.1.9.14",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
} as const;

export const OID_NAMES: Record<string, string> = Object.fromEntries(Object.entries(OID).map(([k, v]) => [v, k]));

/** How a given private key signs: the AlgorithmIdentifier to embed and the hash to use. */
export interface SignatureAlgorithm {
  algorithmIdentifier: Buffer;
  hash: string | null;
}

const EC_P256_SHA256: SignatureAlgorithm = { algorithmIdentifier: sequence(oid(OID.ecdsaWithSha256)), hash: "sha256" };

export function signatureAlgorithmFor(key: KeyObject): SignatureAlgorithm {
  const type = key.asymmetricKeyType;
  if (type === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === "prime256v1") return EC_P256_SHA256;
    if (curve === "secp384r1") return { algorithmIdentifier: sequence(oid(OID.ecdsaWithSha384)), hash: "sha384" };
    throw new CertificateError("KEY_UNSUPPORTED", `EC keys on curve ${curve} are not supported; use P-256 or P-384`);
  }
  if (type === "rsa") return { algorithmIdentifier: sequence(oid(OID.sha256WithRsa), nullValue()), hash: "sha256" };
  if (type === "ed25519") return { algorithmIdentifier: sequence(oid(OID.ed25519)), hash: null };
  throw new CertificateError("KEY_UNSUPPORTED", `${type} keys are not supported; use ECDSA (P-256/P-384), RSA or Ed25519`);
}

/** Signs `tbs` and wraps it as SEQUENCE { tbs, algorithm, BIT STRING signature } (certificates and CSRs). */
export function signStructure(tbs: Buffer, key: KeyObject, alg: SignatureAlgorithm = signatureAlgorithmFor(key)): Buffer {
  const signature = cryptoSign(alg.hash, tbs, key);
  return sequence(tbs, alg.algorithmIdentifier, tlv(TAG.BIT_STRING, Buffer.concat([Buffer.from([0]), signature])));
}

/** A Name with a single CN (and an optional O), the only shape tether issues. */
export function simpleName(commonName: string, organization?: string): Buffer {
  const rdns = [set(sequence(oid(OID.commonName), utf8String(commonName)))];
  if (organization) rdns.unshift(set(sequence(oid(OID.organization), utf8String(organization))));
  return sequence(...rdns);
}

/** The attributes of a Name, flattened: [{type OID, value as text}]. */
export function readName(el: Element): { type: string; value: string }[] {
  expectTag(el, TAG.SEQUENCE, "Name");
  const out: { type: string; value: string }[] = [];
  for (const rdn of children(el)) {
    expectTag(rdn, TAG.SET, "RelativeDistinguishedName");
    for (const atv of children(rdn)) {
      const [type, value, extra] = children(expectTag(atv, TAG.SEQUENCE, "AttributeTypeAndValue"));
      if (extra || !value) throw new CertificateError("DER_MALFORMED", "malformed DER: AttributeTypeAndValue");
      out.push({ type: readOid(type), value: value.content.toString("utf8") });
    }
  }
  return out;
}

export type GeneralName = { type: "dns"; value: string } | { type: "uri"; value: string } | { type: "other"; tag: number };

export function encodeGeneralNames(names: { dns?: string[]; uri?: string[] }): Buffer {
  return sequence(
    ...(names.dns ?? []).map((d) => tlv(contextPrimitive(2), Buffer.from(d, "ascii"))),
    ...(names.uri ?? []).map((u) => tlv(contextPrimitive(6), Buffer.from(u, "ascii"))),
  );
}

export function readGeneralNames(der: Buffer): GeneralName[] {
  return children(readOnly(der, TAG.SEQUENCE)).map((gn) => {
    if (gn.tag === contextPrimitive(2)) return { type: "dns", value: gn.content.toString("latin1") };
    if (gn.tag === contextPrimitive(6)) return { type: "uri", value: gn.content.toString("latin1") };
    return { type: "other", tag: gn.tag };
  });
}

/** SubjectPublicKeyInfo facts: algorithm, curve (EC) and the raw key bits. */
export interface SpkiInfo {
  algorithm: string;
  curve: string | null;
  keyBits: Buffer;
}

export function readSpki(el: Element): SpkiInfo {
  const [algId, bits, extra] = children(expectTag(el, TAG.SEQUENCE, "SubjectPublicKeyInfo"));
  if (extra) throw new CertificateError("DER_MALFORMED", "malformed DER: SubjectPublicKeyInfo has extra fields");
  const [algOid, params] = children(expectTag(algId, TAG.SEQUENCE, "AlgorithmIdentifier"));
  const algorithm = readOid(algOid, "key algorithm");
  const curve = algorithm === OID.ecPublicKey && params?.tag === TAG.OID ? readOid(params, "curve") : null;
  return { algorithm, curve, keyBits: readBitString(bits, "subjectPublicKey") };
}

/** RFC 5280 method 1 key identifier: SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(keyBits: Buffer): Buffer {
  return createHash("sha1").update(keyBits).digest();
}

export function pemEncode(label: string, der: Buffer): string {
  const b64 = der.toString("base64").replace(/.{1,64}/g, "$&\n");
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

/** Every block with `label` in a PEM text, as DER. */
export function pemDecodeAll(text: string, label = "CERTIFICATE"): Buffer[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, "g");
  return [...text.matchAll(re)].map((m) => Buffer.from(m[1]!.replace(/\s+/g, ""), "base64"));
}

/** The raw pieces of a certificate that node's X509Certificate does not expose as bytes. */
export interface CertificateParts {
  /** The subject Name, exactly as encoded (it becomes the issuer Name of certificates it signs). */
  subject: Buffer;
  spki: SpkiInfo;
  subjectKeyId: Buffer | null;
}

export function readCertificateParts(der: Buffer): CertificateParts {
  const [tbs] = children(readOnly(der, TAG.SEQUENCE));
  const fields = children(expectTag(tbs, TAG.SEQUENCE, "TBSCertificate"));
  // Skip the optional [0] version so the indexes below are fixed.
  const f = fields[0]?.tag === 0xa0 ? fields.slice(1) : fields;
  const subject = expectTag(f[4], TAG.SEQUENCE, "subject");
  const spki = readSpki(expectTag(f[5], TAG.SEQUENCE, "subjectPublicKeyInfo"));
  let subjectKeyId: Buffer | null = null;
  const extsWrapper = f.slice(6).find((e) => e.tag === 0xa3);
  if (extsWrapper) {
    const [exts] = children(extsWrapper);
    for (const ext of children(expectTag(exts, TAG.SEQUENCE, "extensions"))) {
      const parts = children(ext);
      if (readOid(parts[0]) !== OID.subjectKeyIdentifier) continue;
      const value = parts[parts.length - 1]!;
      subjectKeyId = expectTag(readOnly(value.content), TAG.OCTET_STRING, "keyIdentifier").content;
    }
  }
  return { subject: subject.bytes, spki, subjectKeyId };
}
