import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate, createPublicKey } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { bootstrapCa } from "../../src/ca/bootstrap.js";
import { Certifier } from "../../src/ca/certify.js";
import { CertifyError } from "../../src/ca/errors.js";
import { loadIssuerFolder } from "../../src/ca/issuer-folder.js";
import { jwksTokenValidator } from "../../src/ca/tokens.js";
import { certificateIdentity, parseSubjectAltNames } from "../../src/identity/chain.js";
import { systemClock } from "../../src/core/clock.js";
import { sameIdentity, toDnsName, toSpiffeId, workloadIdentity, type WorkloadIdentity } from "../../src/identity/names.js";
import { ServiceAccountTokenIssuer } from "../../src/local/service-account-tokens.js";
import { customCsr, p256 } from "../support/ca-csr.js";
import { workload } from "../support/ca-fixture.js";

const IDS: WorkloadIdentity[] = [
  workloadIdentity("web", "shop"),
  workloadIdentity("api", "shop"),
  workloadIdentity("web", "prod"),
  workloadIdentity("tether-identity", "tether"),
  workloadIdentity("web", "shop", "example.org"),
];
const NAMES = [...IDS.flatMap((id) => [toDnsName(id), toSpiffeId(id)]), "evil.example.com", "spiffe://cluster.local/ns/shop/sa/web/x", "", "web.shop.svc.cluster.local"];

let dir: string;
let certifier: Certifier;
let tokens: ServiceAccountTokenIssuer;
let stranger: ServiceAccountTokenIssuer;
const validCsrs = IDS.map((id) => workload(id.serviceAccount, id.namespace));

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "tether-prop-"));
  const paths = await bootstrapCa({ dir, trustDomain: "cluster.local" });
  const issuer = await loadIssuerFolder(paths.issuerDir, undefined, Date.now());
  tokens = await ServiceAccountTokenIssuer.create();
  stranger = await ServiceAccountTokenIssuer.create();
  certifier = new Certifier({
    trustDomain: "cluster.local",
    lifetimeMs: 3600_000,
    clockSkewMs: 10_000,
    tokenValidator: jwksTokenValidator({ jwks: tokens.jwks(), issuer: tokens.issuer }),
    issuer: () => issuer,
    clock: systemClock,
  });
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function mutate(buf: Buffer, edits: { at: number; op: number; byte: number }[]): Buffer {
  let out = Buffer.from(buf);
  for (const { at, op, byte } of edits) {
    const i = at % Math.max(1, out.length);
    if (op === 0) out[i] = byte;
    else if (op === 1) out = out.subarray(0, i);
    else if (op === 2) out = Buffer.concat([out.subarray(0, i), Buffer.from([byte]), out.subarray(i)]);
    else out = Buffer.concat([out.subarray(0, i), out.subarray(i + 1)]);
  }
  return out;
}

