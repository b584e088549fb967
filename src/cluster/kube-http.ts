/**
 * Plain JSON requests to the API server with the credentials of a KubeConfig (token, client
 * certificate, CA, exec plugins: whatever client-node's applyToHTTPSOptions supports). The typed
 * clients of client-node turn timestamps into Date objects; the watch stream does not. Listing
 * through this helper keeps every cached object in the same raw JSON shape the watch delivers.
 */
import { request as httpRequest, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import type { KubeConfig } from "@kubernetes/client-node";
import { ClusterError } from "./errors.js";

export interface KubeResponse {
  status: number;
  body: unknown;
}

export interface KubeRequestOptions {
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
}

export async function kubeRequest(kc: KubeConfig, method: string, path: string, options: KubeRequestOptions = {}): Promise<KubeResponse> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) {
    throw new ClusterError("CLUSTER_CONFIG_INVALID", "the kubeconfig has no current cluster: set current-context or pass a kubeconfig with one cluster");
  }
  // A server URL may carry a path prefix (e.g. behind a proxy); API paths are appended to it.
  const base = new URL(cluster.server);
  const url = new URL(base.pathname.replace(/\/$/, "") + path, base);
  const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
  const opts: RequestOptions & Record<string, unknown> = {
    method,
    headers: {
      accept: "application/json",
      ...(payload ? { "content-type": options.contentType ?? "application/json", "content-length": String(payload.length) } : {}),
    },
  };
  await kc.applyToHTTPSOptions(opts);
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise<KubeResponse>((resolve, reject) => {
    const req = send(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let body: unknown = text;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          // Not JSON (a proxy's HTML error page): keep the text for the error message.
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.setTimeout(options.timeoutMs ?? 30_000, () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on("error", (err) => reject(new ClusterError("CLUSTER_UNREACHABLE", `${method} ${url.origin}${path} failed: ${err.message}`, { cause: err })));
    req.end(payload);
  });
}

/** The message of a Kubernetes Status body, or the raw text. */
export function statusMessage(body: unknown): string {
  if (body && typeof body === "object" && typeof (body as { message?: unknown }).message === "string") {
    return (body as { message: string }).message;
  }
  return typeof body === "string" ? body.slice(0, 200) : JSON.stringify(body)?.slice(0, 200) ?? "";
}

/** The API path of a kind's collection (all namespaces, or one) and of one object. */
export function resourcePath(api: { group: string; version: string; plural: string; namespaced: boolean }, namespace?: string, name?: string): string {
  const root = api.group ? `/apis/${api.group}/${api.version}` : `/api/${api.version}`;
  const ns = api.namespaced && namespace !== undefined ? `/namespaces/${encodeURIComponent(namespace)}` : "";
  return `${root}${ns}/${api.plural}${name === undefined ? "" : `/${encodeURIComponent(name)}`}`;
}
