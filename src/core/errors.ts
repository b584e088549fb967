/**
 * Typed errors with stable codes. Every refusal in tether is a subclass of `TetherError` so tests
 * assert on `code` and users can search for it; `message` says what was wrong and what to do.
 *
 * Every code is listed once, in `ERROR_CODES`, under the class that throws it: a class accepts
 * only its own codes (the type checker refuses any other), so this table is the whole list.
 * A class lives beside the code that throws it; the two generic ones live here.
 */
export const ERROR_CODES = {
  /** identity/names.ts: a service account, namespace, trust domain, SPIFFE ID or DNS name. */
  IdentityNameError: [
    "IDENTITY_BAD_DNS_NAME",
    "IDENTITY_BAD_NAMESPACE",
    "IDENTITY_BAD_SERVICE_ACCOUNT",
    "IDENTITY_BAD_SPIFFE_ID",
    "IDENTITY_BAD_TRUST_DOMAIN",
    "IDENTITY_TOO_LONG",
  ],
  /** identity/, webhook/cert-reloader.ts: a certificate, key, CSR or bundle that cannot be used. */
  CertificateError: [
    "AGENT_CERTIFY_TIMEOUT",
    "AGENT_EXPIRED_CERT",
    "AGENT_WRONG_IDENTITY",
    "AGENT_WRONG_KEY",
    "CERT_EXPIRED",
    "CERT_IS_CA",
    "CERT_MALFORMED",
    "CERT_NOT_YET_VALID",
    "CERT_NO_ANCHORS",
    "CERT_NO_IDENTITY",
    "CERT_UNTRUSTED",
    "CSR_BAD_KEY",
    "CSR_BAD_SIGNATURE",
    "CSR_MALFORMED",
    "DER_MALFORMED",
    "KEY_UNSUPPORTED",
    "TLS_NO_PEER_IDENTITY",
    "TLS_WRONG_PEER_IDENTITY",
    "WEBHOOK_CERT_MALFORMED",
    "WEBHOOK_CERT_NOT_VALID_NOW",
    "WEBHOOK_CERT_UNREADABLE",
    "WEBHOOK_KEY_MALFORMED",
    "WEBHOOK_KEY_MISMATCH",
  ],
  /** A flag, environment variable, setting or file given to a command that cannot be used. */
  UsageError: [
    "BALANCER_UNKNOWN",
    "CLI_BAD_ADDRESS",
    "CLI_BAD_DURATION",
    "CLI_BAD_TOKEN_MODE",
    "CLI_NO_IDENTITY",
    "CLI_NO_JWKS",
    "CONTROLLER_CONFIG_INVALID",
    "DISCOVERY_TLS_CONFIG",
    "INJECTOR_BAD_CONFIG",
    "INSTALL_BAD_CRD",
    "INSTALL_BAD_FLAG",
    "INSTALL_NO_CRDS",
    "POLICY_INVALID",
    "POLICY_NO_PORTS",
    "POLICY_POD_NOT_FOUND",
    "POLICY_UNKNOWN_PORT",
    "YAML_INVALID",
  ],
  /** cli/: a command that ran and failed (a remote refusal, a demo whose check failed). */
  CommandError: ["CERTIFY_REFUSED", "DEMO_FAILED", "DISCOVERY_TIMEOUT", "DISCOVERY_UNAVAILABLE"],
  /** cluster/: the cluster adapter (API server, kubeconfig, manifest folder). */
  ClusterError: [
    "CLUSTER_CLOSED",
    "CLUSTER_CONFIG_INVALID",
    "CLUSTER_DIR_NOT_FOUND",
    "CLUSTER_LIST_FAILED",
    "CLUSTER_OBJECT_NOT_FOUND",
    "CLUSTER_REQUEST_FAILED",
    "CLUSTER_SOURCE_INVALID",
    "CLUSTER_STATUS_WRITE_FAILED",
    "CLUSTER_UNREACHABLE",
  ],
  /** ca/: refusals of the Certify API (token, identity, CSR). */
  CertifyError: [
    "CSR_BAD_SIGNATURE",
    "CSR_BAD_SIGNATURE_ALGORITHM",
    "CSR_BAD_SUBJECT",
    "CSR_DUPLICATE_EXTENSION",
    "CSR_EXTRA_NAME",
    "CSR_FOREIGN_IDENTITY",
    "CSR_KEY_NOT_P256",
    "CSR_MALFORMED",
    "CSR_MISSING",
    "CSR_REQUESTS_CA",
    "CSR_TOO_LARGE",
    "CSR_UNEXPECTED_ATTRIBUTE",
    "CSR_UNEXPECTED_EXTENSION",
    "IDENTITY_MALFORMED",
    "IDENTITY_MISMATCH",
    "IDENTITY_WRONG_TRUST_DOMAIN",
    "TOKEN_BAD_ALGORITHM",
    "TOKEN_BAD_CLAIMS",
    "TOKEN_BAD_SIGNATURE",
    "TOKEN_EXPIRED",
    "TOKEN_KEYS_UNAVAILABLE",
    "TOKEN_MALFORMED",
    "TOKEN_MISSING",
    "TOKEN_NOT_SERVICE_ACCOUNT",
    "TOKEN_NOT_YET_VALID",
    "TOKEN_REJECTED",
    "TOKEN_REVIEW_FAILED",
    "TOKEN_TOO_LARGE",
    "TOKEN_WRONG_AUDIENCE",
    "TOKEN_WRONG_ISSUER",
  ],
  /** ca/: an issuer folder or trust-anchor bundle that cannot be used. */
  IssuerError: [
    "ANCHORS_BAD",
    "ANCHOR_KEY_MISMATCH",
    "ISSUER_BAD_CERT",
    "ISSUER_BAD_KEY",
    "ISSUER_EXPIRED",
    "ISSUER_FILE_MISSING",
    "ISSUER_KEY_MISMATCH",
    "ISSUER_NOT_CA",
    "ISSUER_NOT_YET_VALID",
    "ISSUER_UNTRUSTED",
  ],
  /** discovery/path.ts: a Destination path that names no service of this cluster. */
  DestinationPathError: ["DISCOVERY_BAD_PATH", "DISCOVERY_BAD_PORT", "DISCOVERY_NOT_IN_CLUSTER"],
  /** discovery/watcher.ts: endpoints that cannot be computed from the cluster state. */
  DiscoveryError: ["DISCOVERY_INTERNAL"],
  /** webhook/inject.ts: a pod the injector cannot mesh. */
  InjectionError: ["INJECT_BAD_ANNOTATION", "INJECT_BAD_SERVICE_ACCOUNT", "INJECT_NO_CONTAINERS", "INJECT_MALFORMED_POD"],
  /** webhook/server.ts: an HTTP request that is not an AdmissionReview the webhook serves. */
  WebhookRequestError: [
    "WEBHOOK_BODY_TOO_LARGE",
    "WEBHOOK_MALFORMED_JSON",
    "WEBHOOK_MALFORMED_REVIEW",
    "WEBHOOK_UNKNOWN_PATH",
    "WEBHOOK_WRONG_CONTENT_TYPE",
    "WEBHOOK_WRONG_METHOD",
  ],
  /** proxy/config.ts: the proxy's environment. */
  ProxyConfigError: ["PROXY_CONFIG_INVALID"],
  /** proxy/init/: the init container's settings and iptables run. */
  InitConfigError: ["INIT_BAD_IPTABLES", "INIT_BAD_PORTS", "INIT_BAD_UID"],
  InitRunError: ["INIT_IPTABLES_FAILED"],
  /** proxy/original-dst.ts: the original destination of a redirected connection. */
  OriginalDstError: ["ORIGINAL_DST_FAILED", "ORIGINAL_DST_NOT_REDIRECTED", "ORIGINAL_DST_NO_FD", "ORIGINAL_DST_UNSUPPORTED"],
  /** proxy/forward/: why a forward failed. */
  UpstreamError: [
    "UPSTREAM_CONNECT_FAILED",
    "UPSTREAM_CONNECTION_LOST",
    "UPSTREAM_DISCOVERY_UNAVAILABLE",
    "UPSTREAM_NO_ENDPOINTS",
    "UPSTREAM_NO_IDENTITY",
    "UPSTREAM_PROTOCOL",
    "UPSTREAM_RESET",
    "UPSTREAM_TIMEOUT",
  ],
  /** proxy/h2/: header blocks a peer should not have sent (a COMPRESSION_ERROR). */
  HpackError: [
    "HPACK_BAD_HUFFMAN",
    "HPACK_BAD_INDEX",
    "HPACK_HEADER_LIST_TOO_LARGE",
    "HPACK_INTEGER_OVERFLOW",
    "HPACK_TABLE_SIZE",
    "HPACK_TRUNCATED",
  ],
  HuffmanError: ["HPACK_BAD_HUFFMAN"],
  /** proxy/h2/: frames a peer should not have sent (the connection ends with GOAWAY). */
  FrameError: ["H2_ENHANCE_YOUR_CALM", "H2_FLOW_CONTROL_ERROR", "H2_FRAME_SIZE_ERROR", "H2_PROTOCOL_ERROR"],
  /** viz/: metrics sources and the stat commands' arguments. */
  VizError: [
    "VIZ_BAD_DIRECTION",
    "VIZ_BAD_DURATION",
    "VIZ_BAD_RESOURCE",
    "VIZ_KUBERNETES_LIST_FAILED",
    "VIZ_NO_SOURCE",
    "VIZ_PROMETHEUS_QUERY_FAILED",
    "VIZ_PROMETHEUS_UNREACHABLE",
    "VIZ_SOURCE_CONFLICT",
    "VIZ_TARGETS_INVALID",
    "VIZ_TARGETS_UNREADABLE",
  ],
  /** local/: the local mesh substrate and runner. */
  LocalMeshError: [
    "LOCAL_ADDRESSES_EXHAUSTED",
    "LOCAL_BAD_CIDR",
    "LOCAL_BAD_NAME",
    "LOCAL_BAD_SERVICE",
    "LOCAL_CHECK_FAILED",
    "LOCAL_COMMAND_FAILED",
    "LOCAL_DOWN_INCOMPLETE",
    "LOCAL_MESH_TIMEOUT",
    "LOCAL_NOT_ROOT",
    "LOCAL_POD_EXISTS",
    "LOCAL_POD_UNKNOWN",
    "LOCAL_STATE_BUSY",
    "LOCAL_STATE_CORRUPT",
    "LOCAL_STATE_STALE",
    "LOCAL_SUBNET_OVERLAP",
    "LOCAL_TIMEOUT",
  ],
} as const satisfies Record<string, readonly string[]>;

