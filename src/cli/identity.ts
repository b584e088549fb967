/**
 * `tether identity ...`: one-shot certification, certificate inspection, and the demo that shows
 * the whole identity flow on one machine (bootstrap, CA, two workloads, mTLS between them).
 */
import { once } from "node:events";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import type { AddressInfo } from "node:net";
import { generateKeyPairSync } from "node:crypto";
import type { Command } from "commander";
import { pino } from "pino";
import { createCertifyClient } from "../api/identity-client.js";
import { IDENTITY_SERVICE_ACCOUNT } from "../api/mesh.js";
import { bootstrapCa } from "../ca/bootstrap.js";
import { startIdentityCa } from "../ca/server.js";
import { jwksTokenValidator } from "../ca/tokens.js";
import { CertificateAgent } from "../identity/agent.js";
import { buildPath, certificateIdentity, notAfter, notBefore, parseCertificates } from "../identity/chain.js";
import { systemClock } from "../core/clock.js";
import { buildCsr } from "../identity/csr.js";
import { UsageError, errorMessage } from "../core/errors.js";
import { CommandError } from "./errors.js";
import { CONTROL_PLANE_NAMESPACE, DEFAULT_TRUST_DOMAIN, parseIdentity, toDnsName, toSpiffeId, workloadIdentity } from "../identity/names.js";
import { pemEncode } from "../identity/pkix.js";
import { clientConnectOptions, createClientSecureContext, peerIdentity, serverContextOptions, type Credentials } from "../identity/tls.js";
import { ServiceAccountTokenIssuer } from "../local/service-account-tokens.js";

function formatLeft(ms: number): string {
  if (ms <= 0) return "expired";
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = Math.floor((ms % 60_000) / 1000);
  return h >= 48 ? `${Math.floor(h / 24)}d ${h % 24}h` : `${h}h ${m}m ${s}s`;
}

/** The facts `inspect` prints, one `label: value` per line. */
export function describeCertificate(pem: string, now: number, anchorsPem?: string): string {
  const chain = parseCertificates(pem, "certificate file");
  const leaf = chain[0]!;
  const id = certificateIdentity(leaf);
  const lines: [string, string][] = [
    ["identity", id ? toDnsName(id) : "(none: not a tether workload certificate)"],
    ["spiffe id", id ? toSpiffeId(id) : "-"],
    ["subject", leaf.subject.replace(/\n/g, ", ")],
    ["issuer", leaf.issuer.replace(/\n/g, ", ")],
    ["serial", leaf.serialNumber],
    ["key", `${leaf.publicKey.asymmetricKeyType} ${leaf.publicKey.asymmetricKeyDetails?.namedCurve ?? leaf.publicKey.asymmetricKeyDetails?.modulusLength ?? ""}`.trim()],
    ["ca", String(leaf.ca)],
    ["not before", new Date(notBefore(leaf)).toISOString()],
    ["not after", new Date(notAfter(leaf)).toISOString()],
    ["time left", formatLeft(notAfter(leaf) - now)],
    ["chain", `${chain.length} certificate(s)`],
  ];
  if (anchorsPem) {
    try {
      buildPath(chain, parseCertificates(anchorsPem, "trust anchors"), now);
      lines.push(["verified", "yes, chains to the trust anchors"]);
    } catch (err) {
      lines.push(["verified", `NO: ${errorMessage(err)}`]);
    }
  }
  const width = Math.max(...lines.map(([k]) => k.length));
  return lines.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n");
}

interface CertifyOptions {
  ca: string;
  anchors: string;
  token: string;
  identity?: string;
  serviceAccount?: string;
  namespace?: string;
  trustDomain: string;
  out: string;
  caName?: string;
}

