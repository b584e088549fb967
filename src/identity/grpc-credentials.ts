/**
 * Mutual-TLS credentials for gRPC (control-plane connections) backed by a workload's certificate
 * agent: grpc-js asks a CertificateProvider for the current identity certificate, so rotation
 * reaches new connections without restarting servers or channels.
 */
import * as grpc from "@grpc/grpc-js";
import type { EventEmitter } from "node:events";
import { checkServerIdentityFor, type Credentials } from "./tls.js";

type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;

/** The subset of CertificateAgent this needs: its current credentials and 'certificate' events. */
export interface CredentialSource extends EventEmitter {
  current(): Credentials | undefined;
}

export class AgentCertificateProvider implements grpc.experimental.CertificateProvider {
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();

  constructor(
    private readonly source: CredentialSource,
    private readonly anchorsPem: string,
  ) {
    source.on("certificate", (creds: Credentials) => {
      for (const listener of this.identityListeners) listener(this.identityUpdate(creds));
    });
  }

  private identityUpdate(creds: Credentials | undefined): grpc.experimental.IdentityCertificateUpdate | null {
    return creds ? { certificate: Buffer.from(creds.certChainPem), privateKey: Buffer.from(creds.keyPem) } : null;
  }

  // Initial values are delivered on the next tick, never inside add…Listener: grpc-js's server
  // credentials register their watcher only after adding the listener, so a synchronous first
  // update would be lost until the next rotation.
  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    setImmediate(() => {
      if (this.caListeners.has(listener)) listener({ caCertificate: Buffer.from(this.anchorsPem) });
    });
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    setImmediate(() => {
      const current = this.source.current();
      if (current && this.identityListeners.has(listener)) listener(this.identityUpdate(current));
    });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }
}

/** Server credentials that present the agent's certificate and require a client certificate. */
export function mtlsServerCredentials(provider: AgentCertificateProvider): grpc.ServerCredentials {
  return grpc.experimental.createCertificateProviderServerCredentials(provider, provider, true);
}

/**
 * Channel credentials that present the agent's certificate and accept only a server proving
 * `serverDnsName`. Use with `mtlsChannelOptions(serverDnsName)` so SNI carries that name.
 */
export function mtlsChannelCredentials(provider: AgentCertificateProvider, serverDnsName: string): grpc.ChannelCredentials {
  return grpc.experimental.createCertificateProviderChannelCredentials(provider, provider, {
    checkServerIdentity: checkServerIdentityFor(serverDnsName),
  });
}

export function mtlsChannelOptions(serverDnsName: string): grpc.ChannelOptions {
  return { "grpc.ssl_target_name_override": serverDnsName, "grpc.default_authority": serverDnsName };
}
