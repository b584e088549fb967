/**
 * `tether ca ...`: run the identity CA, and create / rotate a development trust anchor and issuer
 * in cert-manager's Secret layout.
 */
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { pino } from "pino";
import { bootstrapCa, rotateIssuer } from "../ca/bootstrap.js";
import { startIdentityCa } from "../ca/server.js";
import { jwksTokenValidator, kubernetesTokenReviewApi, tokenReviewValidator, type TokenValidator } from "../ca/tokens.js";
import { IDENTITY_ADMIN_PORT, IDENTITY_PORT } from "../api/mesh.js";
import { systemClock } from "../core/clock.js";
import { UsageError } from "../core/errors.js";
import { DEFAULT_TRUST_DOMAIN, validateTrustDomain } from "../identity/names.js";
import { splitHostPort } from "../api/address.js";

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `1500ms`, `20s`, `24h`, `30d` (and combinations like `1h30m`) to milliseconds. */
export function parseDuration(text: string): number {
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== text) {
    throw new UsageError("CLI_BAD_DURATION", `"${text}" is not a duration; use e.g. 500ms, 20s, 24h, 30d`);
  }
  return parts.reduce((sum, p) => sum + Number(p[1]) * UNITS[p[2]!]!, 0);
}

function listenAddress(text: string): { host: string; port: number } {
  const address = splitHostPort(text);
  if (!address) throw new UsageError("CLI_BAD_ADDRESS", `"${text}" is not HOST:PORT`);
  return { host: address.host || "0.0.0.0", port: address.port };
}

interface ServeOptions {
  issuerDir: string;
  anchors?: string;
  trustDomain: string;
  listen: string;
  adminPort: string;
  lifetime: string;
  clockSkew: string;
  tokenMode: string;
  jwksFile?: string;
  jwksUrl?: string;
  tokenIssuer: string;
  logLevel: string;
}

async function tokenValidatorFrom(opts: ServeOptions): Promise<TokenValidator> {
  if (opts.tokenMode === "tokenreview") return tokenReviewValidator(await kubernetesTokenReviewApi());
  if (opts.tokenMode !== "jwks") throw new UsageError("CLI_BAD_TOKEN_MODE", `--token-mode must be jwks or tokenreview, not ${opts.tokenMode}`);
  if (opts.jwksFile) return jwksTokenValidator({ jwks: JSON.parse(await readFile(opts.jwksFile, "utf8")), issuer: opts.tokenIssuer });
  if (opts.jwksUrl) return jwksTokenValidator({ jwks: new URL(opts.jwksUrl), issuer: opts.tokenIssuer });
  throw new UsageError("CLI_NO_JWKS", "--token-mode jwks needs --jwks-file or --jwks-url (the cluster's service-account issuer keys, e.g. kubectl get --raw /openid/v1/jwks)");
}

export function registerCaCommands(program: Command): void {
  const ca = program.command("ca").description("the identity CA: issues service-account-bound workload certificates");

  ca.command("serve")
    .description("run the identity CA (gRPC tether.identity.v1.Identity/Certify over TLS)")
    .requiredOption("--issuer-dir <dir>", "issuer folder in cert-manager's Secret layout (tls.crt, tls.key, ca.crt); watched for rotation")
    .option("--anchors <file>", "trust-anchor PEM bundle (default: ca.crt in the issuer folder)")
    .option("--trust-domain <domain>", "trust domain", DEFAULT_TRUST_DOMAIN)
    .option("--listen <host:port>", "gRPC listen address", `0.0.0.0:${IDENTITY_PORT}`)
    .option("--admin-port <port>", "admin HTTP port (/metrics, /ready, /live)", String(IDENTITY_ADMIN_PORT))
    .option("--lifetime <duration>", "workload certificate lifetime", "24h")
    .option("--clock-skew <duration>", "notBefore backdating allowance", "20s")
    .option("--token-mode <mode>", "token validation: tokenreview (Kubernetes API) or jwks (offline)", "tokenreview")
    .option("--jwks-file <file>", "jwks mode: the service-account issuer's JWKS as a JSON file")
    .option("--jwks-url <url>", "jwks mode: the service-account issuer's JWKS URL")
    .option("--token-issuer <iss>", "jwks mode: expected token issuer (iss)", "https://kubernetes.default.svc.cluster.local")
    .option("--log-level <level>", "pino log level", "info")
    .action(async (opts: ServeOptions) => {
      validateTrustDomain(opts.trustDomain);
      const logger = pino({ level: opts.logLevel });
      const server = await startIdentityCa({
        issuerDir: opts.issuerDir,
        anchorsPath: opts.anchors,
        trustDomain: opts.trustDomain,
        lifetimeMs: parseDuration(opts.lifetime),
        clockSkewMs: parseDuration(opts.clockSkew),
        tokenValidator: await tokenValidatorFrom(opts),
        listen: listenAddress(opts.listen),
        adminPort: Number(opts.adminPort),
        clock: systemClock,
        logger,
        processMetrics: true,
      });
      const stop = (): void => {
        void server.close().then(() => process.exit(0));
      };
      process.once("SIGTERM", stop);
      process.once("SIGINT", stop);
      await new Promise(() => undefined);
    });

  ca.command("bootstrap")
    .description("write a development trust anchor and issuer (cert-manager Secret layout with the ..data symlink swap)")
    .requiredOption("--dir <dir>", "output folder: anchors.pem, anchor.key, issuer/{tls.crt,tls.key,ca.crt}")
    .option("--trust-domain <domain>", "trust domain", DEFAULT_TRUST_DOMAIN)
    .option("--anchor-lifetime <duration>", "trust-anchor lifetime", "365d")
    .option("--issuer-lifetime <duration>", "issuer lifetime", "30d")
    .action(async (opts: { dir: string; trustDomain: string; anchorLifetime: string; issuerLifetime: string }) => {
      validateTrustDomain(opts.trustDomain);
      const out = await bootstrapCa({
        dir: opts.dir,
        trustDomain: opts.trustDomain,
        anchorLifetimeMs: parseDuration(opts.anchorLifetime),
        issuerLifetimeMs: parseDuration(opts.issuerLifetime),
      });
      console.log(`trust anchors  ${out.anchorsPath}\nanchor key     ${out.anchorKeyPath} (development only)\nissuer         ${out.issuerDir} (tls.crt, tls.key, ca.crt)`);
      console.log(`\nrun the CA:    tether ca serve --issuer-dir ${out.issuerDir} --anchors ${out.anchorsPath} --token-mode jwks --jwks-file JWKS.json`);
    });

  ca.command("rotate-issuer")
    .description("sign a new issuer with a bootstrap folder's anchor and swap it in atomically (as kubelet updates a Secret)")
    .requiredOption("--dir <dir>", "a folder written by `tether ca bootstrap`")
    .option("--trust-domain <domain>", "trust domain", DEFAULT_TRUST_DOMAIN)
    .option("--issuer-lifetime <duration>", "issuer lifetime", "30d")
    .action(async (opts: { dir: string; trustDomain: string; issuerLifetime: string }) => {
      await rotateIssuer({ dir: opts.dir, trustDomain: opts.trustDomain, issuerLifetimeMs: parseDuration(opts.issuerLifetime) });
      console.log(`new issuer swapped into ${opts.dir}/issuer`);
    });
}
