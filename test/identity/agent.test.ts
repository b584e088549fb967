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
import { ManualClock } from "../../src/core/clock.js";
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

interface FakeCaOptions {
  lifetimeMs?: number;
  /** notBefore backdating, as the real CA does (20 s by default there). */
  clockSkewMs?: number;
}

/** A CA stand-in on the manual clock: real CSR checks and signing; switchable down, slow or hung. */
function fakeCa(clock: ManualClock, { lifetimeMs = LIFETIME, clockSkewMs = 0 }: FakeCaOptions = {}) {
  const certifier = new Certifier({ trustDomain: "cluster.local", lifetimeMs, clockSkewMs, tokenValidator: null as never, issuer: () => issuer, clock });
  const state = { down: false, hang: false, delayMs: 0, calls: [] as { at: number; token: string }[] };
  const certify = async (req: CertifyCall) => {
    state.calls.push({ at: clock.now(), token: req.token.toString() });
    if (state.down) throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    if (state.hang) return new Promise<never>(() => {});
    // A starved CA: the answer (and the certificate's issue time) comes delayMs later.
    if (state.delayMs > 0) await new Promise((resolve) => clock.setTimeout(() => resolve(undefined), state.delayMs));
    const accepted = checkCsr(req.csrDer, { identity, dnsName: toDnsName(identity), spiffeId: toSpiffeId(identity) });
    const issued = certifier.issue(identity, accepted.spki, accepted.keyBits);
    return { leafDer: issued.leafDer, chainDer: issued.chainDer, validUntil: issued.validUntil };
  };
  return { state, certify };
}

