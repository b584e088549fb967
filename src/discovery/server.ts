/**
 * The tether-destination gRPC server: `tether.destination.v1.Destination/Get`. Each stream
 * subscribes to the shared watch of its target; messages are serialized once per change and the
 * same bytes are written to every stream.
 */
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { bindServer, streamingServerCloser } from "../api/grpc-server.js";
import { DestinationService, type DestinationUpdate, type GetDestination } from "../api/index.js";
import type { ClusterState } from "../cluster/types.js";
import { errorCode, errorMessage } from "../core/errors.js";
import { DiscoveryMetrics } from "./metrics.js";
import { parseDestinationPath } from "./path.js";
import { DestinationWatcher } from "./watcher.js";

export const DEFAULT_CLUSTER_DOMAIN = "cluster.local";

export interface DestinationServerOptions {
  cluster: ClusterState;
  /** `host:port`; port 0 picks a free one (see `address` on the result). */
  listen: string;
  clusterDomain?: string;
  trustDomain?: string;
  logger: Logger;
  /** Insecure when absent (tests); the control plane passes mTLS credentials. */
  serverCredentials?: grpc.ServerCredentials;
  registry?: Registry;
}

export interface DestinationServer {
  /** `host:port` actually bound. */
  address: string;
  port: number;
  watcher: DestinationWatcher<Buffer>;
  metrics: DiscoveryMetrics;
  close(): Promise<void>;
}

type GetCall = grpc.ServerWritableStream<GetDestination, Buffer>;

/** The Get method with a serializer that passes already-encoded messages through untouched. */
function destinationDefinition(): { definition: grpc.ServiceDefinition; encode: (u: DestinationUpdate) => Buffer } {
  const base = DestinationService.service;
  const get = base.Get!;
  const serialize = get.responseSerialize as (value: unknown) => Buffer;
  const encode = (u: DestinationUpdate): Buffer => serialize(u.update === "add" ? { add: u.add } : u.update === "remove" ? { remove: u.remove } : { noEndpoints: u.noEndpoints });
  const definition: grpc.ServiceDefinition = {
    ...base,
    Get: { ...get, responseSerialize: (value: unknown) => (Buffer.isBuffer(value) ? value : serialize(value)) },
  };
  return { definition, encode };
}

export async function startDestinationServer(options: DestinationServerOptions): Promise<DestinationServer> {
  const clusterDomain = options.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN;
  const logger = options.logger.child({ component: "destination" });
  const metrics = new DiscoveryMetrics(options.registry);
  const { definition, encode } = destinationDefinition();
  const watcher = new DestinationWatcher<Buffer>({
    cluster: options.cluster,
    trustDomain: options.trustDomain ?? DEFAULT_CLUSTER_DOMAIN,
    logger,
    metrics,
    encode,
  });
  await watcher.start();

  const active = new Set<GetCall>();
  const server = new grpc.Server({
    // Dead peers on long-lived streams are found by keepalive, not by the next write.
    "grpc.keepalive_time_ms": 60_000,
    "grpc.keepalive_timeout_ms": 20_000,
  });
  server.addService(definition, {
    Get: (call: GetCall) => {
      const { path, contextToken } = call.request;
      let target;
      try {
        target = parseDestinationPath(path, clusterDomain);
      } catch (err) {
        const code = errorCode(err);
        metrics.requests.inc({ result: code });
        logger.info({ path, context: contextToken, code }, "refused destination path");
        call.emit("error", { code: grpc.status.INVALID_ARGUMENT, details: `${errorMessage(err)} [${code}]` });
        return;
      }
      let subscription;
      try {
        subscription = watcher.subscribe(target, {
          write: (messages) => {
            let ok = true;
            for (const m of messages) ok = call.write(m) && ok;
            return ok;
          },
        });
      } catch (err) {
        const code = errorCode(err);
        metrics.requests.inc({ result: code });
        call.emit("error", { code: grpc.status.UNAVAILABLE, details: `${errorMessage(err)} [${code}]` });
        return;
      }
      metrics.requests.inc({ result: "ok" });
      logger.debug({ path, context: contextToken }, "destination stream opened");
      active.add(call);
      const sub = subscription;
      const done = () => {
        active.delete(call);
        sub.close();
      };
      call.on("drain", () => sub.resume());
      call.on("cancelled", done);
      call.on("close", done);
      call.on("error", done);
      call.on("finish", done);
    },
  });

  const { address, port } = await bindServer(server, options.listen, options.serverCredentials);
  logger.info({ address, clusterDomain }, "destination server listening");

  return { address, port, watcher, metrics, close: streamingServerCloser(server, active, () => watcher.stop()) };
}
