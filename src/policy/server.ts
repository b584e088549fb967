/**
 * The policy controller's gRPC server: `tether.policy.v1.InboundPolicies/WatchPort`. Each stream
 * gets the current policy of its pod port first, then a message whenever it changes (only then).
 */
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { bindServer, streamingServerCloser } from "../api/grpc-server.js";
import { InboundPoliciesService, type InboundServer, type PortSpec } from "../api/index.js";
import type { DefaultInboundPolicy } from "../api/mesh.js";
import type { ClusterState } from "../cluster/types.js";
import type { Clock } from "../core/clock.js";
import { PolicyMetrics } from "./metrics.js";
import { PolicyWatcher } from "./watcher.js";

export interface PolicyServerOptions {
  cluster: ClusterState;
  /** `host:port`; port 0 picks a free one (see `address` on the result). */
  listen: string;
  clusterDefault: DefaultInboundPolicy;
  clusterNetworks: string[];
  trustDomain: string;
  logger: Logger;
  /** Insecure when absent (tests); the control plane passes mTLS credentials. */
  serverCredentials?: grpc.ServerCredentials;
  registry?: Registry;
  clock?: Clock;
}

export interface PolicyServer {
  address: string;
  port: number;
  watcher: PolicyWatcher;
  metrics: PolicyMetrics;
  close(): Promise<void>;
}

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Parses "NAMESPACE/POD"; undefined when malformed. */
export function parseWorkload(workload: string): { namespace: string; pod: string } | undefined {
  const parts = workload.split("/");
  if (parts.length !== 2) return undefined;
  const [namespace, pod] = parts as [string, string];
  if (namespace.length > 63 || pod.length > 253 || !NAME.test(namespace) || namespace.includes(".") || !NAME.test(pod)) return undefined;
  return { namespace, pod };
}

type WatchCall = grpc.ServerWritableStream<PortSpec, InboundServer>;

export async function startPolicyServer(options: PolicyServerOptions): Promise<PolicyServer> {
  const logger = options.logger.child({ component: "policy" });
  const metrics = new PolicyMetrics(options.registry);
  await options.cluster.ready();
  const watcher = new PolicyWatcher({
    cluster: options.cluster,
    settings: { clusterDefault: options.clusterDefault, clusterNetworks: options.clusterNetworks, trustDomain: options.trustDomain },
    logger,
    metrics,
    clock: options.clock,
  });
  const active = new Set<WatchCall>();
  const server = new grpc.Server();

  const refuse = (call: WatchCall, code: grpc.status, message: string) => {
    metrics.requests.inc({ result: grpc.status[code] ?? String(code) });
    logger.info({ workload: call.request.workload, port: call.request.port, code: grpc.status[code] }, message);
    call.emit("error", { code, details: message });
  };

  server.addService(InboundPoliciesService.service, {
    WatchPort: (call: WatchCall) => {
      const { workload, port } = call.request;
      const parsed = parseWorkload(workload);
      if (!parsed) return refuse(call, grpc.status.INVALID_ARGUMENT, `workload ${JSON.stringify(workload)} must be NAMESPACE/POD-NAME`);
      if (!Number.isInteger(port) || port < 1 || port > 65535) return refuse(call, grpc.status.INVALID_ARGUMENT, `port ${port} must be 1-65535`);
      const unsubscribe = watcher.subscribe(parsed.namespace, parsed.pod, port, (policy) => {
        call.write(policy);
        metrics.updatesSent.inc();
      });
      if (!unsubscribe) {
        return refuse(call, grpc.status.NOT_FOUND, `pod ${workload} is not known to the policy controller; check the name, or retry once the pod exists`);
      }
      metrics.requests.inc({ result: "ok" });
      active.add(call);
      metrics.streams.set(active.size);
      let done = false;
      const end = () => {
        if (done) return;
        done = true;
        unsubscribe();
        active.delete(call);
        metrics.streams.set(active.size);
      };
      call.on("cancelled", end);
      call.on("close", end);
      call.on("error", end);
      call.on("finish", end);
    },
  });

  const { address, port } = await bindServer(server, options.listen, options.serverCredentials);
  logger.info({ address, clusterDefault: options.clusterDefault, trustDomain: options.trustDomain }, "policy server listening");

  return { address, port, watcher, metrics, close: streamingServerCloser(server, active, () => watcher.stop()) };
}
