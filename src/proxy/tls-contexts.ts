/**
 * The proxy's current TLS contexts. Every new certificate from the identity agent rebuilds them;
 * new connections use the new ones while live connections keep the context they started with.
 * With no valid certificate there is no context, and meshed traffic is refused (fail closed).
 */
import type { SecureContext } from "node:tls";
import {
  createClientSecureContext,
  createServerSecureContext,
  type Credentials,
} from "../identity/tls.js";
import type { Clock } from "../core/clock.js";

export class TlsContexts {
  private credentials: Credentials | undefined;
  private server: SecureContext | undefined;
  private client: SecureContext | undefined;

  constructor(
    private readonly anchorsPem: string,
    private readonly clock: Clock,
  ) {}

  install(credentials: Credentials): void {
    this.server = createServerSecureContext(credentials, this.anchorsPem);
    this.client = createClientSecureContext(credentials, this.anchorsPem);
    this.credentials = credentials;
  }

  get anchors(): string {
    return this.anchorsPem;
  }

  /** The credentials if they are valid now. */
  current(): Credentials | undefined {
    const creds = this.credentials;
    if (!creds) return undefined;
    const now = this.clock.now();
    return now >= creds.notBefore && now < creds.notAfter ? creds : undefined;
  }

  serverContext(): SecureContext | undefined {
    return this.current() ? this.server : undefined;
  }

  clientContext(): SecureContext | undefined {
    return this.current() ? this.client : undefined;
  }
}
