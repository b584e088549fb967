/**
 * Client of tether.identity.v1.Identity/Certify over server-authenticated TLS. The CA is verified
 * against the trust anchors and must present exactly `serverName` (its identity name, e.g.
 * tether-identity.tether.serviceaccount.identity.tether.cluster.local) as a DNS SAN; the workload
 * has no certificate yet, so it authenticates with its token instead.
 */
import type { PeerCertificate } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { IdentityService, fromTimestamp, type CertifyRequest, type CertifyResponse } from "./index.js";

export interface CertifyClientOptions {
  /** host:port of the CA. */
  address: string;
  anchorsPem: string | Buffer;
  /** The CA's identity name; sent as SNI and required in its certificate. */
  serverName: string;
  /** Per-call deadline (default 10 s). */
  timeoutMs?: number;
}

export interface CertifyClient {
  certify(req: { identity: string; token: Buffer; csrDer: Buffer }): Promise<{ leafDer: Buffer; chainDer: Buffer[]; validUntil: number }>;
  close(): void;
}

function dnsSans(cert: PeerCertificate): string[] {
  return (cert.subjectaltname ?? "")
    .split(", ")
    .filter((s) => s.startsWith("DNS:"))
    .map((s) => s.slice(4));
}

type CertifyMethod = (req: CertifyRequest, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, res: CertifyResponse) => void) => grpc.ClientUnaryCall;

export function createCertifyClient(opts: CertifyClientOptions): CertifyClient {
  const credentials = grpc.credentials.createSsl(Buffer.from(opts.anchorsPem), null, null, {
    // Only the exact identity name counts: no wildcard or CN fallback.
    checkServerIdentity: (_host, cert) =>
      dnsSans(cert).includes(opts.serverName) ? undefined : new Error(`the identity CA presented ${cert.subjectaltname ?? "no SANs"}, expected DNS:${opts.serverName}`),
  });
  const client = new IdentityService(opts.address, credentials, {
    "grpc.ssl_target_name_override": opts.serverName,
    "grpc.default_authority": opts.serverName,
  }) as unknown as grpc.Client & { Certify: CertifyMethod };
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return {
    certify(req) {
      const request: CertifyRequest = { identity: req.identity, token: req.token, certificateSigningRequest: req.csrDer };
      return new Promise((resolve, reject) => {
        client.Certify(request, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res: CertifyResponse) => {
          if (err) return reject(err);
          resolve({ leafDer: res.leafCertificate, chainDer: res.intermediateCertificates, validUntil: fromTimestamp(res.validUntil) });
        });
      });
    },
    close() {
      client.close();
    },
  };
}
