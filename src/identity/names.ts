/**
 * Workload identity names. A service account `sa` in namespace `ns` under trust domain `td` is
 *   DNS-style:  sa.ns.serviceaccount.identity.tether.td
 *   SPIFFE ID:  spiffe://td/ns/ns/sa/sa
 * Leaf certificates carry both as SANs.
 */
import { IdentityNameError } from "../core/errors.js";

export const DEFAULT_TRUST_DOMAIN = "cluster.local";
export const CONTROL_PLANE_NAMESPACE = "tether";
export const TOKEN_AUDIENCE = "identity.tether.io";

export interface WorkloadIdentity {
  serviceAccount: string;
  namespace: string;
  trustDomain: string;
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const IDENTITY_INFIX = "serviceaccount.identity.tether";

/** Kubernetes namespaces are DNS-1123 labels (at most 63 characters). */
export function validateNamespace(ns: string): void {
  if (!ns || ns.length > 63 || !DNS1123_LABEL.test(ns)) {
    throw new IdentityNameError(
      "IDENTITY_BAD_NAMESPACE",
      `namespace ${JSON.stringify(ns)} is not a DNS-1123 label (lowercase letters, digits and '-', 1-63 characters, starting and ending alphanumeric)`,
    );
  }
}

/**
 * Service account names are DNS-1123 subdomains in Kubernetes, but a dot would make the DNS-style
 * identity ambiguous to parse, so tether requires a single label.
 */
export function validateServiceAccount(sa: string): void {
  if (!sa || sa.length > 63 || !DNS1123_LABEL.test(sa)) {
    throw new IdentityNameError(
      "IDENTITY_BAD_SERVICE_ACCOUNT",
      `service account ${JSON.stringify(sa)} is not usable as an identity: it must be a DNS-1123 label (lowercase letters, digits and '-', 1-63 characters, no dots)`,
    );
  }
}

export function validateTrustDomain(td: string): void {
  if (!td || td.length > 253 || !DNS1123_SUBDOMAIN.test(td)) {
    throw new IdentityNameError(
      "IDENTITY_BAD_TRUST_DOMAIN",
      `trust domain ${JSON.stringify(td)} is not a DNS-1123 subdomain (e.g. cluster.local)`,
    );
  }
}

export function workloadIdentity(serviceAccount: string, namespace: string, trustDomain = DEFAULT_TRUST_DOMAIN): WorkloadIdentity {
  validateServiceAccount(serviceAccount);
  validateNamespace(namespace);
  validateTrustDomain(trustDomain);
  return { serviceAccount, namespace, trustDomain };
}

export function toDnsName(id: WorkloadIdentity): string {
  const name = `${id.serviceAccount}.${id.namespace}.${IDENTITY_INFIX}.${id.trustDomain}`;
  if (name.length > 253) {
    throw new IdentityNameError("IDENTITY_TOO_LONG", `identity name ${name} is longer than 253 characters; shorten the service account or namespace`);
  }
  return name;
}

export function toSpiffeId(id: WorkloadIdentity): string {
  return `spiffe://${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

/** Parses `sa.ns.serviceaccount.identity.tether.td`. */
export function parseDnsName(name: string): WorkloadIdentity {
  const marker = `.${IDENTITY_INFIX}.`;
  const at = name.indexOf(marker);
  if (at < 0) {
    throw new IdentityNameError(
      "IDENTITY_BAD_DNS_NAME",
      `${JSON.stringify(name)} is not a tether identity name; expected SA.NS.${IDENTITY_INFIX}.TRUST-DOMAIN`,
    );
  }
  const head = name.slice(0, at).split(".");
  if (head.length !== 2) {
    throw new IdentityNameError(
      "IDENTITY_BAD_DNS_NAME",
      `${JSON.stringify(name)} must have exactly two labels (service account, namespace) before .${IDENTITY_INFIX}`,
    );
  }
  return workloadIdentity(head[0]!, head[1]!, name.slice(at + marker.length));
}

/** Parses `spiffe://td/ns/NS/sa/SA`. */
export function parseSpiffeId(uri: string): WorkloadIdentity {
  const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(uri);
  if (!m) {
    throw new IdentityNameError(
      "IDENTITY_BAD_SPIFFE_ID",
      `${JSON.stringify(uri)} is not a tether SPIFFE ID; expected spiffe://TRUST-DOMAIN/ns/NAMESPACE/sa/SERVICE-ACCOUNT`,
    );
  }
  return workloadIdentity(m[3]!, m[2]!, m[1]!);
}

/** Accepts either form. */
export function parseIdentity(text: string): WorkloadIdentity {
  return text.startsWith("spiffe://") ? parseSpiffeId(text) : parseDnsName(text);
}

export function sameIdentity(a: WorkloadIdentity, b: WorkloadIdentity): boolean {
  return a.serviceAccount === b.serviceAccount && a.namespace === b.namespace && a.trustDomain === b.trustDomain;
}
