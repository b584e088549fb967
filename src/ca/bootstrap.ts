/**
 * Development PKI: a self-signed trust anchor and an intermediate issuer written the way
 * cert-manager and kubelet would present them (Secret layout with the `..data` swap). Also the
 * issuer rotation used by tests and the local mesh: a new issuer from the same anchor, swapped in
 * atomically. For production, cert-manager supplies the issuer (see docs/identity.md).
 *
 *   DIR/anchors.pem          trust-anchor bundle
 *   DIR/anchor.key           the anchor's key (development only: it lets `rotateIssuer` sign)
 *   DIR/issuer/              Secret layout: tls.crt, tls.key, ca.crt -> ..data/...
 */
import { createPrivateKey, generateKeyPairSync, X509Certificate } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseCertificates } from "../identity/chain.js";
import { keyIdentifier, pemEncode, readCertificateParts } from "../identity/pkix.js";
import { IssuerError } from "./errors.js";
import { buildCaCertificate } from "./certificate.js";
import { writeSecretFolder } from "./secret-layout.js";

export const DAY_MS = 24 * 3600 * 1000;

export interface KeyAndCert {
  certPem: string;
  keyPem: string;
}

/** A fresh ECDSA P-256 self-signed root for `trustDomain`. */
export function createTrustAnchor(opts: { trustDomain: string; lifetimeMs: number; now: number; commonName?: string }): KeyAndCert {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const der = buildCaCertificate({
    commonName: opts.commonName ?? `root.tether.${opts.trustDomain}`,
    organization: "tether",
    publicKey,
    selfKey: privateKey,
    notBefore: opts.now - 60_000,
    notAfter: opts.now + opts.lifetimeMs,
  });
  return { certPem: pemEncode("CERTIFICATE", der), keyPem: privateKey.export({ format: "pem", type: "pkcs8" }).toString() };
}

/** An intermediate CA (pathLen 0) signed by `anchor`, with a fresh ECDSA P-256 key in SEC1 form, as cert-manager writes it. */
export function createIssuer(opts: { anchor: KeyAndCert; lifetimeMs: number; now: number; commonName?: string; trustDomain?: string }): KeyAndCert {
  const anchorCert = new X509Certificate(opts.anchor.certPem);
  const parts = readCertificateParts(anchorCert.raw);
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const der = buildCaCertificate({
    commonName: opts.commonName ?? `identity.tether.${opts.trustDomain ?? "cluster.local"}`,
    organization: "tether",
    publicKey,
    pathLength: 0,
    issuer: { name: parts.subject, keyId: parts.subjectKeyId ?? keyIdentifier(parts.spki.keyBits), key: createPrivateKey(opts.anchor.keyPem) },
    notBefore: opts.now - 60_000,
    notAfter: opts.now + opts.lifetimeMs,
  });
  return { certPem: pemEncode("CERTIFICATE", der), keyPem: privateKey.export({ format: "pem", type: "sec1" }).toString() };
}

/** Writes `tls.crt`, `tls.key`, `ca.crt` into a Secret-layout folder, swapping `..data` atomically. */
export function writeIssuerSecret(issuerDir: string, issuer: KeyAndCert, anchorsPem: string, now = Date.now()): Promise<string> {
  return writeSecretFolder(issuerDir, { "tls.crt": issuer.certPem, "tls.key": issuer.keyPem, "ca.crt": anchorsPem }, now);
}

export interface BootstrapPaths {
  dir: string;
  anchorsPath: string;
  anchorKeyPath: string;
  issuerDir: string;
}

export function bootstrapPaths(dir: string): BootstrapPaths {
  return { dir, anchorsPath: join(dir, "anchors.pem"), anchorKeyPath: join(dir, "anchor.key"), issuerDir: join(dir, "issuer") };
}

export async function bootstrapCa(opts: {
  dir: string;
  trustDomain: string;
  anchorLifetimeMs?: number;
  issuerLifetimeMs?: number;
  now?: number;
}): Promise<BootstrapPaths & { anchor: KeyAndCert; issuer: KeyAndCert }> {
  const now = opts.now ?? Date.now();
  const paths = bootstrapPaths(opts.dir);
  await mkdir(opts.dir, { recursive: true });
  const anchor = createTrustAnchor({ trustDomain: opts.trustDomain, lifetimeMs: opts.anchorLifetimeMs ?? 365 * DAY_MS, now });
  const issuer = createIssuer({ anchor, lifetimeMs: opts.issuerLifetimeMs ?? 30 * DAY_MS, now, trustDomain: opts.trustDomain });
  await writeFile(paths.anchorsPath, anchor.certPem, { mode: 0o644 });
  await writeFile(paths.anchorKeyPath, anchor.keyPem, { mode: 0o600 });
  await writeIssuerSecret(paths.issuerDir, issuer, anchor.certPem, now);
  return { ...paths, anchor, issuer };
}

/** Signs a new issuer with the bootstrap anchor and swaps it into `DIR/issuer` atomically. */
export async function rotateIssuer(opts: { dir: string; issuerLifetimeMs?: number; now?: number; trustDomain?: string; commonName?: string }): Promise<KeyAndCert> {
  const now = opts.now ?? Date.now();
  const paths = bootstrapPaths(opts.dir);
  const anchorsPem = await readFile(paths.anchorsPath, "utf8");
  const keyPem = await readFile(paths.anchorKeyPath, "utf8");
  // With several anchors in the bundle (anchor rotation), the key on disk belongs to the one that signs.
  const key = createPrivateKey(keyPem);
  const signing = parseCertificates(anchorsPem, "trust anchors").find((c) => c.checkPrivateKey(key));
  if (!signing) throw new IssuerError("ANCHOR_KEY_MISMATCH", `${paths.anchorKeyPath} matches no certificate in ${paths.anchorsPath}`);
  const anchor = { certPem: pemEncode("CERTIFICATE", signing.raw), keyPem };
  const issuer = createIssuer({ anchor, lifetimeMs: opts.issuerLifetimeMs ?? 30 * DAY_MS, now, trustDomain: opts.trustDomain, commonName: opts.commonName });
  await writeIssuerSecret(paths.issuerDir, issuer, anchorsPem, now);
  return issuer;
}