const realTick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An agent on a manual clock against a fake CA; without options, a 1-4 s backoff (with options, as given). */
async function setup(random: () => number, options: FakeCaOptions & { backoff?: { initialMs: number; maxMs: number } } = { backoff: { initialMs: 1000, maxMs: 4000 } }) {
  // Whole seconds: X.509 times have one-second resolution.
  const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000);
  const tokenFile = join(dir, `token-${Math.random()}`);
  await writeFile(tokenFile, "token-1");
  const ca = fakeCa(clock, options);
  const agent = new CertificateAgent({ identity, tokenFile, certify: ca.certify, clock, random, backoff: options.backoff });
  const events = { certificates: [] as Credentials[], expired: 0, failures: [] as { code: string; retryIn: number; left: number }[] };
  agent.on("certificate", (c: Credentials) => events.certificates.push(c));
  agent.on("expired", () => events.expired++);
  agent.on("failure", (e: { code?: string }, retryIn: number) => {
    // What the certificate in hand had left when the retry was timed.
    const left = (events.certificates.at(-1)?.notAfter ?? clock.now()) - clock.now();
    events.failures.push({ code: String(e.code), retryIn, left });
  });
  /** Lets the agent's work run: its attempt finishes or, against a slow or hung CA, waits on the manual clock. */
  const settle = async (): Promise<void> => {
    const blocking = ca.state.hang || ca.state.delayMs > 0;
    // The real wait only covers the token read (real I/O) before the call reaches the CA.
    await (blocking ? Promise.race([agent.settled(), realTick(200)]) : agent.settled());
    // Late answers arrive on promise callbacks.
    await new Promise((resolve) => setImmediate(resolve));
  };
  const step = async (ms: number): Promise<void> => {
    for (let left = ms; left > 0; left -= 100) {
      clock.advance(Math.min(100, left));
      await settle();
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

test("CA down: capped exponential backoff that never waits past a third of the validity left, the certificate is kept until it expires, then not ready; CA back: recovers", async () => {
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
  const beforeExpiry = events.failures.filter((f) => f.left > 0);
  assert.ok(beforeExpiry.length >= 4, `${beforeExpiry.length} failed attempts before expiry`);
  // The backoff (1000 ms doubling to 4000, half jitter: random 0.5 -> 3/4 of the ceiling) while it
  // fits; then at most a third of the validity left (at least 100 ms), so tries go on to the end.
  assert.equal(beforeExpiry[0]!.retryIn, 750);
  for (const f of beforeExpiry) assert.ok(f.retryIn <= Math.max(100, Math.round(f.left / 3)), `waited ${f.retryIn} ms with ${f.left} ms left`);
  assert.ok(ca.state.calls.at(-1)!.at >= first.notAfter - 300, "the last try came in the certificate's last moments");
  await step(200);
  assert.equal(agent.isReady(), false);
  assert.equal(agent.current(), undefined);
  assert.equal(events.expired, 1);
  await step(8000);
  const afterExpiry = events.failures.filter((f) => f.left <= 0);
  assert.ok(afterExpiry.length >= 2, `${afterExpiry.length} failed attempts after expiry`);
  assert.ok(afterExpiry.every((f) => f.retryIn === 3000), "without a certificate, the backoff alone, at its cap");
  const failed = ca.state.calls.length;
  ca.state.down = false;
  await step(4100);
  assert.equal(agent.isReady(), true);
  assert.equal(ca.state.calls.length, failed + 1);
  assert.equal(events.certificates.length, 2);
  agent.stop();
});

test("CA down at renewal and back before expiry: the certificate is renewed in time (the backoff alone slept past expiry)", async () => {
  // The agent's default backoff (1 s doubling to 60 s). Before: tries at about 7, 7.8 and 9.3 s,
  // then 3 s of backoff put the next one past 12 s, after the certificate had expired at 10 s.
  const { clock, agent, ca, events, step, begin } = await setup(() => 0.5, { backoff: undefined });
  await begin();
  const first = agent.current()!;
  ca.state.down = true;
  while (clock.now() < first.notAfter - 500) {
    await step(100);
    assert.equal(agent.isReady(), true);
  }
  ca.state.down = false;
  while (clock.now() < first.notAfter + 1000) {
    await step(100);
    assert.equal(agent.isReady(), true, `not ready ${clock.now() - first.notAfter} ms after the first certificate's expiry`);
  }
  assert.equal(events.expired, 0);
  assert.equal(events.certificates.length, 2);
  assert.ok(events.failures.length >= 3, `${events.failures.length} failed attempts`);
  agent.stop();
});

test("5-second certificates survive a hung renewal call: it is abandoned after a third of the time left, not after a 1 s floor", async () => {
  // Renewal at 3.5 s leaves 1.5 s. Before: the call was given 1 s and the retry 0.75 s of backoff,
  // so the next try came after expiry.
  const { clock, agent, ca, events, step, begin } = await setup(() => 0.5, { lifetimeMs: 5000 });
  await begin();
  const first = agent.current()!;
  ca.state.hang = true;
  while (events.failures.length === 0) await step(100);
  assert.deepEqual(events.failures.map((f) => f.code), ["AGENT_CERTIFY_TIMEOUT"]);
  assert.ok(clock.now() - ca.state.calls[1]!.at <= 600, `abandoned after ${clock.now() - ca.state.calls[1]!.at} ms`);
  ca.state.hang = false;
  while (clock.now() < first.notAfter + 1000) {
    await step(100);
    assert.equal(agent.isReady(), true, `not ready ${clock.now() - first.notAfter} ms after the first certificate's expiry`);
  }
  assert.equal(events.expired, 0);
  assert.equal(events.certificates.length, 2);
  agent.stop();
});

test("a slow CA's answer that comes after the agent stopped waiting is installed, and the pending retry is dropped", async () => {
  // The renewal at 7 s waits 1 s (a third of the 3 s left); the CA answers at 8.5 s. Before: that
  // answer was thrown away and the retries, as slow, were abandoned in turn until expiry.
  const { clock, agent, ca, events, step, begin } = await setup(() => 0.5);
  await begin();
  const start = clock.now();
  ca.state.delayMs = 1500;
  await step(8100);
  assert.deepEqual(events.failures.map((f) => f.code), ["AGENT_CERTIFY_TIMEOUT"]);
  assert.equal(events.certificates.length, 1);
  await step(400);
  assert.equal(clock.now() - start, 8500);
  assert.equal(events.certificates.length, 2, "the late answer was installed when it came");
  assert.equal(events.certificates[1]!.notAfter, start + 9000 + LIFETIME, "issued at 8.5 s, expiry rounded up to the second");
  await step(1500);
  assert.equal(ca.state.calls.length, 2, "no retry after the late answer renewed the certificate");
  assert.equal(events.expired, 0);
  assert.equal(agent.isReady(), true);
  agent.stop();
});

test("5-second certificates rotate back to back for a minute: renewal is timed from notAfter, so the CA's 20 s backdating of notBefore costs nothing", async () => {
  const { clock, agent, ca, events, step, begin } = await setup(() => 0.5, { lifetimeMs: 5000, clockSkewMs: 20_000 });
  await begin();
  const start = clock.now();
  while (clock.now() < start + 60_000) {
    await step(100);
    assert.equal(agent.isReady(), true, `not ready at ${clock.now() - start} ms`);
  }
  assert.equal(events.expired, 0);
  assert.equal(events.failures.length, 0);
  assert.ok(events.certificates.length >= 14, `${events.certificates.length} certificates`);
  assert.equal(ca.state.calls.length, events.certificates.length);
  events.certificates.forEach((c, i) => {
    assert.ok(c.notAfter - c.notBefore >= 25_000, "notBefore backdated by 20 s");
    // Renewed at 70% of the validity left (timed from notAfter, not notBefore): 30% of 5 s to spare.
    if (i > 0) assert.ok(events.certificates[i - 1]!.notAfter - ca.state.calls[i]!.at >= 1400, `renewal ${i} came ${events.certificates[i - 1]!.notAfter - ca.state.calls[i]!.at} ms before expiry`);
  });
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
  const { agent, ca, events, step, begin } = await setup(() => 0.5, { backoff: { initialMs: 500, maxMs: 500 } });
  await begin();
  assert.equal(events.certificates.length, 1);
  ca.state.hang = true;
  await step(7000); // renewal due at 70% of 10 s: this call never answers
  await step(1000); // a third of the 3 s left
  assert.deepEqual(events.failures.map((f) => f.code), ["AGENT_CERTIFY_TIMEOUT"]);
  ca.state.hang = false;
  await step(500); // backoff, then a working CA
  assert.equal(events.certificates.length, 2);
  assert.equal(events.expired, 0);
  assert.equal(agent.isReady(), true);
  agent.stop();
});
