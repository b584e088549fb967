/**
 * Opens the cluster state a process reads: a folder of YAML manifests (`dir`, the local mesh) or a
 * Kubernetes API server (`kubeconfig` file, or `inCluster` from the pod's service account).
 * Exactly one source must be named; the caller awaits ready() before serving from the cache.
 */
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { ClusterError } from "./errors.js";
import { KubernetesCluster, loadKubeConfig } from "./kubernetes.js";
import { LocalFolderCluster } from "./local.js";
import type { ClusterState, ResourceKind } from "./types.js";

export interface OpenClusterOptions {
  dir?: string;
  kubeconfig?: string;
  inCluster?: boolean;
  logger?: Logger;
  registry?: Registry;
  /** Kinds to list and watch from Kubernetes (least privilege: leave out what RBAC does not grant). */
  kinds?: readonly ResourceKind[];
}

export async function openCluster(options: OpenClusterOptions): Promise<ClusterState> {
  const sources = [options.dir !== undefined, options.kubeconfig !== undefined, options.inCluster === true].filter(Boolean).length;
  if (sources !== 1) {
    throw new ClusterError(
      "CLUSTER_SOURCE_INVALID",
      sources === 0
        ? "no cluster source: pass a manifest folder (--dir), a kubeconfig (--kubeconfig) or --in-cluster"
        : "more than one cluster source: pass only one of a manifest folder (--dir), a kubeconfig (--kubeconfig) or --in-cluster",
    );
  }
  const common = { ...(options.logger ? { logger: options.logger } : {}), ...(options.registry ? { registry: options.registry } : {}) };
  if (options.dir !== undefined) return LocalFolderCluster.open(options.dir, common);
  const kubeConfig = loadKubeConfig(options.inCluster ? { inCluster: true } : { kubeconfig: options.kubeconfig! });
  return new KubernetesCluster({ kubeConfig, ...common, ...(options.kinds ? { kinds: options.kinds } : {}) });
}

export { ClusterError } from "./errors.js";
export { KubernetesCluster, loadKubeConfig } from "./kubernetes.js";
export { LocalFolderCluster, type ManifestEvent } from "./local.js";
export { MemoryCluster } from "./memory.js";
export type { ManifestObject, ManifestProblem } from "./manifests.js";
export * from "./types.js";
