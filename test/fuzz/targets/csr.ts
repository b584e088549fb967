/**
 * CSR parsing and checks (src/identity/csr.ts, src/ca/csr-policy.ts): crafted requests (other
 * names, CA:true, other key types, other identities, extra extensions), mutated and random DER.
 * Oracle: checkCsr accepts or throws CertifyError (nothing else), and whatever it accepts, an
 * independent parser (@peculiar/x509) reads as asking for no more than the expected identity:
 * a valid self-signature, an ECDSA P-256 key (the one returned), subject empty or CN = the DNS
 * name, SANs only that DNS name and SPIFFE ID, no CA, no other extension.
 */
import "reflect-metadata";
import { generateKeyPairSync, webcrypto, type KeyObject } from "node:crypto";
import fc from "fast-check";
import * as x509 from "@peculiar/x509";
import { checkCsr } from "../../../src/ca/csr-policy.js";
import { CertifyError } from "../../../src/ca/errors.js";
import { boolean, octetString, oid, sequence } from "../../../src/identity/der.js";
import { toDnsName, toSpiffeId, workloadIdentity } from "../../../src/identity/names.js";
import { OID } from "../../../src/identity/pkix.js";
import { customCsr } from "../../support/ca-csr.js";
import { expect, target } from "./target.js";

x509.cryptoProvider.set(webcrypto as never);

const IDS = [workloadIdentity("web", "shop"), workloadIdentity("api", "shop"), workloadIdentity("web", "prod"), workloadIdentity("web", "shop", "example.org")];
const NAMES = [...IDS.flatMap((id) => [toDnsName(id), toSpiffeId(id)]), "evil.example.com", "spiffe://cluster.local/ns/shop/sa/web/x", "", "WEB.shop.serviceaccount.identity.tether.cluster.local"];

interface Input {
  /** The identity the CA expects (the token's). */
  want: number;
  /** 0-5: P-256 keys; 6: P-384; 7: RSA; 8: Ed25519. */
  key: number;
  commonName: string | undefined;
  dns: string[] | undefined;
  uri: string[] | undefined;
  ca: boolean | undefined;
  extra: number;
  edits: [number, number, number][];
}

const arbitrary: fc.Arbitrary<Input> = fc.record({
  want: fc.nat(IDS.length - 1),
  key: fc.oneof({ weight: 6, arbitrary: fc.nat(5) }, { weight: 1, arbitrary: fc.integer({ min: 6, max: 8 }) }),
  // Mostly the right names, so that the checks past the names are reached too.
  commonName: fc.option(fc.oneof(fc.constant("$dns"), fc.constantFrom(...NAMES)), { nil: undefined }),
  dns: fc.option(fc.array(fc.oneof({ weight: 3, arbitrary: fc.constant("$dns") }, { weight: 1, arbitrary: fc.constantFrom(...NAMES) }), { maxLength: 3 }), { nil: undefined }),
  uri: fc.option(fc.array(fc.oneof({ weight: 3, arbitrary: fc.constant("$uri") }, { weight: 1, arbitrary: fc.constantFrom(...NAMES) }), { maxLength: 3 }), { nil: undefined }),
  ca: fc.option(fc.boolean(), { freq: 3, nil: undefined }),
  extra: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 }) }),
  edits: fc.oneof({ weight: 2, arbitrary: fc.constant([] as [number, number, number][]) }, { weight: 1, arbitrary: fc.array(fc.tuple(fc.nat(2000), fc.nat(3), fc.nat(255)), { minLength: 1, maxLength: 3 }) }),
});

function mutate(der: Buffer, edits: [number, number, number][]): Buffer {
  let out = Buffer.from(der);
  for (const [at, op, byte] of edits) {
    const i = at % Math.max(1, out.length);
    if (op === 0) out[i] = byte;
    else if (op === 1) out = out.subarray(0, i);
    else if (op === 2) out = Buffer.concat([out.subarray(0, i), Buffer.from([byte]), out.subarray(i)]);
    else out = Buffer.concat([out.subarray(0, i), out.subarray(i + 1)]);
  }
  return out;
}

