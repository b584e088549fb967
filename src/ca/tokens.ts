/**
 * Service-account token validation, two modes behind one interface:
 *   jwks        - offline: verify the projected token's signature against the cluster's
 *                 service-account issuer JWKS, then audience, expiry, issuer and the
 *                 kubernetes.io namespace/serviceaccount claims (jose).
 *   tokenreview - ask the Kubernetes API (TokenReview, @kubernetes/client-node) with the
 *                 audience identity.tether.io.
 * Every refusal is UNAUTHENTICATED with a code naming the problem. Tokens are never logged.
 */
import { createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, jwtVerify, type JSONWebKeySet, type JWTPayload } from "jose";
import { TOKEN_AUDIENCE } from "../identity/names.js";
import { CertifyError, unauthenticated } from "./errors.js";

export interface TokenSubject {
  namespace: string;
  serviceAccount: string;
  podName?: string;
}

export interface TokenValidator {
  readonly mode: "jwks" | "tokenreview";
  validate(token: string, now: number): Promise<TokenSubject>;
}

const SA_PREFIX = "system:serviceaccount:";

/** `system:serviceaccount:NS:SA` -> {namespace, serviceAccount}; undefined for anything else. */
export function parseServiceAccountUsername(username: unknown): TokenSubject | undefined {
  if (typeof username !== "string" || !username.startsWith(SA_PREFIX)) return undefined;
  const parts = username.slice(SA_PREFIX.length).split(":");
  if (parts.length !== 2 || !parts[0] || !parts[1]) return undefined;
  return { namespace: parts[0], serviceAccount: parts[1] };
}

interface KubernetesClaims {
  namespace?: unknown;
  serviceaccount?: { name?: unknown };
  pod?: { name?: unknown };
}

/** Checks the kubernetes.io claims and that `sub` agrees with them. */
export function subjectFromClaims(payload: JWTPayload): TokenSubject {
  const k8s = payload["kubernetes.io"] as KubernetesClaims | undefined;
  const fromSub = parseServiceAccountUsername(payload.sub);
  if (!fromSub) throw unauthenticated("TOKEN_BAD_CLAIMS", "token subject is not system:serviceaccount:NAMESPACE:NAME; use a projected service-account token");
  if (!k8s || typeof k8s !== "object" || typeof k8s.namespace !== "string" || typeof k8s.serviceaccount?.name !== "string") {
    throw unauthenticated("TOKEN_BAD_CLAIMS", "token lacks the kubernetes.io namespace and serviceaccount claims; use a projected service-account token");
  }
  if (k8s.namespace !== fromSub.namespace || k8s.serviceaccount.name !== fromSub.serviceAccount) {
    throw unauthenticated("TOKEN_BAD_CLAIMS", "token subject disagrees with its kubernetes.io claims");
  }
  const podName = typeof k8s.pod?.name === "string" ? k8s.pod.name : undefined;
  return podName ? { ...fromSub, podName } : fromSub;
}

function mapJoseError(err: unknown, issuer: string): CertifyError {
  if (err instanceof CertifyError) return err;
  if (err instanceof joseErrors.JWTExpired) return unauthenticated("TOKEN_EXPIRED", "token has expired; kubelet refreshes projected tokens, so re-read the token file");
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === "aud") return unauthenticated("TOKEN_WRONG_AUDIENCE", `token audience is not ${TOKEN_AUDIENCE}; project the token with audience ${TOKEN_AUDIENCE}`);
    if (err.claim === "iss") return unauthenticated("TOKEN_WRONG_ISSUER", `token issuer is not ${issuer}`);
    if (err.claim === "nbf" || err.claim === "iat") return unauthenticated("TOKEN_NOT_YET_VALID", "token is not valid yet; check the clocks");
    return unauthenticated("TOKEN_BAD_CLAIMS", `token claim ${err.claim} is missing or invalid`);
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed || err instanceof joseErrors.JWKSNoMatchingKey) {
    return unauthenticated("TOKEN_BAD_SIGNATURE", "token signature does not verify against the service-account issuer's keys");
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed || err instanceof joseErrors.JOSENotSupported) {
    return unauthenticated("TOKEN_BAD_ALGORITHM", "token is signed with an algorithm the service-account issuer does not use");
  }
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) {
    return unauthenticated("TOKEN_KEYS_UNAVAILABLE", "the service-account issuer's JWKS cannot be fetched; retry later");
  }
  return unauthenticated("TOKEN_MALFORMED", "token is not a well-formed JWT");
}

export interface JwksValidatorOptions {
  /** The JWKS itself (e.g. read from a file) or its URL. */
  jwks: JSONWebKeySet | URL;
  /** The service-account issuer (`iss`), e.g. https://kubernetes.default.svc.cluster.local. */
  issuer: string;
  audience?: string;
  clockToleranceSeconds?: number;
}

