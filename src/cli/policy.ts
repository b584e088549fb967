/**
 * `tether policy serve` runs InboundPolicies/WatchPort (in tether-destination);
 * `tether policy validate FILE...` checks policy resources the way the controller and webhook do;
 * `tether authz POD[:PORT]` prints a pod port's effective policy: which rules allow whom.
 */
import { readFileSync } from "node:fs";
import { Command, Option } from "commander";
import { parseAllDocuments } from "yaml";
import { pino } from "pino";
import type { Pod } from "kubernetes-types/core/v1.js";
import { DEFAULT_INBOUND_POLICIES, POLICY_PORT, type DefaultInboundPolicy } from "../api/mesh.js";
import { POLICY_KINDS, type ClusterState } from "../cluster/types.js";
import { openCluster } from "../cluster/index.js";
import { validatePolicyResource } from "../cluster/policy-validation.js";
import { startControlPlane } from "../controlplane/index.js";
import { DEFAULT_CLUSTER_DOMAIN } from "../discovery/server.js";
import { DEFAULT_TRUST_DOMAIN } from "../identity/names.js";
import { errorMessage, UsageError } from "../core/errors.js";
import { formatTable } from "../core/table.js";
import { compileInboundServer, DEFAULT_SETTINGS, effectiveDefault, serversFor, type PolicySettings } from "../policy/compile.js";
import { desiredStatuses } from "../policy/status.js";
import { explainInboundServer } from "../policy/explain.js";
import { networksOption, portOption, trustDomainOption, untilSignal, withClusterSource } from "./options.js";

interface ClusterSourceOptions {
  clusterDir?: string;
  kubeconfig?: string;
  defaultInboundPolicy: DefaultInboundPolicy;
  clusterNetworks: string[];
  trustDomain: string;
}

function addClusterOptions(cmd: Command): Command {
  return withClusterSource(cmd)
    .addOption(
      new Option("--default-inbound-policy <policy>", "cluster default for ports no Server covers").choices([...DEFAULT_INBOUND_POLICIES]).default(DEFAULT_SETTINGS.clusterDefault),
    )
    .option("--cluster-networks <cidrs>", "comma-separated CIDRs of the cluster's networks (cluster-* defaults)", networksOption, DEFAULT_SETTINGS.clusterNetworks)
    .option("--trust-domain <domain>", "identity trust domain", trustDomainOption, DEFAULT_TRUST_DOMAIN);
}

async function clusterFrom(opts: ClusterSourceOptions, logger: pino.Logger): Promise<ClusterState> {
  const cluster = await openCluster({ dir: opts.clusterDir, kubeconfig: opts.kubeconfig, inCluster: !opts.clusterDir && !opts.kubeconfig, logger });
  await cluster.ready();
  return cluster;
}

function settingsFrom(opts: ClusterSourceOptions): PolicySettings {
  return { clusterDefault: opts.defaultInboundPolicy, clusterNetworks: opts.clusterNetworks, trustDomain: opts.trustDomain };
}

async function serve(opts: ClusterSourceOptions & { host: string; port: number; adminPort: number; logLevel: string }): Promise<void> {
  const controlPlane = await startControlPlane({
    cluster: { dir: opts.clusterDir, kubeconfig: opts.kubeconfig },
    host: opts.host,
    policyPort: opts.port,
    adminPort: opts.adminPort,
    trustDomain: opts.trustDomain,
    clusterDomain: DEFAULT_CLUSTER_DOMAIN,
    defaultInboundPolicy: opts.defaultInboundPolicy,
    clusterNetworks: opts.clusterNetworks,
    credentials: { kind: "plaintext" },
    logger: pino({ level: opts.logLevel }),
  });
  console.log(`tether policy listening on ${controlPlane.policyAddress} (default inbound policy ${opts.defaultInboundPolicy})`);
  await untilSignal();
  await controlPlane.close();
}


/** The ports to explain: the one asked for, or every container port of the pod. */
function portsOf(pod: Pod, asked: string | undefined): number[] {
  const ports = (pod.spec?.containers ?? []).flatMap((c) => c.ports ?? []);
  if (asked === undefined) return [...new Set(ports.map((p) => p.containerPort))].sort((a, b) => a - b);
  if (/^\d+$/.test(asked)) return [portOption(asked)];
  const named = ports.find((p) => p.name === asked);
  if (!named) throw new UsageError("POLICY_UNKNOWN_PORT", `pod has no container port named ${JSON.stringify(asked)}; give a number or one of: ${ports.map((p) => p.name).filter(Boolean).join(", ") || "(no named ports)"}`);
  return [named.containerPort];
}

