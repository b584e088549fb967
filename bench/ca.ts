/**
 * `npm run bench -- ca`: the identity CA's throughput (BENCH_SECONDS per row, default 3).
 *   - full Certify round trips over gRPC+TLS against a `tether ca serve` child process (its own
 *     core), concurrency 1 and 16, each request with a new key's CSR (made before timing starts),
 *     token checked in jwks mode, p50/p99 latency;
 *   - the signing path alone in this process (CSR check + certificate build + signature), for
 *     fresh CSRs and for renewals (identical CSR bytes, signature check cached);
 *   - the machine's raw ECDSA P-256 sign and verify rates with node:crypto, measured in the same run.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createPublicKey, generateKeyPairSync, sign, verify } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createCertifyClient } from "../src/api/identity-client.js";
import { bootstrapCa } from "../src/ca/bootstrap.js";
import { Certifier } from "../src/ca/certify.js";
import { VerifiedCsrCache, checkCsr } from "../src/ca/csr-policy.js";
import { loadIssuerFolder } from "../src/ca/issuer-folder.js";
import { systemClock } from "../src/core/clock.js";
import { buildCsr } from "../src/identity/csr.js";
import { toDnsName, toSpiffeId, workloadIdentity } from "../src/identity/names.js";
import { ServiceAccountTokenIssuer } from "../src/local/service-account-tokens.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const identity = workloadIdentity("web", "shop");
const dnsName = toDnsName(identity);
const spiffeId = toSpiffeId(identity);
const want = { identity, dnsName, spiffeId };

function freshCsr(): Buffer {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return buildCsr({ privateKey, publicKey, dnsName, spiffeId });
}

/**
 * Operations per second of each function. They run in alternating 100 ms slices rather than one
 * after the other, so a machine shared with other work slows them alike and the ratios hold.
 */
function rates(fns: ((i: number) => void)[], ms: number): number[] {
  for (const fn of fns) for (let i = 0; i < 200; i++) fn(i);
  const ops = fns.map(() => 0);
  const time = fns.map(() => 0);
  for (let elapsed = 0; elapsed < ms * fns.length; ) {
    fns.forEach((fn, k) => {
      const start = performance.now();
      let n = 0;
      while (performance.now() - start < 100) {
        for (let i = 0; i < 20; i++) fn(ops[k]! + n + i);
        n += 20;
      }
      const spent = performance.now() - start;
      ops[k]! += n;
      time[k]! += spent;
      elapsed += spent;
    });
  }
  return ops.map((n, k) => n / (time[k]! / 1000));
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function startCaProcess(dir: string, issuerDir: string, anchorsPath: string, jwksPath: string, tokenIssuer: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(
    process.execPath,
    [join(root, "bin/tether.mjs"), "ca", "serve", "--issuer-dir", issuerDir, "--anchors", anchorsPath, "--token-mode", "jwks", "--jwks-file", jwksPath, "--token-issuer", tokenIssuer, "--listen", "127.0.0.1:0", "--admin-port", "0", "--log-level", "info"],
    { stdio: ["ignore", "pipe", "pipe"], cwd: dir },
  );
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`CA did not start: ${out}`)), 20_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /"port":(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]) });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => reject(new Error(`CA exited with ${code}: ${out}`)));
  });
}

/** Unique CSRs made before the clock starts, so the client's key generation is not measured. */
function csrPool(count: number): () => Buffer {
  const pool = Array.from({ length: count }, freshCsr);
  return () => pool.pop() ?? freshCsr();
}

async function roundTrips(opts: { address: string; anchorsPem: string; serverName: string; token: Buffer; concurrency: number; seconds: number; nextCsr: () => Buffer }) {
  const client = createCertifyClient({ address: opts.address, anchorsPem: opts.anchorsPem, serverName: opts.serverName });
  const latencies: number[] = [];
  let failures = 0;
  try {
    await client.certify({ identity: dnsName, token: opts.token, csrDer: freshCsr() }); // connect + warm up
    const deadline = performance.now() + opts.seconds * 1000;
    const worker = async (): Promise<void> => {
      while (performance.now() < deadline) {
        const csrDer = opts.nextCsr();
        const t = performance.now();
        try {
          await client.certify({ identity: dnsName, token: opts.token, csrDer });
          latencies.push(performance.now() - t);
        } catch {
          failures++;
        }
      }
    };
    const start = performance.now();
    await Promise.all(Array.from({ length: opts.concurrency }, worker));
    const elapsed = (performance.now() - start) / 1000;
    latencies.sort((a, b) => a - b);
    return { perSecond: latencies.length / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), failures };
  } finally {
    client.close();
  }
}