/** Runs the demo, printing each step through `print` (so a test can capture them). */
export async function identityDemo(print: (line: string) => void = console.log): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "tether-identity-demo-"));
  const logger = pino({ level: "warn" }, pino.destination(2));
  const trustDomain = DEFAULT_TRUST_DOMAIN;
  const cleanups: (() => Promise<void> | void)[] = [() => rm(dir, { recursive: true, force: true })];
  try {
    print(`1. bootstrap a development trust anchor and issuer in ${dir}`);
    const pki = await bootstrapCa({ dir: join(dir, "pki"), trustDomain });
    const tokens = await ServiceAccountTokenIssuer.create();
    print("2. start the identity CA (token mode jwks, with a local service-account signing key)");
    const ca = await startIdentityCa({
      issuerDir: pki.issuerDir,
      anchorsPath: pki.anchorsPath,
      trustDomain,
      lifetimeMs: 24 * 3_600_000,
      clockSkewMs: 20_000,
      tokenValidator: jwksTokenValidator({ jwks: tokens.jwks(), issuer: tokens.issuer }),
      listen: { host: "127.0.0.1", port: 0 },
      clock: systemClock,
      logger,
    });
    cleanups.unshift(() => ca.close());
    print(`   CA ${ca.serverName} on ${ca.address}`);
    const anchorsPem = await readFile(pki.anchorsPath, "utf8");
    const client = createCertifyClient({ address: ca.address, anchorsPem, serverName: ca.serverName });
    cleanups.unshift(() => client.close());

    const certify = async (sa: string, ns: string): Promise<{ agent: CertificateAgent; creds: Credentials }> => {
      const tokenFile = join(dir, `${ns}-${sa}.token`);
      await writeFile(tokenFile, await tokens.mint({ namespace: ns, serviceAccount: sa }), { mode: 0o600 });
      const agent = new CertificateAgent({ identity: workloadIdentity(sa, ns, trustDomain), tokenFile, certify: (req) => client.certify(req), clock: systemClock, logger });
      cleanups.unshift(() => agent.stop());
      const got = once(agent, "certificate") as Promise<[Credentials]>;
      const failed = once(agent, "failure").then(([err]) => Promise.reject(err as Error));
      agent.start();
      const [creds] = await Promise.race([got, failed]);
      return { agent, creds };
    };
    print("3. certify two workloads with their service-account tokens");
    const web = await certify("web", "shop");
    const api = await certify("api", "shop");

    print("4. open an mTLS connection from web to api");
    const server = tls.createServer(serverContextOptions(api.creds, anchorsPem), (socket) => {
      const peer = peerIdentity(socket);
      socket.end(peer ? toDnsName(peer) : "?");
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    cleanups.unshift(() => void server.close());
    const socket = tls.connect({
      host: "127.0.0.1",
      port: (server.address() as AddressInfo).port,
      secureContext: createClientSecureContext(web.creds, anchorsPem),
      ...clientConnectOptions(api.creds.identity),
    });
    await once(socket, "secureConnect");
    const serverSeen = peerIdentity(socket);
    const protocol = socket.getProtocol();
    let reply = "";
    socket.on("data", (d: Buffer) => (reply += d.toString()));
    await once(socket, "end");
    socket.destroy();

    const now = Date.now();
    print("");
    print(`   connection        ${protocol}, both sides verified against the trust anchor`);
    print(`   client identity   ${reply}   (as the server saw it)`);
    print(`   server identity   ${serverSeen ? toDnsName(serverSeen) : "?"}   (as the client saw it)`);
    for (const w of [web, api]) {
      print(`   ${w.creds.identity.serviceAccount.padEnd(4)} ${toSpiffeId(w.creds.identity)}  expires ${new Date(w.creds.notAfter).toISOString()} (in ${formatLeft(w.creds.notAfter - now)}, renewal at ~70%)`);
    }
    if (reply !== web.creds.dnsName || !serverSeen || toDnsName(serverSeen) !== api.creds.dnsName) {
      throw new CommandError("DEMO_FAILED", "the identities seen over mTLS do not match the certified workloads");
    }
    print("\nidentity demo: OK");
  } finally {
    for (const c of cleanups) await c();
  }
}

export function registerIdentityCommands(program: Command): void {
  const identity = program.command("identity").description("workload identities: certify, inspect, demo");

  identity
    .command("certify")
    .description("one shot: generate a P-256 key and CSR, call Certify with a service-account token, write tls.key / tls.crt / ca.crt")
    .requiredOption("--ca <host:port>", "the identity CA")
    .requiredOption("--anchors <file>", "trust-anchor PEM bundle (verifies the CA)")
    .requiredOption("--token <file>", "projected service-account token file")
    .option("--identity <name>", "identity name or SPIFFE ID (instead of --service-account/--namespace)")
    .option("--service-account <sa>", "service account")
    .option("--namespace <ns>", "namespace")
    .option("--trust-domain <domain>", "trust domain", DEFAULT_TRUST_DOMAIN)
    .option("--ca-name <name>", "the CA's identity name (default tether-identity.tether.serviceaccount.identity.tether.TRUST-DOMAIN)")
    .requiredOption("--out <dir>", "where to write tls.key, tls.crt (leaf + chain) and ca.crt")
    .action(async (opts: CertifyOptions) => {
      const id = opts.identity
        ? parseIdentity(opts.identity)
        : opts.serviceAccount && opts.namespace
          ? workloadIdentity(opts.serviceAccount, opts.namespace, opts.trustDomain)
          : (() => {
              throw new UsageError("CLI_NO_IDENTITY", "give --identity, or --service-account and --namespace");
            })();
      const anchorsPem = await readFile(opts.anchors, "utf8");
      const serverName = opts.caName ?? toDnsName(workloadIdentity(IDENTITY_SERVICE_ACCOUNT, CONTROL_PLANE_NAMESPACE, id.trustDomain));
      const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
      const csrDer = buildCsr({ privateKey, publicKey, dnsName: toDnsName(id), spiffeId: toSpiffeId(id) });
      const client = createCertifyClient({ address: opts.ca, anchorsPem, serverName });
      try {
        const res = await client.certify({ identity: toDnsName(id), token: await readFile(opts.token), csrDer });
        await mkdir(opts.out, { recursive: true });
        await writeFile(join(opts.out, "tls.key"), privateKey.export({ format: "pem", type: "pkcs8" }), { mode: 0o600 });
        const chainPem = [res.leafDer, ...res.chainDer].map((d) => pemEncode("CERTIFICATE", d)).join("");
        await writeFile(join(opts.out, "tls.crt"), chainPem);
        await writeFile(join(opts.out, "ca.crt"), anchorsPem);
        console.log(describeCertificate(chainPem, Date.now(), anchorsPem));
        console.log(`\nwrote ${join(opts.out, "tls.key")}, tls.crt, ca.crt`);
      } catch (err) {
        const e = err as { code?: number; details?: string };
        if (typeof e.code === "number" && e.details) throw new CommandError("CERTIFY_REFUSED", `the CA refused: ${e.details}`);
        throw err;
      } finally {
        client.close();
      }
    });

  identity
    .command("inspect <file>")
    .description("print a certificate's identity, SPIFFE ID, issuer, validity and time left")
    .option("--anchors <file>", "also verify the chain against this trust-anchor bundle")
    .action(async (file: string, opts: { anchors?: string }) => {
      const pem = await readFile(file, "utf8");
      console.log(describeCertificate(pem, Date.now(), opts.anchors ? await readFile(opts.anchors, "utf8") : undefined));
    });

  identity
    .command("demo")
    .description("bootstrap a PKI, start a CA, certify two workloads and connect them with mTLS (no root needed)")
    .action(async () => {
      await identityDemo();
    });
}
