/**
 * PKCS#10 certificate signing requests (RFC 2986): the agent builds one for its identity, the CA
 * reads one strictly. Reading only decodes; what a request may ask for is the CA's policy.
 */
import { createPublicKey, verify as cryptoVerify, type KeyObject } from "node:crypto";
import { CertificateError } from "../core/errors.js";
import {
  TAG,
  children,
  contextConstructed,
  expectTag,
  octetString,
  oid,
  readBoolean,
  readBitString,
  readOid,
  readOnly,
  readSmallInteger,
  sequence,
  set,
  smallInteger,
  tlv,
  type Element,
} from "./der.js";
import { OID, encodeGeneralNames, readName, readSpki, signStructure, simpleName, type SpkiInfo } from "./pkix.js";

export interface CsrExtension {
  oid: string;
  critical: boolean;
  value: Buffer;
}

export interface ParsedCsr {
  /** The CertificationRequestInfo bytes, exactly as signed. */
  info: Buffer;
  subject: { type: string; value: string }[];
  /** The SubjectPublicKeyInfo DER, as it goes into the certificate. */
  spki: Buffer;
  key: SpkiInfo;
  /** Attribute OIDs other than extensionRequest. */
  otherAttributes: string[];
  extensions: CsrExtension[];
  signatureAlgorithm: string;
  /** Whether the AlgorithmIdentifier carried parameters (ECDSA must not). */
  signatureAlgorithmHasParams: boolean;
  signature: Buffer;
}

/** Builds a DER CSR for `dnsName` + `spiffeId` (as subject CN and SANs), signed by `privateKey`. */
export function buildCsr(opts: { privateKey: KeyObject; publicKey: KeyObject; dnsName: string; spiffeId: string }): Buffer {
  const spki = opts.publicKey.export({ format: "der", type: "spki" });
  const san = sequence(oid(OID.subjectAltName), octetString(encodeGeneralNames({ dns: [opts.dnsName], uri: [opts.spiffeId] })));
  const extensionRequest = sequence(oid(OID.extensionRequest), set(sequence(san)));
  const info = sequence(smallInteger(0), simpleName(opts.dnsName), spki, tlv(contextConstructed(0), extensionRequest));
  return signStructure(info, opts.privateKey);
}

function readExtensions(el: Element): CsrExtension[] {
  return children(expectTag(el, TAG.SEQUENCE, "Extensions")).map((ext) => {
    const parts = children(expectTag(ext, TAG.SEQUENCE, "Extension"));
    const id = readOid(parts[0], "extension id");
    let critical = false;
    let valueEl = parts[1];
    if (valueEl?.tag === TAG.BOOLEAN) {
      critical = readBoolean(valueEl, "critical");
      // DER forbids encoding the DEFAULT value explicitly.
      if (!critical) throw new CertificateError("DER_MALFORMED", "malformed DER: critical FALSE must be omitted");
      valueEl = parts[2];
      if (parts.length !== 3) throw new CertificateError("DER_MALFORMED", "malformed DER: Extension has extra fields");
    } else if (parts.length !== 2) {
      throw new CertificateError("DER_MALFORMED", "malformed DER: Extension has wrong field count");
    }
    return { oid: id, critical, value: expectTag(valueEl, TAG.OCTET_STRING, "extnValue").content };
  });
}

/** Decodes a DER CSR; throws CertificateError DER_MALFORMED / CSR_MALFORMED on anything off-shape. */
export function parseCsr(der: Buffer): ParsedCsr {
  const [infoEl, algEl, sigEl, extra] = children(readOnly(der, TAG.SEQUENCE));
  if (extra) throw new CertificateError("CSR_MALFORMED", "CSR has fields after the signature");
  const [versionEl, subjectEl, spkiEl, attrsEl, extraInfo] = children(expectTag(infoEl, TAG.SEQUENCE, "CertificationRequestInfo"));
  if (extraInfo) throw new CertificateError("CSR_MALFORMED", "CertificationRequestInfo has extra fields");
  if (readSmallInteger(versionEl, "version") !== 0) throw new CertificateError("CSR_MALFORMED", "CSR version must be 0 (v1)");
  const subject = readName(expectTag(subjectEl, TAG.SEQUENCE, "subject"));
  const key = readSpki(expectTag(spkiEl, TAG.SEQUENCE, "subjectPKInfo"));
  const otherAttributes: string[] = [];
  let extensions: CsrExtension[] = [];
  let sawExtensionRequest = false;
  for (const attr of children(expectTag(attrsEl, contextConstructed(0), "attributes"))) {
    const [typeEl, valuesEl, extraAttr] = children(expectTag(attr, TAG.SEQUENCE, "Attribute"));
    if (extraAttr) throw new CertificateError("CSR_MALFORMED", "Attribute has extra fields");
    const type = readOid(typeEl, "attribute type");
    const values = children(expectTag(valuesEl, TAG.SET, "attribute values"));
    if (type !== OID.extensionRequest) {
      otherAttributes.push(type);
      continue;
    }
    if (sawExtensionRequest || values.length !== 1) throw new CertificateError("CSR_MALFORMED", "CSR must carry at most one extensionRequest with one value");
    sawExtensionRequest = true;
    extensions = readExtensions(values[0]!);
  }
  const algParts = children(expectTag(algEl, TAG.SEQUENCE, "signatureAlgorithm"));
  return {
    info: infoEl!.bytes,
    subject,
    spki: spkiEl!.bytes,
    key,
    otherAttributes,
    extensions,
    signatureAlgorithm: readOid(algParts[0], "signature algorithm"),
    signatureAlgorithmHasParams: algParts.length > 1,
    signature: readBitString(sigEl, "signature"),
  };
}

/**
 * Imports a public key. Uncompressed P-256 points go through JWK: OpenSSL 3's SPKI decoder costs
 * more than the signature check itself, and keys imported this way also verify about twice as
 * fast. Both paths reject points that are not on the curve.
 */
function importPublicKey(csr: ParsedCsr): KeyObject {
  const { curve, keyBits } = csr.key;
  if (curve === OID.prime256v1 && keyBits.length === 65 && keyBits[0] === 0x04) {
    return createPublicKey({
      key: { kty: "EC", crv: "P-256", x: keyBits.subarray(1, 33).toString("base64url"), y: keyBits.subarray(33).toString("base64url") },
      format: "jwk",
    });
  }
  return createPublicKey({ key: csr.spki, format: "der", type: "spki" });
}

/** Imports the CSR's public key (validating the point) and checks the self-signature. */
export function verifyCsrSignature(csr: ParsedCsr, hash = "sha256"): KeyObject {
  let key: KeyObject;
  try {
    key = importPublicKey(csr);
  } catch (err) {
    throw new CertificateError("CSR_BAD_KEY", `CSR public key cannot be imported: ${(err as Error).message}`);
  }
  let ok = false;
  try {
    ok = cryptoVerify(hash, csr.info, key, csr.signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new CertificateError("CSR_BAD_SIGNATURE", "CSR signature does not verify with its own public key; re-create the CSR with the matching private key");
  return key;
}
