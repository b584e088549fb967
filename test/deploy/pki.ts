/** Test CA certificates with chosen validity, made with @peculiar/x509 on Node's WebCrypto. */
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto as never);

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

export interface TestCa {
  cert: x509.X509Certificate;
  keys: webcrypto.CryptoKeyPair;
  pem: string;
  keyPem: string;
}

async function keyPem(keys: webcrypto.CryptoKeyPair): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey ));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString("base64").match(/.{1,64}/g)!.join("\n")}\n-----END PRIVATE KEY-----\n`;
}

/** A CA certificate; self-signed unless `parent` is given. `ca: false` makes a leaf-like certificate. */
export async function makeCa(name: string, notBefore: Date, notAfter: Date, parent?: TestCa, ca = true): Promise<TestCa> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as unknown as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString("hex").replace(/^[89a-f]/, "1"),
    subject: `CN=${name}`,
    issuer: parent ? parent.cert.subject : `CN=${name}`,
    notBefore,
    notAfter,
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: (parent?.keys ?? keys).privateKey,
    extensions: [new x509.BasicConstraintsExtension(ca, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature, true)],
  });
  return { cert, keys, pem: cert.toString("pem") + "\n", keyPem: await keyPem(keys) };
}

/** A server certificate for `dns`, signed by `parent`. */
export async function makeServing(dns: string, notBefore: Date, notAfter: Date, parent: TestCa): Promise<TestCa> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as unknown as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: "02",
    subject: `CN=${dns}`,
    issuer: parent.cert.subject,
    notBefore,
    notAfter,
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: parent.keys.privateKey,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: "dns", value: dns }]), new x509.BasicConstraintsExtension(false)],
  });
  return { cert, keys, pem: cert.toString("pem") + "\n", keyPem: await keyPem(keys) };
}
