import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bootstrapCa } from "../../src/ca/bootstrap.js";
import { Certifier } from "../../src/ca/certify.js";
import { checkCsr } from "../../src/ca/csr-policy.js";
import { loadIssuerFolder } from "../../src/ca/issuer-folder.js";
import type { Issuer } from "../../src/ca/issuer.js";
import { CertificateAgent, type CertifyCall } from "../../src/identity/agent.js";
import { ManualClock } from "../../src/identity/clock.js";
import { toDnsName, toSpiffeId, workloadIdentity } from "../../src/identity/names.js";
import type { Credentials } from "../../src/identity/tls.js";
import { verifyChain } from "../../src/identity/chain.js";

const identity = workloadIdentity("web", "shop");
const LIFETIME = 10_000;
let dir: string;
let issuer: Issuer;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "tether-agent-"));
  const paths = await bootstrapCa({ dir: join(dir, "pki"), trustDomain: "cluster.local" });
  issuer = await loadIssuerFolder(paths.issuerDir, undefined, Date.now());
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A CA stand-in on the manual clock: real CSR checks and signing, switchable down. */
function fakeCa(clock: ManualClock) {
  const certifier = new Certifier({ trustDomain: "cluster.local", lifetimeMs: LIFETIME, clockSkewMs: 0, tokenValidator: null as never, issuer: () => issuer, clock });
  const state = { down: false, calls: [] as { at: number; token: string }[] };
  const certify = async (req: CertifyCall) => {
    state.calls.push({ at: clock.now(), token: req.token.toString() });
    if (state.down) throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    const accepted = checkCsr(req.csrDer, { identity, dnsName: toDnsName(identity), spiffeId: toSpiffeId(identity) });
    const issued = certifier.issue(identity, accepted.spki, accepted.keyBits);
    return { leafDer: issued.leafDer, chainDer: issued.chainDer, validUntil: issued.validUntil };
  };
  return { state, certify };
}

async function setup(random: () => number) {
  // Whole seconds: X.509 times have one-second resolution.
  const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000);
  const tokenFile = join(dir, `token-${Math.random()}`);
  await writeFile(tokenFile, "token-1");
  const ca = fakeCa(clock);
  const agent = new CertificateAgent({ identity, tokenFile, certify: ca.certify, clock, random, backoff: { initialMs: 1000, maxMs: 4000 } });
  const events = { certificates: [] as Credentials[], expired: 0, failures: [] as number[] };
  agent.on("certificate", (c: Credentials) => events.certificates.push(c));
  agent.on("expired", () => events.expired++);
  agent.on("failure", (_e: unknown, retryIn: number) => events.failures.push(retryIn));
  const step = async (ms: number): Promise<void> => {
    for (let left = ms; left > 0; left -= 100) {
      clock.advance(Math.min(100, left));
      await agent.settled();
    }
  };
  const begin = async (): Promise<void> => {
    agent.start();
    clock.advance(0);
    await agent.settled();
  };
  return { clock, tokenFile, ca, agent, events, step, begin };
}

for (const [label, random, renewAt] of [
  ["without jitter", () => 0.5, 7000],
  ["with the earliest jitter", () => 0, 6300],
  ["with the latest jitter", () => 0.9999, 7700],
] as const) {
  test(`renews at 70% of the lifetime ${label} (${renewAt} ms of ${LIFETIME})`, async () => {
    const { clock, agent, ca, events, step, begin } = await setup(random);
    assert.equal(agent.isReady(), false);
    await begin();
    assert.equal(events.certificates.length, 1);
    assert.equal(agent.isReady(), true);
    const start = ca.state.calls[0]!.at;
    const creds = agent.current()!;
    assert.equal(creds.notAfter - start, LIFETIME);
    assert.deepEqual(verifyChain(creds.certChainPem, issuer.anchorsPem, clock.now()), identity);
    assert.match(creds.keyPem, /BEGIN PRIVATE KEY/);
    await step(renewAt - 200);
    assert.equal(ca.state.calls.length, 1, "no renewal before the renewal point");
    await step(300);
    assert.equal(ca.state.calls.length, 2, "renewed at the renewal point");
    assert.ok(Math.abs(ca.state.calls[1]!.at - start - renewAt) <= 100, `renewed at ${ca.state.calls[1]!.at - start} ms`);
    assert.equal(events.certificates.length, 2);
    assert.ok(events.certificates[1]!.notAfter > events.certificates[0]!.notAfter);
    agent.stop();
  });
}