async function authz(target: string, opts: ClusterSourceOptions & { namespace: string; json?: boolean }): Promise<void> {
  const [podName, portText] = target.split(":") as [string, string | undefined];
  const logger = pino({ level: "warn" }, pino.destination(2));
  const cluster = await clusterFrom(opts, logger);
  try {
    const pod = cluster.get("Pod", opts.namespace, podName);
    if (!pod) throw new UsageError("POLICY_POD_NOT_FOUND", `pod ${opts.namespace}/${podName} not found; check the name and -n NAMESPACE`);
    const settings = settingsFrom(opts);
    const ports = portsOf(pod, portText);
    if (ports.length === 0) throw new UsageError("POLICY_NO_PORTS", `pod ${opts.namespace}/${podName} declares no container ports; give one as POD:PORT`);
    const def = effectiveDefault(cluster, pod, settings);
    const compiled = ports.map((port) => ({ port, server: compileInboundServer(cluster, pod, port, settings), conflicts: serversFor(cluster, pod, port).slice(1) }));
    const rejected = desiredStatuses(cluster, settings.trustDomain)
      .filter((d) => d.namespace === opts.namespace)
      .flatMap((d) => [...(d.conditions ?? []), ...(d.parents ?? []).flatMap((p) => p.conditions)].filter((c) => c.status === "False").map((c) => ({ kind: d.kind, name: d.name, reason: c.reason, message: c.message })));
    if (opts.json) {
      console.log(JSON.stringify({ pod: `${opts.namespace}/${podName}`, defaultPolicy: def, ports: compiled.map((c) => ({ port: c.port, policy: c.server })), notAccepted: rejected }, null, 2));
      return;
    }
    console.log(`pod ${opts.namespace}/${podName}: default inbound policy ${def.policy} (from ${def.source})${def.problem ? `\n  warning: ${def.problem}` : ""}`);
    for (const c of compiled) {
      console.log(`\nport ${c.port}: ${c.server.name} (protocol ${c.server.protocol})${c.server.audit ? " [audit mode]" : ""}`);
      for (const s of c.conflicts) console.log(`  warning: Server ${s.metadata.name} also selects this port and is ignored (the oldest Server wins)`);
      const rows = explainInboundServer(c.server);
      console.log(formatTable(["ROUTE", "MATCHES", "AUTHORIZATION", "ALLOWS"], rows.map((r) => [r.route, r.match, r.authorization, r.allows]), 3).replace(/^/gm, "  "));
      if (c.server.protocol !== "opaque" && c.server.routes.length > 0 && c.server.routes.every((r) => r.matches.length > 0)) {
        console.log("  requests that match no route are refused (no-route)");
      }
    }
    if (rejected.length > 0) {
      console.log(`\npolicy resources in ${opts.namespace} that are not accepted (they grant nothing):`);
      for (const r of rejected) console.log(`  ${r.kind}/${r.name}: ${r.reason}: ${r.message}`);
    }
  } finally {
    await cluster.close();
  }
}

function validate(files: string[]): void {
  let bad = 0;
  for (const file of files) {
    const text = readFileSync(file, "utf8");
    for (const doc of parseAllDocuments(text)) {
      const line = `${file}:${doc.range ? text.slice(0, doc.range[0]).split("\n").length : 1}`;
      let obj: { kind?: string; metadata?: { name?: string } } | null;
      try {
        // Throws on an alias whose anchor is missing, or on more aliases than a manifest needs.
        obj = doc.toJS({ maxAliasCount: 100 }) as typeof obj;
      } catch (err) {
        console.log(`${line}: error: ${errorMessage(err)}`);
        bad++;
        continue;
      }
      if (!obj) continue;
      const where = `${line} ${obj.kind ?? "?"}/${obj.metadata?.name ?? "?"}`;
      if (!(POLICY_KINDS as readonly string[]).includes(obj.kind ?? "")) continue;
      const { errors, warnings } = validatePolicyResource(obj);
      for (const e of errors) console.log(`${where}: error: ${e.field ? `${e.field}: ` : ""}${e.message}`);
      for (const w of warnings) console.log(`${where}: warning: ${w}`);
      if (errors.length === 0) console.log(`${where}: ok`);
      else bad++;
    }
  }
  if (bad > 0) throw new UsageError("POLICY_INVALID", `${bad} invalid resource(s); fix the fields named above`);
}

export function registerPolicyCommands(program: Command): void {
  const policy = program.commands.find((c) => c.name() === "policy") ?? program.command("policy").description("authorization policy controller");
  addClusterOptions(policy.command("serve").description(`serve InboundPolicies/WatchPort (default port ${POLICY_PORT})`))
    .option("--host <host>", "address to listen on", "0.0.0.0")
    .option("--port <port>", "gRPC port", portOption, POLICY_PORT)
    .option("--admin-port <port>", "admin port (/metrics, /ready, /live); 0: a free one", portOption, 0)
    .option("--log-level <level>", "pino log level", "info")
    .action((opts) => serve(opts));
  policy
    .command("validate")
    .description("check policy resources in YAML files the way the controller and admission webhook do")
    .argument("<files...>", "YAML files (multi-document)")
    .action((files: string[]) => validate(files));
  addClusterOptions(program.command("authz").description("print a pod port's effective inbound policy: which rules allow whom"))
    .argument("<pod>", "POD or POD:PORT (port number or container port name)")
    .option("-n, --namespace <ns>", "the pod's namespace", "default")
    .option("--json", "print the compiled policy as JSON")
    .action((target: string, opts) => authz(target, opts));
}
