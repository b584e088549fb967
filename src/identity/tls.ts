/**
 * TLS for workload identities: secure contexts from a workload's credentials and the trust
 * anchors (TLS 1.3, mutual authentication), the verified identity of a peer, and the check that a
 * server holds exactly the identity the client expected. Clients send SNI = expected DNS name.
 */
import * as tls from "node:tls";
import type { X509Certificate } from "node:crypto";
import { CertificateError } from "../core/errors.js";
import { identityFromSans, parseSubjectAltNames } from "./chain.js";
import { parseDnsName, sameIdentity, toDnsName, type WorkloadIdentity } from "./names.js";

export { verifyChain, certificateIdentity, parseCertificates } from "./chain.js";

/** What the agent hands to everything that speaks TLS. Times are epoch milliseconds. */
export interface Credentials {
  identity: WorkloadIdentity;
  dnsName: string;
  keyPem: string;
  /** Leaf first, then intermediates (not the anchor). */
  certChainPem: string;
  notAfter: number;
  notBefore: number;
}

const BASE: tls.SecureContextOptions = { minVersion: "TLSv1.3" };

/** Server side: presents the credentials and requires and verifies a client certificate. */
export function serverContextOptions(creds: Credentials, anchorsPem: string): tls.SecureContextOptions & tls.TlsOptions {
  return { ...BASE, key: creds.keyPem, cert: creds.certChainPem, ca: anchorsPem, requestCert: true, rejectUnauthorized: true };
}

/** Client side: presents the credentials and verifies the server against the anchors. */
export function clientContextOptions(creds: Credentials, anchorsPem: string): tls.SecureContextOptions {
  return { ...BASE, key: creds.keyPem, cert: creds.certChainPem, ca: anchorsPem };
}

export function createServerSecureContext(creds: Credentials, anchorsPem: string): tls.SecureContext {
  return tls.createSecureContext(serverContextOptions(creds, anchorsPem));
}

export function createClientSecureContext(creds: Credentials, anchorsPem: string): tls.SecureContext {
  return tls.createSecureContext(clientContextOptions(creds, anchorsPem));
}

/**
 * Connection options for a client that must reach `expected`: SNI and the identity check.
 * Merge with a secure context: `tls.connect({ ...clientConnectOptions(id), secureContext, host, port })`.
 */
export function clientConnectOptions(expected: WorkloadIdentity): Pick<tls.ConnectionOptions, "servername" | "checkServerIdentity" | "rejectUnauthorized"> {
  const dnsName = toDnsName(expected);
  return { servername: dnsName, checkServerIdentity: checkServerIdentityFor(dnsName), rejectUnauthorized: true };
}

/** The identity of a peer whose certificate the TLS layer verified; undefined otherwise. */
export function peerIdentity(socket: tls.TLSSocket): WorkloadIdentity | undefined {
  if (!socket.authorized) return undefined;
  const cert: X509Certificate | undefined = socket.getPeerX509Certificate();
  if (!cert) return undefined;
  return identityFromSans(parseSubjectAltNames(cert.subjectAltName));
}

/**
 * A tls `checkServerIdentity` that accepts only a server certificate whose identity (URI SAN first,
 * DNS SAN second) is exactly `expectedDnsName`. Hostnames and wildcards play no part.
 */
export function checkServerIdentityFor(expectedDnsName: string): (host: string, cert: tls.PeerCertificate) => Error | undefined {
  const expected = parseDnsName(expectedDnsName);
  return (_host, cert) => {
    const actual = identityFromSans(parseSubjectAltNames(cert.subjectaltname));
    if (!actual) return new CertificateError("TLS_NO_PEER_IDENTITY", `server certificate carries no tether identity; expected ${expectedDnsName}`);
    if (!sameIdentity(actual, expected)) {
      return new CertificateError("TLS_WRONG_PEER_IDENTITY", `server presented identity ${toDnsName(actual)}, expected ${expectedDnsName}`);
    }
    return undefined;
  };
}
