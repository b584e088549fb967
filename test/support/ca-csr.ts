/** Builds CSRs that ask for things a workload must not get (CA, foreign names, other keys). */
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { boolean, contextConstructed, octetString, oid, sequence, set, smallInteger, tlv } from "../../src/identity/der.js";
import { OID, encodeGeneralNames, signStructure, simpleName } from "../../src/identity/pkix.js";

export interface CustomCsr {
  key?: { privateKey: KeyObject; publicKey: KeyObject };
  commonName?: string;
  dns?: string[];
  uri?: string[];
  ca?: boolean;
  /** Complete Extension encodings appended to the request. */
  extraExtensions?: Buffer[];
}

export function p256(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync("ec", { namedCurve: "P-256" });
}

export function customCsr(opts: CustomCsr): Buffer {
  const key = opts.key ?? p256();
  const exts: Buffer[] = [];
  if (opts.dns || opts.uri) exts.push(sequence(oid(OID.subjectAltName), octetString(encodeGeneralNames({ dns: opts.dns, uri: opts.uri }))));
  if (opts.ca !== undefined) exts.push(sequence(oid(OID.basicConstraints), boolean(true), octetString(opts.ca ? sequence(boolean(true)) : sequence())));
  exts.push(...(opts.extraExtensions ?? []));
  const attrs = exts.length ? sequence(oid(OID.extensionRequest), set(sequence(...exts))) : Buffer.alloc(0);
  const subject = opts.commonName === undefined ? sequence() : simpleName(opts.commonName);
  const info = sequence(smallInteger(0), subject, key.publicKey.export({ format: "der", type: "spki" }), tlv(contextConstructed(0), attrs));
  return signStructure(info, key.privateKey);
}