export type ErrorFamily = keyof typeof ERROR_CODES;
/** The codes the class named `F` may carry. */
export type CodeOf<F extends ErrorFamily> = (typeof ERROR_CODES)[F][number];
export type ErrorCode = CodeOf<ErrorFamily>;

const KNOWN_CODES: ReadonlySet<string> = new Set(Object.values(ERROR_CODES).flat());

/** Whether `text` is one of tether's codes (e.g. one read back from a remote error's details). */
export function isErrorCode(text: string | undefined): text is ErrorCode {
  return text !== undefined && KNOWN_CODES.has(text);
}

export abstract class TetherError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;

  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.name = new.target.name;
  }
}

/** Input that does not name a valid identity (service account, namespace, SPIFFE ID, DNS name). */
export class IdentityNameError extends TetherError<CodeOf<"IdentityNameError">> {}

/** A certificate, key or bundle that cannot be used (malformed, expired, not chaining, mismatched). */
export class CertificateError extends TetherError<CodeOf<"CertificateError">> {}

/** A flag, environment variable, setting or file that a command cannot use; the message says which. */
export class UsageError extends TetherError<CodeOf<"UsageError">> {}

/** The stable code of `err`; INTERNAL only for what is not one of tether's refusals (a bug). */
export function errorCode(err: unknown): ErrorCode | "INTERNAL" {
  return err instanceof TetherError ? err.code : "INTERNAL";
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
