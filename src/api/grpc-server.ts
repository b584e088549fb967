/**
 * The lifecycle every control-plane gRPC server shares: bind (insecure only when no credentials
 * are given, i.e. in tests and development), and a shutdown that lets in-flight calls finish for
 * a moment before forcing; streaming servers first end their open streams with OK, so proxies
 * re-subscribe to another replica.
 */
import * as grpc from "@grpc/grpc-js";

export interface BoundServer {
  /** `host:port` actually bound. */
  address: string;
  port: number;
}

export async function bindServer(server: grpc.Server, listen: string, credentials?: grpc.ServerCredentials): Promise<BoundServer> {
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(listen, credentials ?? grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  return { address: `${listen.slice(0, listen.lastIndexOf(":"))}:${port}`, port };
}

/**
 * The `close` of a streaming server: ends its open streams, shuts it down, then runs `after`
 * (e.g. stopping the watcher that fed the streams). Calling it again returns the same promise.
 */
export function streamingServerCloser(server: grpc.Server, streams: Iterable<{ end(): void }>, after: () => void): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () =>
    (closing ??= (async () => {
      await shutdownStreaming(server, streams);
      after();
    })());
}

/** Ends every open stream with OK, then shuts down (forced after `graceMs`). */
async function shutdownStreaming(server: grpc.Server, streams: Iterable<{ end(): void }>, graceMs = 2000): Promise<void> {
  for (const call of [...streams]) call.end();
  await shutdownServer(server, graceMs);
}

/** Stops accepting calls, waits for in-flight ones, and forces the rest after `graceMs`. */
export function shutdownServer(server: grpc.Server, graceMs = 2000): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
