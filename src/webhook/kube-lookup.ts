/**
 * The webhook's reads of cluster state, straight from the API server (a namespace per pod
 * admission, pods when a Server is written). Namespaces are cached briefly because every pod of
 * a rollout asks for the same one.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import type { Namespace, Pod } from "kubernetes-types/core/v1.js";
import type { LabelSelector } from "kubernetes-types/meta/v1.js";
import { kubeRequest, resourcePath, statusMessage } from "../cluster/kube-http.js";
import { ClusterError } from "../cluster/errors.js";
import { RESOURCE_API } from "../cluster/types.js";
import type { Clock } from "../core/clock.js";
import type { ClusterLookup } from "./admission.js";
import { selectorToQuery } from "../cluster/selector.js";

export function kubeLookup(kc: KubeConfig, clock: Clock, cacheMs = 5_000): ClusterLookup {
  const cache = new Map<string, { at: number; ns: Namespace | undefined }>();
  return {
    async namespace(name) {
      const hit = cache.get(name);
      if (hit && clock.now() - hit.at < cacheMs) return hit.ns;
      const res = await kubeRequest(kc, "GET", resourcePath(RESOURCE_API.Namespace, undefined, name), { timeoutMs: 5_000 });
      if (res.status === 404) return undefined;
      if (res.status !== 200) throw new ClusterError("CLUSTER_REQUEST_FAILED", `GET namespace ${name}: HTTP ${res.status} ${statusMessage(res.body)}`);
      const ns = res.body as Namespace;
      if (cache.size > 1000) cache.clear();
      cache.set(name, { at: clock.now(), ns });
      return ns;
    },
    async pods(namespace: string, selector: LabelSelector): Promise<Pod[]> {
      const query = new URLSearchParams({ labelSelector: selectorToQuery(selector), limit: "500" });
      const res = await kubeRequest(kc, "GET", `${resourcePath(RESOURCE_API.Pod, namespace)}?${query}`, { timeoutMs: 5_000 });
      if (res.status !== 200) throw new ClusterError("CLUSTER_REQUEST_FAILED", `GET pods in ${namespace}: HTTP ${res.status} ${statusMessage(res.body)}`);
      return ((res.body as { items?: Pod[] }).items ?? []);
    },
  };
}