/** Extensions a workload must not get: key usage CA bits, name constraints, an unknown critical one. */
const EXTRA_EXTENSIONS = [
  sequence(oid(OID.basicConstraints), boolean(true), octetString(sequence(boolean(true)))),
  sequence(oid("2.5.29.15"), boolean(true), octetString(Buffer.from([0x03, 0x02, 0x01, 0x06]))),
  sequence(oid("1.3.6.1.4.1.99999.1"), boolean(true), octetString(Buffer.from([0x05, 0x00]))),
];

async function oracle(der: Buffer, accepted: { spki: Buffer }, dns: string, uri: string): Promise<void> {
  const csr = new x509.Pkcs10CertificateRequest(der);
  expect(await csr.verify(), "accepted a CSR whose self-signature does not verify");
  const alg = csr.publicKey.algorithm as { name?: string; namedCurve?: string };
  expect(alg.name === "ECDSA" && alg.namedCurve === "P-256", `accepted a ${alg.name}/${alg.namedCurve} key`);
  expect(Buffer.from(csr.publicKey.rawData).equals(accepted.spki), "the key returned is not the CSR's key");
  expect(csr.subject === "" || csr.subject === `CN=${dns}`, `accepted subject ${csr.subject}`);
  for (const ext of csr.extensions) {
    if (ext.type === OID.subjectAltName) {
      const names = new x509.SubjectAlternativeNameExtension(ext.rawData).names.items;
      for (const n of names) expect((n.type === "dns" && n.value === dns) || (n.type === "url" && n.value === uri), `accepted SAN ${n.type}:${n.value}`);
    } else if (ext.type === OID.basicConstraints) {
      expect(!new x509.BasicConstraintsExtension(ext.rawData).ca, "accepted basicConstraints CA:true");
    } else expect(false, `accepted extension ${ext.type}`);
  }
}

export const csrTarget = target<Input>({
  name: "csr",
  what: "CSR parser and checks: CertifyError or a request for exactly the token's identity (checked with @peculiar/x509)",
  testRuns: 1000,
  shares: { accepted: 0.05, refused: 0.3 },
  open() {
    const keys: { privateKey: KeyObject; publicKey: KeyObject }[] = [
      ...Array.from({ length: 6 }, () => generateKeyPairSync("ec", { namedCurve: "P-256" })),
      generateKeyPairSync("ec", { namedCurve: "P-384" }),
      generateKeyPairSync("rsa", { modulusLength: 1024 }),
      generateKeyPairSync("ed25519"),
    ];
    return {
      arbitrary,
      async check(input) {
        const id = IDS[input.want]!;
        const dns = toDnsName(id);
        const uri = toSpiffeId(id);
        const fill = (names: string[] | undefined) => names?.map((n) => (n === "$dns" ? dns : n === "$uri" ? uri : n));
        let der: Buffer;
        try {
          der = customCsr({
            key: keys[input.key]!,
            commonName: input.commonName === "$dns" ? dns : input.commonName,
            dns: fill(input.dns),
            uri: fill(input.uri),
            ca: input.ca,
            extraExtensions: input.extra ? [EXTRA_EXTENSIONS[input.extra - 1]!] : [],
          });
        } catch {
          return "refused"; // the builder cannot sign with this key type this way: nothing to check
        }
        der = mutate(der, input.edits);
        let accepted: { spki: Buffer };
        try {
          accepted = checkCsr(der, { identity: id, dnsName: dns, spiffeId: uri });
        } catch (err) {
          if (err instanceof CertifyError) return "refused";
          throw err;
        }
        await oracle(der, accepted, dns, uri);
        return "accepted";
      },
    };
  },
});