const edits = fc.array(fc.record({ at: fc.nat(2000), op: fc.integer({ min: 0, max: 3 }), byte: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 4 });
const idIndex = fc.integer({ min: 0, max: IDS.length - 1 });

const csrArb = fc.oneof(
  fc.uint8Array({ maxLength: 600 }).map((b) => ({ kind: "random", der: Buffer.from(b), key: undefined as Buffer | undefined })),
  fc.tuple(idIndex, edits).map(([i, e]) => ({ kind: "mutated", der: mutate(validCsrs[i]!.csr, e), key: undefined })),
  idIndex.map((i) => ({ kind: "valid", der: validCsrs[i]!.csr, key: validCsrs[i]!.publicKey.export({ format: "der", type: "spki" }) })),
  fc
    .record({
      cn: fc.option(fc.constantFrom(...NAMES), { nil: undefined }),
      dns: fc.option(fc.array(fc.constantFrom(...NAMES), { maxLength: 3 }), { nil: undefined }),
      uri: fc.option(fc.array(fc.constantFrom(...NAMES), { maxLength: 3 }), { nil: undefined }),
      ca: fc.option(fc.boolean(), { nil: undefined }),
    })
    .map((o) => {
      const key = p256();
      return { kind: "crafted", der: customCsr({ key, commonName: o.cn, dns: o.dns, uri: o.uri, ca: o.ca }), key: key.publicKey.export({ format: "der", type: "spki" }) };
    }),
);

const tokenArb = fc.oneof(
  fc.record({ i: idIndex, audience: fc.constantFrom("identity.tether.io", "identity.tether.io", "other"), expired: fc.boolean(), foreign: fc.boolean() }).map((t) => ({ kind: "minted" as const, ...t })),
  fc.tuple(idIndex, edits).map(([i, e]) => ({ kind: "mutated" as const, i, e })),
  fc.string({ maxLength: 300 }).map((s) => ({ kind: "random" as const, s })),
);

// Independent parts (mostly refusals), and coherent requests where only some parts go wrong.
const requestArb = fc.oneof(
  fc.tuple(csrArb, tokenArb, idIndex),
  fc.tuple(idIndex, fc.boolean(), fc.boolean()).chain(([i, validCsr, expired]) =>
    fc.tuple(
      validCsr ? fc.constant({ kind: "valid", der: validCsrs[i]!.csr, key: validCsrs[i]!.publicKey.export({ format: "der", type: "spki" }) as Buffer | undefined }) : csrArb,
      fc.constant({ kind: "minted" as const, i, audience: "identity.tether.io" as string, expired, foreign: false }),
      fc.constant(i),
    ),
  ),
);

test("random and mutated CSRs and tokens never crash the CA and never yield a certificate for anyone but the token's service account", async () => {
  let issued = 0;
  let refused = 0;
  await fc.assert(
    fc.asyncProperty(requestArb, async ([csr, tok, requested]) => {
      let token: string;
      let tokenId: WorkloadIdentity | undefined;
      if (tok.kind === "minted") {
        const id = IDS[tok.i]!;
        tokenId = id;
        token = await (tok.foreign ? stranger : tokens).mint({ namespace: id.namespace, serviceAccount: id.serviceAccount, audience: tok.audience, now: tok.expired ? Date.now() - 7200_000 : undefined, lifetimeSeconds: 600 });
      } else if (tok.kind === "mutated") {
        const id = IDS[tok.i]!;
        token = mutate(Buffer.from(await tokens.mint({ namespace: id.namespace, serviceAccount: id.serviceAccount })), tok.e).toString("latin1");
      } else {
        token = tok.s;
      }
      const requestedId = IDS[requested]!;
      try {
        const res = await certifier.certify({ identity: toDnsName(requestedId), token: Buffer.from(token, "latin1"), csrDer: csr.der });
        issued++;
        const leaf = new X509Certificate(res.leafDer);
        const id = certificateIdentity(leaf);
        // Whoever got a certificate held a valid token for exactly that identity.
        assert.ok(id && sameIdentity(id, requestedId));
        // A token names a service account and namespace, not a trust domain: the CA issues in its own.
        assert.ok(
          tokenId && tokenId.serviceAccount === requestedId.serviceAccount && tokenId.namespace === requestedId.namespace,
          "issued only for the token's service account",
        );
        assert.ok(tok.kind === "minted" && !tok.foreign && !tok.expired && tok.audience === "identity.tether.io");
        assert.deepEqual(parseSubjectAltNames(leaf.subjectAltName), { dns: [toDnsName(requestedId)], uri: [toSpiffeId(requestedId)] });
        assert.equal(leaf.ca, false);
        assert.ok(csr.key, `a ${csr.kind} CSR was accepted`);
        assert.deepEqual(leaf.publicKey.export({ format: "der", type: "spki" }), createPublicKey({ key: csr.key, format: "der", type: "spki" }).export({ format: "der", type: "spki" }));
      } catch (err) {
        if (err instanceof assert.AssertionError) throw err;
        refused++;
        assert.ok(err instanceof CertifyError, `unexpected ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
        assert.ok(err.message.length > 15);
      }
    }),
    { numRuns: 1500 },
  );
  assert.ok(issued > 10, `some requests were legitimately issued (${issued})`);
  assert.ok(refused > 1000, `most were refused (${refused})`);
});

test("random requests through the real gRPC API get a refusal code, and the CA keeps serving", async () => {
  const { startCaFixture } = await import("../support/ca-fixture.js");
  const grpc = await import("@grpc/grpc-js");
  const f = await startCaFixture();
  try {
    const valid = validCsrs[0]!;
    const token = await f.tokens.mint({ namespace: "shop", serviceAccount: "web" });
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.string({ maxLength: 80 }), fc.constantFrom(...NAMES)),
        fc.oneof(fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)), fc.tuple(edits).map(([e]) => mutate(Buffer.from(token), e))),
        fc.oneof(fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b)), fc.tuple(edits).map(([e]) => mutate(valid.csr, e))),
        async (identity, tok, csrDer) => {
          const outcome = await f.client.certify({ identity, token: tok, csrDer }).then(
            () => "issued",
            (err: { code: number }) => err.code,
          );
          if (outcome === "issued") {
            // Only possible when every edit happened to rewrite a byte with itself.
            assert.ok(tok.equals(Buffer.from(token)) && csrDer.equals(valid.csr) && identity === valid.dnsName);
            return;
          }
          assert.ok([grpc.status.UNAUTHENTICATED, grpc.status.PERMISSION_DENIED, grpc.status.INVALID_ARGUMENT].includes(outcome as number), `outcome ${outcome}`);
        },
      ),
      { numRuns: 300 },
    );
    const res = await f.client.certify({ identity: valid.dnsName, token: Buffer.from(token), csrDer: valid.csr });
    assert.ok(res.leafDer.length > 0);
  } finally {
    await f.close();
  }
});