/**
 * Whether `token` is strictly in JWS compact serialization (RFC 7515 §3.1, §5.2): three base64url
 * parts with no whitespace, padding or other characters, and a signature in canonical base64url
 * (no stray bits in its last character). jose decodes the signature leniently, so without this a
 * token could be altered without invalidating it: the same signed token in many spellings.
 */
function strictCompact(token: string): boolean {
  const parts = token.split(".");
  if (parts.length !== 3 || !parts.every((p) => p.length > 0 && /^[A-Za-z0-9_-]+$/.test(p))) return false;
  const signature = parts[2]!;
  return Buffer.from(signature, "base64url").toString("base64url") === signature;
}

export function jwksTokenValidator(opts: JwksValidatorOptions): TokenValidator {
  const keys = opts.jwks instanceof URL ? createRemoteJWKSet(opts.jwks) : createLocalJWKSet(opts.jwks);
  const audience = opts.audience ?? TOKEN_AUDIENCE;
  return {
    mode: "jwks",
    async validate(token, now) {
      if (!strictCompact(token)) throw unauthenticated("TOKEN_MALFORMED", "token is not a well-formed JWT (JWS compact serialization)");
      try {
        const { payload } = await jwtVerify(token, keys, {
          issuer: opts.issuer,
          audience,
          currentDate: new Date(now),
          clockTolerance: opts.clockToleranceSeconds ?? 0,
          algorithms: ["ES256", "RS256", "ES384", "PS256", "EdDSA"],
          requiredClaims: ["exp", "sub"],
        });
        return subjectFromClaims(payload);
      } catch (err) {
        throw mapJoseError(err, opts.issuer);
      }
    },
  };
}

/** The one call tokenreview mode needs; satisfied by @kubernetes/client-node's AuthenticationV1Api. */
export interface TokenReviewApi {
  createTokenReview(param: { body: TokenReviewBody }): Promise<TokenReviewBody>;
}

export interface TokenReviewBody {
  apiVersion?: string;
  kind?: string;
  spec: { token?: string; audiences?: string[] };
  status?: { authenticated?: boolean; error?: string; audiences?: string[]; user?: { username?: string; extra?: Record<string, string[]> } };
}

export function tokenReviewValidator(api: TokenReviewApi, audience = TOKEN_AUDIENCE): TokenValidator {
  return {
    mode: "tokenreview",
    async validate(token) {
      let review: TokenReviewBody;
      try {
        review = await api.createTokenReview({ body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token, audiences: [audience] } } });
      } catch (err) {
        throw new CertifyError("UNAUTHENTICATED", "TOKEN_REVIEW_FAILED", `TokenReview call to the Kubernetes API failed (${(err as Error).message?.slice(0, 200)}); check the CA's RBAC (system:auth-delegator)`);
      }
      const status = review.status ?? {};
      if (!status.authenticated) {
        const reason = status.error ?? "not authenticated";
        if (/expired/i.test(reason)) throw unauthenticated("TOKEN_EXPIRED", `token rejected by TokenReview: ${reason.slice(0, 200)}`);
        if (/audience/i.test(reason)) throw unauthenticated("TOKEN_WRONG_AUDIENCE", `token rejected by TokenReview: ${reason.slice(0, 200)}`);
        throw unauthenticated("TOKEN_REJECTED", `token rejected by TokenReview: ${reason.slice(0, 200)}`);
      }
      if (status.audiences && !status.audiences.includes(audience)) throw unauthenticated("TOKEN_WRONG_AUDIENCE", `token audience is not ${audience}`);
      const subject = parseServiceAccountUsername(status.user?.username);
      if (!subject) throw unauthenticated("TOKEN_NOT_SERVICE_ACCOUNT", `token belongs to ${status.user?.username ?? "nobody"}, not a service account`);
      const podName = status.user?.extra?.["authentication.kubernetes.io/pod-name"]?.[0];
      return podName ? { ...subject, podName } : subject;
    },
  };
}

/**
 * The TokenReview client for the cluster the CA runs in (in-cluster service account, or the
 * KUBECONFIG / ~/.kube/config outside), or for an explicit KubeConfig.
 */
export async function kubernetesTokenReviewApi(kubeConfig?: import("@kubernetes/client-node").KubeConfig): Promise<TokenReviewApi> {
  const k8s = await import("@kubernetes/client-node");
  const kc = kubeConfig ?? new k8s.KubeConfig();
  if (!kubeConfig) kc.loadFromDefault();
  return kc.makeApiClient(k8s.AuthenticationV1Api) as unknown as TokenReviewApi;
}
