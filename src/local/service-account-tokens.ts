/**
 * A local stand-in for the Kubernetes service-account token issuer: mints tokens shaped like
 * projected service-account tokens (ES256; iss, aud, iat, nbf, exp, sub
 * `system:serviceaccount:NS:SA`, and the `kubernetes.io` namespace/serviceaccount/pod claims)
 * with a local signing key, and exposes its JWKS for the CA's `jwks` token mode. Used by the
 * local mesh, the identity demo and tests.
 */
import { randomUUID, createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { SignJWT, exportJWK, exportPKCS8, generateKeyPair, importPKCS8, type CryptoKey, type JSONWebKeySet, type JWK } from "jose";
import { TOKEN_AUDIENCE } from "../identity/names.js";

export const LOCAL_SA_ISSUER = "https://kubernetes.default.svc.cluster.local";

export interface MintOptions {
  namespace: string;
  serviceAccount: string;
  podName?: string;
  /** Defaults to identity.tether.io. */
  audience?: string | string[];
  /** Token lifetime (default 1 h, the minimum kubelet uses is 10 min). */
  lifetimeSeconds?: number;
  /** Issue time in ms (default now); lets tests mint expired or future tokens. */
  now?: number;
  serviceAccountUid?: string;
  podUid?: string;
}

export class ServiceAccountTokenIssuer {
  private constructor(
    readonly issuer: string,
    private readonly privateKey: CryptoKey,
    private readonly publicJwk: JWK,
    readonly keyId: string,
  ) {}

  static async create(issuer = LOCAL_SA_ISSUER): Promise<ServiceAccountTokenIssuer> {
    const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
    return ServiceAccountTokenIssuer.fromKeys(issuer, privateKey, await exportJWK(publicKey));
  }

  /** Loads a signing key saved with `save` (PKCS#8 PEM), so tokens survive restarts. */
  static async load(keyPath: string, issuer = LOCAL_SA_ISSUER): Promise<ServiceAccountTokenIssuer> {
    const privateKey = await importPKCS8(await readFile(keyPath, "utf8"), "ES256", { extractable: true });
    const jwk = await exportJWK(privateKey);
    const { d: _d, ...publicJwk } = jwk;
    return ServiceAccountTokenIssuer.fromKeys(issuer, privateKey, publicJwk);
  }

  private static fromKeys(issuer: string, privateKey: CryptoKey, publicJwk: JWK): ServiceAccountTokenIssuer {
    // Like kube-apiserver: the key id is derived from the public key.
    const kid = createHash("sha256").update(JSON.stringify({ crv: publicJwk.crv, x: publicJwk.x, y: publicJwk.y })).digest("base64url").slice(0, 43);
    return new ServiceAccountTokenIssuer(issuer, privateKey, { ...publicJwk, kid, alg: "ES256", use: "sig" }, kid);
  }

  async save(keyPath: string): Promise<void> {
    await writeFile(keyPath, await exportPKCS8(this.privateKey), { mode: 0o600 });
  }

  /** The public keys, as served at the issuer's /openid/v1/jwks. */
  jwks(): JSONWebKeySet {
    return { keys: [{ ...this.publicJwk }] };
  }

  async mint(opts: MintOptions): Promise<string> {
    const nowSec = Math.floor((opts.now ?? Date.now()) / 1000);
    const lifetime = opts.lifetimeSeconds ?? 3600;
    const podName = opts.podName ?? `${opts.serviceAccount}-0`;
    return new SignJWT({
      "kubernetes.io": {
        namespace: opts.namespace,
        serviceaccount: { name: opts.serviceAccount, uid: opts.serviceAccountUid ?? randomUUID() },
        pod: { name: podName, uid: opts.podUid ?? randomUUID() },
      },
    })
      .setProtectedHeader({ alg: "ES256", kid: this.keyId })
      .setIssuer(this.issuer)
      .setAudience(opts.audience ?? TOKEN_AUDIENCE)
      .setSubject(`system:serviceaccount:${opts.namespace}:${opts.serviceAccount}`)
      .setIssuedAt(nowSec)
      .setNotBefore(nowSec)
      .setExpirationTime(nowSec + lifetime)
      .setJti(randomUUID())
      .sign(this.privateKey);
  }
}
