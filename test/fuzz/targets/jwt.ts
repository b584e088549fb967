/**
 * Service-account token validation (src/ca/tokens.ts, jwks mode) on tokens that should pass and
 * tokens that should not: signed by another key, alg "none", HS256 keyed with the issuer's public
 * key (algorithm confusion), RS256 from a foreign key under the issuer's kid, wrong or missing
 * audience, another issuer, expired or not yet valid, no expiry, a subject that disagrees with the
 * kubernetes.io claims, a wrong kid; mutated and random strings. Oracle: validate() resolves only
 * for a token the issuer signed with every claim right, exactly as it was signed (no other
 * spelling of it), and then with exactly its service account; every refusal is a CertifyError.
 */
import { createSecretKey, generateKeyPairSync } from "node:crypto";
import fc from "fast-check";
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from "jose";
import { CertifyError } from "../../../src/ca/errors.js";
import { jwksTokenValidator } from "../../../src/ca/tokens.js";
import { TOKEN_AUDIENCE } from "../../../src/identity/names.js";
import { expect, target } from "./target.js";

const ISSUER = "https://kubernetes.default.svc.cluster.local";
const NOW = Date.UTC(2026, 10, 1, 12);
const ACCOUNTS = [["shop", "web"], ["shop", "api"], ["prod", "web"]] as const;

interface Spec {
  account: number;
  key: "issuer" | "foreign" | "none" | "hs256-public" | "rs256-foreign";
  audience: "right" | "wrong" | "list" | "missing";
  issuer: "right" | "wrong";
  time: "valid" | "expired" | "future" | "no-exp";
  claims: "ok" | "sub-mismatch" | "missing" | "not-serviceaccount";
  kid: "right" | "wrong" | "missing";
}

type Input = { spec: Spec; edits: [number, number, number][] } | { random: string };

const specArb: fc.Arbitrary<Spec> = fc.record({
  account: fc.nat(ACCOUNTS.length - 1),
  key: fc.oneof({ weight: 4, arbitrary: fc.constant("issuer" as const) }, { weight: 1, arbitrary: fc.constantFrom("foreign" as const, "none" as const, "hs256-public" as const, "rs256-foreign" as const) }),
  audience: fc.oneof({ weight: 4, arbitrary: fc.constant("right" as const) }, { weight: 1, arbitrary: fc.constantFrom("wrong" as const, "list" as const, "missing" as const) }),
  issuer: fc.oneof({ weight: 4, arbitrary: fc.constant("right" as const) }, { weight: 1, arbitrary: fc.constant("wrong" as const) }),
  time: fc.oneof({ weight: 4, arbitrary: fc.constant("valid" as const) }, { weight: 1, arbitrary: fc.constantFrom("expired" as const, "future" as const, "no-exp" as const) }),
  claims: fc.oneof({ weight: 4, arbitrary: fc.constant("ok" as const) }, { weight: 1, arbitrary: fc.constantFrom("sub-mismatch" as const, "missing" as const, "not-serviceaccount" as const) }),
  kid: fc.oneof({ weight: 4, arbitrary: fc.constant("right" as const) }, { weight: 1, arbitrary: fc.constantFrom("wrong" as const, "missing" as const) }),
});

const arbitrary: fc.Arbitrary<Input> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ spec: specArb, edits: fc.constant([] as [number, number, number][]) }) },
  { weight: 2, arbitrary: fc.record({ spec: specArb, edits: fc.array(fc.tuple(fc.nat(1000), fc.nat(3), fc.integer({ min: 32, max: 126 })), { minLength: 1, maxLength: 3 }) }) },
  { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 200 }), fc.constantFrom("", ".", "..", "a.b.c", "eyJhbGciOiJub25lIn0.e30.")).map((random) => ({ random })) },
);

/** Whether the spec describes a token the CA must accept (a missing kid still names the only key). */
const shouldPass = (s: Spec): boolean =>
  s.key === "issuer" && (s.audience === "right" || s.audience === "list") && s.issuer === "right" && s.time === "valid" && s.claims === "ok" && s.kid !== "wrong";

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

