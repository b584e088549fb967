/**
 * What `tether stat|top|edges|dashboard` do, apart from flag parsing (src/cli/stat.ts): choose a
 * source, measure one window, print. Output goes through `write` so tests capture it.
 */
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { loadKubeConfig } from "../cluster/kubernetes.js";
import { statRows, topRows, type Direction, type GroupBy } from "./aggregate.js";
import { edges } from "./edges.js";
import { VizError } from "./errors.js";
import { edgesTable, statTable, topTable } from "./format.js";
import { prometheusSource, scrapeSource, type WindowSource } from "./sources.js";
import { fileTargets, kubernetesTargets } from "./targets.js";
import type { PodWindow } from "./window.js";

export interface SourceFlags {
  targets?: string;
  kubeconfig?: string;
  kubernetes?: boolean;
  prometheus?: string;
  namespace?: string;
  trustDomain?: string;
  /** The targets file of a local mesh, read when it exists and no source is named. */
  localTargets?: string;
  /** Window length in milliseconds. */
  windowMs: number;
}

/** "10s", "1m", "500ms" or a bare number of seconds, in milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new VizError("VIZ_BAD_DURATION", `"${text}" is not a duration: write e.g. 10s, 1m or 500ms`);
  const n = Number(m[1]);
  const ms = m[2] === "ms" ? n : m[2] === "m" ? n * 60_000 : n * 1000;
  if (ms < 100) throw new VizError("VIZ_BAD_DURATION", `"${text}" is too short: a window needs at least 100ms`);
  return ms;
}

const GROUPS: Record<string, GroupBy> = {
  deploy: "deploy", deployment: "deploy", deployments: "deploy", deploys: "deploy", workload: "deploy",
  pod: "pod", pods: "pod", po: "pod",
  ns: "ns", namespace: "ns", namespaces: "ns",
};

export function parseGroup(text: string): GroupBy {
  const g = GROUPS[text.toLowerCase()];
  if (!g) throw new VizError("VIZ_BAD_RESOURCE", `"${text}" is not a resource stat knows: use deploy, pod or ns`);
  return g;
}

export function parseDirection(text: string): Direction {
  if (text !== "inbound" && text !== "outbound") throw new VizError("VIZ_BAD_DIRECTION", `"${text}" is not a direction: use inbound or outbound`);
  return text;
}

function defaultKubeconfig(): string | undefined {
  if (process.env.KUBECONFIG) return process.env.KUBECONFIG.split(":")[0];
  const path = join(homedir(), ".kube", "config");
  return existsSync(path) ? path : undefined;
}

export function openSource(flags: SourceFlags): WindowSource {
  const chosen = [flags.targets, flags.prometheus, flags.kubeconfig ?? (flags.kubernetes ? "yes" : undefined)].filter(Boolean);
  if (chosen.length > 1) throw new VizError("VIZ_SOURCE_CONFLICT", "pass only one of --targets, --kubeconfig/--kubernetes and --prometheus");
  if (flags.prometheus) {
    return prometheusSource({ url: flags.prometheus, windowSeconds: flags.windowMs / 1000, ...(flags.namespace ? { namespace: flags.namespace } : {}) });
  }
  if (flags.targets) return scrapeSource({ targets: fileTargets(flags.targets) });
  const kubeconfig = flags.kubeconfig ?? (flags.kubernetes ? defaultKubeconfig() : undefined);
  if (kubeconfig || (flags.kubernetes && process.env.KUBERNETES_SERVICE_HOST)) {
    const kc = kubeconfig ? loadKubeConfig({ kubeconfig }) : loadKubeConfig({ inCluster: true });
    return scrapeSource({
      targets: kubernetesTargets(kc, { ...(flags.namespace ? { namespace: flags.namespace } : {}), ...(flags.trustDomain ? { trustDomain: flags.trustDomain } : {}) }),
    });
  }
  if (flags.localTargets && existsSync(flags.localTargets)) return scrapeSource({ targets: fileTargets(flags.localTargets) });
  const kube = defaultKubeconfig();
  if (kube) return openSource({ ...flags, kubeconfig: kube });
  throw new VizError(
    "VIZ_NO_SOURCE",
    `no proxies to read: start the local mesh${flags.localTargets ? ` (tether local up writes ${flags.localTargets})` : ""}, or pass --targets FILE, --kubeconfig PATH or --prometheus URL`,
  );
}

/** One window of every pod: two scrapes `windowMs` apart, or one Prometheus query over it. */
export async function measure(source: WindowSource, windowMs: number): Promise<PodWindow[]> {
  if (source.needsPriming) {
    await source.poll();
    await sleep(windowMs);
  }
  return source.poll();
}

export type Write = (text: string) => void;

export interface StatOptions {
  group: GroupBy;
  direction: Direction;
  namespace?: string;
  json?: boolean;
}

export function printStat(windows: readonly PodWindow[], options: StatOptions, write: Write): void {
  const rows = statRows(windows, options.group, options.direction, options.namespace);
  if (options.json) return write(`${JSON.stringify(rows, null, 2)}\n`);
  if (rows.length === 0) return write(`no meshed pods${options.namespace ? ` in namespace ${options.namespace}` : ""}\n`);
  write(`${statTable(rows, options.group === "pod" ? "POD" : options.group === "ns" ? "NAMESPACE" : "DEPLOYMENT")}\n`);
  for (const r of rows) for (const e of r.errors) write(`  ! ${r.namespace}/${e}\n`);
}

export function printEdges(windows: readonly PodWindow[], options: { namespace?: string; json?: boolean }, write: Write): void {
  const ns = options.namespace;
  const rows = edges(windows).filter((e) => ns === undefined || e.src.namespace === ns || e.dst.namespace === ns);
  if (options.json) return write(`${JSON.stringify(rows, null, 2)}\n`);
  if (rows.length === 0) return write("no traffic between proxies in the window\n");
  write(`${edgesTable(rows)}\n`);
}

export function printTop(windows: readonly PodWindow[], options: { namespace?: string; limit: number; json?: boolean }, write: Write): void {
  const rows = topRows(windows, options.limit, options.namespace);
  if (options.json) return write(`${JSON.stringify(rows, null, 2)}\n`);
  if (rows.length === 0) return write("no requests in the window\n");
  write(`${topTable(rows)}\n`);
}