test("re-reads the token file before every call", async () => {
  const { tokenFile, agent, ca, step, begin } = await setup(() => 0.5);
  await begin();
  await writeFile(tokenFile, "token-2");
  await step(7100);
  assert.deepEqual(ca.state.calls.map((c) => c.token), ["token-1", "token-2"]);
  agent.stop();
});

test("CA down: capped exponential backoff, the certificate is kept until it expires, then not ready; CA back: recovers", async () => {
  const { clock, agent, ca, events, step, begin } = await setup(() => 0.5);
  await begin();
  const first = agent.current()!;
  ca.state.down = true;
  // Until the first certificate expires, retries back off and the agent stays ready.
  while (clock.now() < first.notAfter - 100) {
    await step(100);
    assert.equal(agent.isReady(), true);
    assert.equal(agent.current(), first);
  }
  assert.ok(events.failures.length >= 2, `${events.failures.length} failed attempts`);
  // Delays: 1000, 2000, 4000, 4000... with half jitter (random 0.5 -> 3/4 of the ceiling).
  assert.deepEqual(events.failures.slice(0, 3), [750, 1500, 3000].slice(0, Math.min(3, events.failures.length)));
  await step(200);
  assert.equal(agent.isReady(), false);
  assert.equal(agent.current(), undefined);
  assert.equal(events.expired, 1);
  await step(8000);
  assert.ok(events.failures.every((d) => d <= 4000), "the backoff is capped");
  assert.ok(events.failures.slice(3).every((d) => d === 3000), "capped delays stay at the cap");
  const failed = ca.state.calls.length;
  ca.state.down = false;
  await step(4100);
  assert.equal(agent.isReady(), true);
  assert.equal(ca.state.calls.length, failed + 1);
  assert.equal(events.certificates.length, 2);
  agent.stop();
});

test("a certificate for another key is not installed", async () => {
  const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000);
  const tokenFile = join(dir, "token-x");
  await writeFile(tokenFile, "t");
  const ca = fakeCa(clock);
  let stolen: Buffer | undefined;
  // Capture a genuine leaf for a different key, then serve it to a second agent.
  const thief = new CertificateAgent({
    identity,
    tokenFile,
    clock,
    random: () => 0.5,
    certify: async (req) => {
      const r = await ca.certify(req);
      stolen ??= r.leafDer;
      return r;
    },
  });
  thief.start();
  clock.advance(0);
  await thief.settled();
  const victim = new CertificateAgent({ identity, tokenFile, clock, random: () => 0.5, certify: async () => ({ leafDer: stolen!, chainDer: [], validUntil: 0 }) });
  const failures: string[] = [];
  victim.on("failure", (e: { code?: string }) => failures.push(e.code ?? "?"));
  victim.start();
  clock.advance(0);
  await victim.settled();
  assert.deepEqual(failures, ["AGENT_WRONG_KEY"]);
  assert.equal(victim.isReady(), false);
  thief.stop();
  victim.stop();
});

test("a certify call that hangs is abandoned in time and retried before the certificate expires", async () => {
  const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000);
  const tokenFile = join(dir, `token-${Math.random()}`);
  await writeFile(tokenFile, "token-1");
  const ca = fakeCa(clock);
  let hang = false;
  const certify = (req: CertifyCall) => (hang ? new Promise<never>(() => {}) : ca.certify(req));
  const agent = new CertificateAgent({ identity, tokenFile, certify, clock, random: () => 0.5, backoff: { initialMs: 500, maxMs: 500 } });
  const failures: string[] = [];
  let certificates = 0;
  let expired = 0;
  agent.on("certificate", () => certificates++);
  agent.on("expired", () => expired++);
  agent.on("failure", (err: { code?: string }) => failures.push(String(err.code)));
  const tick = () => new Promise((r) => setTimeout(r, 20));
  agent.start();
  clock.advance(0);
  await tick();
  assert.equal(certificates, 1);
  hang = true;
  clock.advance(7000); // renewal due at 70% of 10 s: this call never answers
  await tick();
  clock.advance(1000); // a third of the 3 s left
  await tick();
  assert.deepEqual(failures, ["AGENT_CERTIFY_TIMEOUT"]);
  hang = false;
  clock.advance(500); // backoff, then a working CA
  await tick();
  assert.equal(certificates, 2);
  assert.equal(expired, 0);
  assert.equal(agent.isReady(), true);
  agent.stop();
});