function mutate(token: string, edits: [number, number, number][]): string {
  let out = token;
  for (const [at, op, code] of edits) {
    const i = at % Math.max(1, out.length);
    const ch = String.fromCharCode(code);
    if (op === 0) out = out.slice(0, i) + ch + out.slice(i + 1);
    else if (op === 1) out = out.slice(0, i);
    else if (op === 2) out = out.slice(0, i) + ch + out.slice(i);
    else out = out.slice(0, i) + out.slice(i + 1);
  }
  return out;
}

export const jwtTarget = target<Input>({
  name: "jwt",
  what: "service-account token validation: only issuer-signed tokens with every claim right pass (no alg none, no HS256 confusion)",
  testRuns: 1000,
  shares: { accepted: 0.1, refused: 0.3 },
  async open() {
    const issuer = await generateKeyPair("ES256", { extractable: true });
    const foreign = await generateKeyPair("ES256");
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const publicJwk: JWK = { ...(await exportJWK(issuer.publicKey)), kid: "issuer-key", alg: "ES256", use: "sig" };
    const validator = jwksTokenValidator({ jwks: { keys: [publicJwk] }, issuer: ISSUER });
    const cache = new Map<string, string>();

    async function mint(s: Spec): Promise<string> {
      const key = JSON.stringify(s);
      const cached = cache.get(key);
      if (cached) return cached;
      const [namespace, name] = ACCOUNTS[s.account]!;
      const nowSec = Math.floor(NOW / 1000) + (s.time === "expired" ? -7200 : s.time === "future" ? 7200 : 0);
      const k8s = s.claims === "missing" ? {} : { "kubernetes.io": { namespace, serviceaccount: { name: s.claims === "sub-mismatch" ? `${name}x` : name } } };
      const claims: Record<string, unknown> = {
        ...k8s,
        iss: s.issuer === "right" ? ISSUER : "https://other.example.com",
        sub: s.claims === "not-serviceaccount" ? "system:node:worker-1" : `system:serviceaccount:${namespace}:${name}`,
        iat: nowSec,
        nbf: nowSec,
        ...(s.time === "no-exp" ? {} : { exp: nowSec + 600 }),
        ...(s.audience === "missing" ? {} : { aud: s.audience === "right" ? TOKEN_AUDIENCE : s.audience === "list" ? ["kubernetes", TOKEN_AUDIENCE] : "kubernetes" }),
      };
      const kid = s.kid === "right" ? { kid: "issuer-key" } : s.kid === "wrong" ? { kid: "other-key" } : {};
      let token: string;
      if (s.key === "none") token = `${b64({ alg: "none", typ: "JWT", ...kid })}.${b64(claims)}.`;
      else {
        const [alg, signer]: [string, CryptoKey | ReturnType<typeof createSecretKey> | typeof rsa.privateKey] =
          s.key === "issuer" ? ["ES256", issuer.privateKey] : s.key === "foreign" ? ["ES256", foreign.privateKey] : s.key === "rs256-foreign" ? ["RS256", rsa.privateKey] : ["HS256", createSecretKey(Buffer.from(JSON.stringify(publicJwk)))];
        token = await new SignJWT(claims).setProtectedHeader({ alg, typ: "JWT", ...kid }).sign(signer);
      }
      cache.set(key, token);
      return token;
    }

    return {
      arbitrary,
      concurrent: true,
      async check(input) {
        let token: string;
        let original: string | undefined;
        let spec: Spec | undefined;
        if ("random" in input) token = input.random;
        else {
          spec = input.spec;
          original = await mint(spec);
          token = mutate(original, input.edits);
        }
        let subject;
        try {
          subject = await validator.validate(token, NOW);
        } catch (err) {
          if (err instanceof CertifyError) return "refused";
          throw err;
        }
        expect(spec && shouldPass(spec), `accepted a token that must fail: ${JSON.stringify(spec ?? token.slice(0, 80))}`);
        // Header and payload are signed as written, the signature must be canonical: only the token itself passes.
        expect(token === original, `accepted an altered spelling of a valid token: ${JSON.stringify(token)}`);
        const [namespace, name] = ACCOUNTS[spec.account]!;
        expect(subject.namespace === namespace && subject.serviceAccount === name, `accepted as ${subject.namespace}/${subject.serviceAccount}`);
        return "accepted";
      },
    };
  },
});
