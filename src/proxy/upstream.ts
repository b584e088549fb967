/**
 * Opens the proxy's connection to one endpoint: mutual TLS proving our identity and checking that
 * the server proves exactly the identity discovery promised, or plain TCP for an unmeshed
 * endpoint. A meshed endpoint never gets plaintext: without a valid certificate we refuse.
 */
import net from "node:net";
import tls from "node:tls";
import { UpstreamError } from "./forward/errors.js";
import { parseDnsName } from "../identity/names.js";
import { clientConnectOptions } from "../identity/tls.js";
import type { TlsContexts } from "./tls-contexts.js";

export interface UpstreamTarget {
  address: string;
  port: number;
  /** The identity the endpoint must prove; undefined for an unmeshed endpoint. */
  identity: string | undefined;
}

export interface ConnectOptions {
  contexts: TlsContexts;
  /** ALPN to offer on mTLS connections ("h2" for HTTP/2 transports). */
  alpn?: string[];
  /** Keep our sending side open after the peer ends (opaque TCP forwards half-closes). */
  allowHalfOpen?: boolean;
}

/**
 * Starts the connection and returns the socket at once (usable as http2's `createConnection`):
 * mTLS for a meshed endpoint, plain TCP otherwise. Throws when a meshed endpoint cannot be
 * reached securely.
 */
export function openUpstreamSocket(target: UpstreamTarget, options: ConnectOptions): net.Socket {
  const allowHalfOpen = options.allowHalfOpen ?? false;
  if (target.identity === undefined) return net.connect({ host: target.address, port: target.port, allowHalfOpen });
  const secureContext = options.contexts.clientContext();
  if (!secureContext) {
    throw new UpstreamError(
      "UPSTREAM_NO_IDENTITY",
      `refusing to reach meshed endpoint ${target.address}:${target.port} without a valid certificate of our own (the identity CA has not issued one yet, or it expired)`,
      false,
    );
  }
  const connectOptions: tls.ConnectionOptions & { allowHalfOpen: boolean } = {
    allowHalfOpen,
    host: target.address,
    port: target.port,
    secureContext,
    ...clientConnectOptions(parseDnsName(target.identity)),
    ...(options.alpn ? { ALPNProtocols: options.alpn } : {}),
  };
  return tls.connect(connectOptions);
}
