/**
 * X.509 v3 certificate construction from DER parts, signed with node:crypto. The leaf path
 * precomputes everything that does not change per request (issuer name, algorithm, AKI, key
 * usages), so issuing costs one DER concatenation and one signature.
 */
import { randomBytes, type KeyObject } from "node:crypto";
import {
  TAG,
  boolean,
  explicit,
  octetString,
  oid,
  readOnly,
  sequence,
  smallInteger,
  time,
  tlv,
  unsignedInteger,
} from "../identity/der.js";
import { OID, encodeGeneralNames, keyIdentifier, readSpki, signStructure, simpleName, signatureAlgorithmFor, type SignatureAlgorithm } from "../identity/pkix.js";

export function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? sequence(oid(id), boolean(true), octetString(value)) : sequence(oid(id), octetString(value));
}

// KeyUsage bits (RFC 5280 4.2.1.3) as DER BIT STRINGs: first byte is the count of unused bits.
const KU_DIGITAL_SIGNATURE = tlv(TAG.BIT_STRING, Buffer.from([0x07, 0x80]));
const KU_CA = tlv(TAG.BIT_STRING, Buffer.from([0x01, 0x86])); // digitalSignature, keyCertSign, cRLSign

const LEAF_CONSTANT_EXTENSIONS = Buffer.concat([
  extension(OID.basicConstraints, true, sequence()),
  extension(OID.keyUsage, true, KU_DIGITAL_SIGNATURE),
  extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth), oid(OID.clientAuth))),
]);

/** A random positive serial with 128 bits of entropy (RFC 5280 allows up to 20 octets). */
export function randomSerial(random: (n: number) => Buffer = randomBytes): Buffer {
  return random(16);
}

export interface CertificateFields {
  serial: Buffer;
  issuerName: Buffer;
  subjectName: Buffer;
  spki: Buffer;
  notBefore: number;
  notAfter: number;
  /** Complete Extension encodings, concatenated. */
  extensions: Buffer;
}

export function buildCertificate(fields: CertificateFields, key: KeyObject, alg: SignatureAlgorithm = signatureAlgorithmFor(key)): Buffer {
  const tbs = sequence(
    explicit(0, smallInteger(2)),
    unsignedInteger(fields.serial),
    alg.algorithmIdentifier,
    fields.issuerName,
    sequence(time(fields.notBefore), time(fields.notAfter)),
    fields.subjectName,
    fields.spki,
    explicit(3, tlv(TAG.SEQUENCE, fields.extensions)),
  );
  return signStructure(tbs, key, alg);
}

/** What the leaf builder needs of an issuer, precomputed once per issuer. */
export interface LeafSigner {
  issuerName: Buffer;
  key: KeyObject;
  alg: SignatureAlgorithm;
  /** The AKI extension pointing at the issuer's key. */
  authorityKeyIdExtension: Buffer;
}

export function leafSigner(opts: { issuerName: Buffer; issuerKeyId: Buffer; key: KeyObject }): LeafSigner {
  return {
    issuerName: opts.issuerName,
    key: opts.key,
    alg: signatureAlgorithmFor(opts.key),
    authorityKeyIdExtension: extension(OID.authorityKeyIdentifier, false, sequence(tlv(0x80, opts.issuerKeyId))),
  };
}

export interface LeafRequest {
  /** SubjectPublicKeyInfo DER of the workload key. */
  spki: Buffer;
  /** The raw subjectPublicKey bits (for the SKI). */
  keyBits: Buffer;
  dnsName: string;
  spiffeId: string;
  notBefore: number;
  notAfter: number;
  serial: Buffer;
}

/** A workload leaf: CN and DNS SAN = identity name, URI SAN = SPIFFE ID, CA:false, server+client auth. */
export function buildLeaf(signer: LeafSigner, req: LeafRequest): Buffer {
  const extensions = Buffer.concat([
    LEAF_CONSTANT_EXTENSIONS,
    extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(req.keyBits))),
    signer.authorityKeyIdExtension,
    extension(OID.subjectAltName, false, encodeGeneralNames({ dns: [req.dnsName], uri: [req.spiffeId] })),
  ]);
  return buildCertificate(
    {
      serial: req.serial,
      issuerName: signer.issuerName,
      subjectName: simpleName(req.dnsName),
      spki: req.spki,
      notBefore: req.notBefore,
      notAfter: req.notAfter,
      extensions,
    },
    signer.key,
    signer.alg,
  );
}

/** A CA certificate (trust anchor when `issuer` is omitted, i.e. self-signed; else an intermediate). */
export function buildCaCertificate(opts: {
  commonName: string;
  organization?: string;
  publicKey: KeyObject;
  notBefore: number;
  notAfter: number;
  pathLength?: number;
  issuer?: { name: Buffer; keyId: Buffer; key: KeyObject };
  selfKey?: KeyObject;
  serial?: Buffer;
}): Buffer {
  const spki = opts.publicKey.export({ format: "der", type: "spki" });
  const subjectName = simpleName(opts.commonName, opts.organization);
  const keyId = keyIdentifier(readSpki(readOnly(spki)).keyBits);
  const signing = opts.issuer ?? (opts.selfKey ? { name: subjectName, keyId, key: opts.selfKey } : undefined);
  if (!signing) throw new Error("buildCaCertificate needs an issuer, or selfKey for a self-signed anchor");
  const bc = opts.pathLength === undefined ? sequence(boolean(true)) : sequence(boolean(true), smallInteger(opts.pathLength));
  const extensions = Buffer.concat([
    extension(OID.basicConstraints, true, bc),
    extension(OID.keyUsage, true, KU_CA),
    extension(OID.subjectKeyIdentifier, false, octetString(keyId)),
    extension(OID.authorityKeyIdentifier, false, sequence(tlv(0x80, signing.keyId))),
  ]);
  return buildCertificate(
    {
      serial: opts.serial ?? randomSerial(),
      issuerName: signing.name,
      subjectName,
      spki,
      notBefore: opts.notBefore,
      notAfter: opts.notAfter,
      extensions,
    },
    signing.key,
  );
}
