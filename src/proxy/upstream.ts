/**
 * Opens the proxy's connection to one endpoint: mutual TLS proving our identity and checking that
 * the server proves exactly the identity discovery promised, or plain TCP for an unmeshed
 * endpoint. A meshed endpoint never gets plaintext: without a valid certificate we refuse.
 */
import net from "node:net";
import tls from "node:tls";
import { TetherError } from "../identity/errors.js";
import { parseDnsName } from "../identity/names.js";
import { clientConnectOptions } from "../identity/tls.js";
import type { TlsContexts } from "./tls-contexts.js";

export class UpstreamError extends TetherError {
  constructor(
    code: string,
    message: string,
    /** True when nothing of the request was sent, so another endpoint may be tried. */
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

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
  timeoutMs: number;
}

/** Resolves with a connected (and, when meshed, handshaken and verified) socket. */
export function connectUpstream(target: UpstreamTarget, options: ConnectOptions): Promise<net.Socket> {
  if (target.identity === undefined) {
    return settle(net.connect({ host: target.address, port: target.port }), "connect", target, options.timeoutMs);
  }
  const secureContext = options.contexts.clientContext();
  if (!secureContext) {
    return Promise.reject(
      new UpstreamError(
        "UPSTREAM_NO_IDENTITY",
        `refusing to reach meshed endpoint ${target.address}:${target.port} without a valid certificate of our own (the identity CA has not issued one yet, or it expired)`,
        false,
      ),
    );
  }
  const socket = tls.connect({
    host: target.address,
    port: target.port,
    secureContext,
    ...clientConnectOptions(parseDnsName(target.identity)),
    ...(options.alpn ? { ALPNProtocols: options.alpn } : {}),
  });
  return settle(socket, "secureConnect", target, options.timeoutMs);
}

function settle(socket: net.Socket, readyEvent: string, target: UpstreamTarget, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const where = `${target.address}:${target.port}`;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new UpstreamError("UPSTREAM_CONNECT_TIMEOUT", `connecting to ${where} took longer than ${timeoutMs} ms`, true));
    }, timeoutMs);
    const onError = (err: Error & { code?: string }) => {
      clearTimeout(timer);
      socket.destroy();
      const identityProblem = err.code === "TLS_WRONG_PEER_IDENTITY" || err.code === "TLS_NO_PEER_IDENTITY" || err.code === "ERR_TLS_CERT_ALTNAME_INVALID";
      reject(
        new UpstreamError(
          identityProblem ? "UPSTREAM_IDENTITY_MISMATCH" : "UPSTREAM_CONNECT_FAILED",
          identityProblem
            ? `endpoint ${where} did not prove identity ${target.identity}: ${err.message}`
            : `cannot connect to ${where}: ${err.message}`,
          true,
          { cause: err },
        ),
      );
    };
    socket.once("error", onError);
    socket.once(readyEvent, () => {
      clearTimeout(timer);
      socket.off("error", onError);
      socket.setNoDelay(true);
      resolve(socket);
    });
  });
}