export async function run(): Promise<void> {
  const seconds = Number(process.env.BENCH_SECONDS ?? 3);
  const dir = await mkdtemp(join(tmpdir(), "tether-bench-ca-"));
  let child: ChildProcess | undefined;
  try {
    const pki = await bootstrapCa({ dir: join(dir, "pki"), trustDomain: "cluster.local" });
    const tokens = await ServiceAccountTokenIssuer.create();
    const jwksPath = join(dir, "jwks.json");
    await writeFile(jwksPath, JSON.stringify(tokens.jwks()));
    const token = Buffer.from(await tokens.mint({ namespace: "shop", serviceAccount: "web" }));
    const anchorsPem = await readFile(pki.anchorsPath, "utf8");

    // In-process pieces first, while the CA process is not yet competing for the cores.
    const issuer = await loadIssuerFolder(pki.issuerDir, undefined, Date.now());
    const certifier = new Certifier({ trustDomain: "cluster.local", lifetimeMs: 86_400_000, clockSkewMs: 20_000, tokenValidator: null as never, issuer: () => issuer, clock: systemClock });
    const csrs = Array.from({ length: 2000 }, freshCsr);
    const ms = seconds * 1000;
    const cache = new VerifiedCsrCache();
    const accepted = checkCsr(csrs[0]!, want);
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const tbs = Buffer.alloc(480, 7); // about the size of a leaf's TBSCertificate
    const signature = sign("sha256", tbs, privateKey);
    // Imported the way the CA imports CSR keys (JWK), which verifies faster than a generated KeyObject.
    const verifyKey = createPublicKey({ key: publicKey.export({ format: "jwk" }), format: "jwk" });
    const [signingFresh, signingRenewal, checkOnly, buildSign, rawSign, rawVerify] = rates(
      [
        (i) => {
          const ok = checkCsr(csrs[i % csrs.length]!, want);
          certifier.issue(identity, ok.spki, ok.keyBits);
        },
        () => {
          const ok = checkCsr(csrs[0]!, want, cache);
          certifier.issue(identity, ok.spki, ok.keyBits);
        },
        (i) => checkCsr(csrs[i % csrs.length]!, want),
        () => certifier.issue(identity, accepted.spki, accepted.keyBits),
        () => sign("sha256", tbs, privateKey),
        () => verify("sha256", tbs, verifyKey, signature),
      ],
      ms,
    ) as [number, number, number, number, number, number];

    const ca = await startCaProcess(dir, pki.issuerDir, pki.anchorsPath, jwksPath, tokens.issuer);
    child = ca.child;
    const serverName = "tether-identity.tether.serviceaccount.identity.tether.cluster.local";
    const address = `127.0.0.1:${ca.port}`;
    const c1 = await roundTrips({ address, anchorsPem, serverName, token, concurrency: 1, seconds, nextCsr: csrPool(1500 * seconds) });
    const c16 = await roundTrips({ address, anchorsPem, serverName, token, concurrency: 16, seconds, nextCsr: csrPool(4000 * seconds) });

    const f = (n: number): string => Math.round(n).toLocaleString("en-US");
    const ms2 = (n: number): string => `${n.toFixed(2)} ms`;
    const rows: [string, string, string, string][] = [
      ["Certify round trip, gRPC+TLS, concurrency 1", `${f(c1.perSecond)}/s`, ms2(c1.p50), ms2(c1.p99)],
      ["Certify round trip, gRPC+TLS, concurrency 16", `${f(c16.perSecond)}/s`, ms2(c16.p50), ms2(c16.p99)],
      ["signing path, fresh CSR (check + build + sign)", `${f(signingFresh)}/s`, "", ""],
      ["signing path, renewal (same CSR bytes)", `${f(signingRenewal)}/s`, "", ""],
      ["  CSR check alone (parse, policy, verify)", `${f(checkOnly)}/s`, "", ""],
      ["  certificate build + sign alone", `${f(buildSign)}/s`, "", ""],
      ["raw ECDSA P-256 sign (node:crypto)", `${f(rawSign)}/s`, "", ""],
      ["raw ECDSA P-256 verify (node:crypto)", `${f(rawVerify)}/s`, "", ""],
    ];
    const w0 = Math.max(...rows.map((r) => r[0].length));
    const [load1] = loadavg();
    console.log(`\nidentity CA benchmark (${seconds} s per row; CA in a child process; ${c1.failures + c16.failures} failed round trips; load average ${load1!.toFixed(1)} on ${cpus().length} cores)\n`);
    console.log(`${"".padEnd(w0)}  ${"rate".padStart(10)}  ${"p50".padStart(9)}  ${"p99".padStart(9)}`);
    for (const [a, b, c, d] of rows) console.log(`${a.padEnd(w0)}  ${b.padStart(10)}  ${c.padStart(9)}  ${d.padStart(9)}`);
    const limit = 1 / (1 / rawSign + 1 / rawVerify);
    console.log(`
raw sign / signing path (fresh CSR):   ${(rawSign / signingFresh).toFixed(2)}x   (goal <= 3x)
raw sign / signing path (renewal):     ${(rawSign / signingRenewal).toFixed(2)}x
sign+verify limit / fresh signing path: ${(limit / signingFresh).toFixed(2)}x   (a fresh CSR needs one verify and one sign: limit ${f(limit)}/s)
certificates/s on one core (fresh):    ${f(signingFresh)}   (goal >= 2000)`);
  } finally {
    child?.kill("SIGTERM");
    await rm(dir, { recursive: true, force: true });
  }
}
