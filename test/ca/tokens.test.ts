import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import { CertifyError } from "../../src/ca/errors.js";
import { jwksTokenValidator, kubernetesTokenReviewApi, parseServiceAccountUsername, tokenReviewValidator, type TokenReviewBody } from "../../src/ca/tokens.js";
import { ServiceAccountTokenIssuer } from "../../src/local/service-account-tokens.js";

let issuer: ServiceAccountTokenIssuer;
before(async () => {
  issuer = await ServiceAccountTokenIssuer.create();
});

test("jwks mode accepts a projected token and returns its service account and pod", async () => {
  const v = jwksTokenValidator({ jwks: issuer.jwks(), issuer: issuer.issuer });
  const token = await issuer.mint({ namespace: "shop", serviceAccount: "web", podName: "web-7d9f" });
  assert.deepEqual(await v.validate(token, Date.now()), { namespace: "shop", serviceAccount: "web", podName: "web-7d9f" });
});

test("jwks mode names each problem", async () => {
  const v = jwksTokenValidator({ jwks: issuer.jwks(), issuer: issuer.issuer });
  const other = await ServiceAccountTokenIssuer.create("https://other.example");
  const cases: [string, Promise<string>, string, number?][] = [
    ["expired", issuer.mint({ namespace: "shop", serviceAccount: "web", now: Date.now() - 3600_000, lifetimeSeconds: 60 }), "TOKEN_EXPIRED"],
    ["not yet valid", issuer.mint({ namespace: "shop", serviceAccount: "web", now: Date.now() + 3600_000 }), "TOKEN_NOT_YET_VALID"],
    ["wrong audience", issuer.mint({ namespace: "shop", serviceAccount: "web", audience: "vault" }), "TOKEN_WRONG_AUDIENCE"],
    ["foreign key", other.mint({ namespace: "shop", serviceAccount: "web" }), "TOKEN_BAD_SIGNATURE"],
    ["garbage", Promise.resolve("a.b.c"), "TOKEN_MALFORMED"],
  ];
  for (const [name, token, code] of cases) {
    await assert.rejects(v.validate(await token, Date.now()), (e: CertifyError) => e.status === "UNAUTHENTICATED" && e.code === code, name);
  }
  const wrongIssuer = jwksTokenValidator({ jwks: issuer.jwks(), issuer: "https://expected.example" });
  await assert.rejects(wrongIssuer.validate(await issuer.mint({ namespace: "shop", serviceAccount: "web" }), Date.now()), (e: CertifyError) => e.code === "TOKEN_WRONG_ISSUER");
});

// Found by the jwt fuzz target (shrunk: one space inserted in the signature of a valid token): jose
// decodes base64url leniently, so altered spellings of a valid token passed. Only the exact token does.
test("jwks mode refuses any other spelling of a valid token (RFC 7515 compact serialization)", async () => {
  const v = jwksTokenValidator({ jwks: issuer.jwks(), issuer: issuer.issuer });
  const token = await issuer.mint({ namespace: "shop", serviceAccount: "web" });
  const signature = token.slice(token.lastIndexOf(".") + 1);
  const lastChar = signature.at(-1)!;
  // The last of 86 base64url characters carries 4 unused bits: another character there decodes to the same bytes.
  const sameBytes = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".split("").find((c) => c !== lastChar && Buffer.from(signature.slice(0, -1) + c, "base64url").equals(Buffer.from(signature, "base64url")))!;
  const spellings = [
    `${token.slice(0, -10)} ${token.slice(-10)}`,
    `${token}\n`,
    `${token}=`,
    `${token.slice(0, -1)}${sameBytes}`,
    ` ${token}`,
  ];
  for (const spelling of spellings) {
    await assert.rejects(v.validate(spelling, Date.now()), (e: CertifyError) => e.code === "TOKEN_MALFORMED", JSON.stringify(spelling.slice(-12)));
  }
  assert.equal((await v.validate(token, Date.now())).serviceAccount, "web");
});

test("service-account usernames parse strictly", () => {
  assert.deepEqual(parseServiceAccountUsername("system:serviceaccount:shop:web"), { namespace: "shop", serviceAccount: "web" });
  for (const bad of ["system:serviceaccount:shop", "system:serviceaccount:shop:web:x", "alice", "system:serviceaccount::web", 7]) {
    assert.equal(parseServiceAccountUsername(bad), undefined);
  }
});

// A fake kube-apiserver answering TokenReview; the real @kubernetes/client-node talks to it.
let api: Server;
const reviews: TokenReviewBody[] = [];
before(async () => {
  api = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      if (req.method !== "POST" || req.url !== "/apis/authentication.k8s.io/v1/tokenreviews") return res.writeHead(404).end();
      const review = JSON.parse(body) as TokenReviewBody;
      reviews.push(review);
      const token = review.spec.token ?? "";
      const status =
        token === "good"
          ? { authenticated: true, audiences: review.spec.audiences, user: { username: "system:serviceaccount:shop:web", extra: { "authentication.kubernetes.io/pod-name": ["web-0"] } } }
          : token === "user"
            ? { authenticated: true, audiences: review.spec.audiences, user: { username: "alice" } }
            : token === "other-aud"
              ? { authenticated: true, audiences: ["https://kubernetes.default.svc"], user: { username: "system:serviceaccount:shop:web" } }
              : { authenticated: false, error: "[invalid bearer token, token has expired]" };
      res.writeHead(201, { "content-type": "application/json" }).end(JSON.stringify({ ...review, status }));
    });
  });
  api.listen(0, "127.0.0.1");
  await once(api, "listening");
});
after(() => {
  api?.close();
});

test("tokenreview mode asks the Kubernetes API with audience identity.tether.io", async () => {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "fake", server: `http://127.0.0.1:${(api.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: "ca", token: "ca-token" }],
    contexts: [{ name: "fake", cluster: "fake", user: "ca" }],
    currentContext: "fake",
  });
  const v = tokenReviewValidator(await kubernetesTokenReviewApi(kc));
  assert.deepEqual(await v.validate("good", Date.now()), { namespace: "shop", serviceAccount: "web", podName: "web-0" });
  assert.deepEqual(reviews.at(-1)!.spec.audiences, ["identity.tether.io"]);
  await assert.rejects(v.validate("expired", Date.now()), (e: CertifyError) => e.code === "TOKEN_EXPIRED");
  await assert.rejects(v.validate("user", Date.now()), (e: CertifyError) => e.code === "TOKEN_NOT_SERVICE_ACCOUNT");
  await assert.rejects(v.validate("other-aud", Date.now()), (e: CertifyError) => e.code === "TOKEN_WRONG_AUDIENCE");
});

test("tokenreview mode fails closed when the API is unreachable", async () => {
  const v = tokenReviewValidator({ createTokenReview: () => Promise.reject(new Error("connect ECONNREFUSED 10.0.0.1:443")) });
  await assert.rejects(v.validate("good", Date.now()), (e: CertifyError) => e.status === "UNAUTHENTICATED" && e.code === "TOKEN_REVIEW_FAILED" && /RBAC/.test(e.message));
});
