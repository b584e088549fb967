/**
 * The HAProxy pair bench/proxy.ts compares tether with, configured like one tether hop: A accepts
 * h2c from the client and forwards over TLS 1.3 with a client certificate, verifying B's
 * certificate against the same trust anchors and its identity name (SNI + verifyhost), ALPN h2;
 * B terminates that mTLS (client certificate required and verified) and forwards h2c to the
 * server. One thread each (`nbthread 1`), like a Node process. Certificates are tether workload
 * certificates from the same CA, so both sides do the same cryptography (ECDSA P-256).
 */

export interface HaproxyPair {
  aPort: number;
  bPort: number;
  serverPort: number;
  anchorsPath: string;
  /** PEM files holding certificate chain then key. */
  aPemPath: string;
  bPemPath: string;
  /** B's identity name: A sends it as SNI and requires it in B's certificate. */
  bName: string;
}

const GLOBAL = `global
  nbthread 1
  maxconn 4000
  ssl-default-bind-options ssl-min-ver TLSv1.3
  ssl-default-server-options ssl-min-ver TLSv1.3

defaults
  mode http
  timeout connect 3s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 30s
`;

export function haproxyAConfig(p: HaproxyPair): string {
  return `${GLOBAL}
frontend from_client
  bind 127.0.0.1:${p.aPort} proto h2
  default_backend to_b

backend to_b
  http-reuse always
  server b 127.0.0.1:${p.bPort} ssl crt ${p.aPemPath} ca-file ${p.anchorsPath} verify required sni str(${p.bName}) verifyhost ${p.bName} alpn h2
`;
}

export function haproxyBConfig(p: HaproxyPair): string {
  return `${GLOBAL}
frontend from_a
  bind 127.0.0.1:${p.bPort} ssl crt ${p.bPemPath} ca-file ${p.anchorsPath} verify required alpn h2
  default_backend to_server

backend to_server
  http-reuse always
  server app 127.0.0.1:${p.serverPort} proto h2
`;
}
