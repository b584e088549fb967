/**
 * Installation commands: `tether install`, `uninstall`, `inject`, `check`, and the injector
 * process (`tether injector serve`).
 */
import { readFileSync, mkdirSync, writeFileSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { Command, Option } from "commander";
import { pino } from "pino";
import { DEFAULT_INBOUND_POLICIES, WEBHOOK_ADMIN_PORT, WEBHOOK_PORT, type DefaultInboundPolicy } from "../api/mesh.js";
import { UsageError } from "../core/errors.js";
import { validateTrustDomain, CONTROL_PLANE_NAMESPACE } from "../identity/names.js";
import { systemClock } from "../core/clock.js";
import { loadKubeConfig } from "../cluster/kubernetes.js";
import { defaultInjectionSettings, type InjectionSettings } from "../webhook/settings.js";
import { startWebhookServer } from "../webhook/server.js";
import { kubeLookup } from "../webhook/kube-lookup.js";
import { defaultInstallSettings, installObjects, type InstallSettings, type K8sObject } from "./install/render.js";
import { loadCrds, parseYamlObjects, toYamlDocuments } from "./install/manifests.js";
import { helmChartFiles } from "./install/helm.js";
import { injectObject, type InjectReport } from "./install/inject-yaml.js";
import { gatherFacts } from "./install/cluster-facts.js";
import { checksFailed, formatChecklist, runChecks } from "./install/checks.js";

interface SettingsFlags {
  trustDomain: string;
  defaultInboundPolicy: string;
  identityLifetime: string;
  ha?: boolean;
  image?: string;
  proxyCpuRequest?: string;
  proxyCpuLimit?: string;
  proxyMemoryRequest?: string;
  proxyMemoryLimit?: string;
  proxyLogLevel?: string;
  trustManager: boolean;
  externalTrustAnchor?: boolean;
  ipv6?: boolean;
}

const DURATION = /^(?=\d)(\d+h)?(\d+m)?(\d+s)?$/;

function withSettingsFlags(cmd: Command): Command {
  return cmd
    .option("--trust-domain <domain>", "trust domain of workload identities", "cluster.local")
    .addOption(new Option("--default-inbound-policy <policy>", "policy of ports no Server covers").choices([...DEFAULT_INBOUND_POLICIES]).default("all-authenticated"))
    .option("--identity-lifetime <duration>", "lifetime of workload certificates (e.g. 24h)", "24h")
    .option("--image <image>", "the tether image (every component runs from it)")
    .option("--proxy-cpu-request <quantity>", "proxy CPU request (annotation config.tether.io/proxy-cpu-request overrides)")
    .option("--proxy-cpu-limit <quantity>", "proxy CPU limit ('' for none)")
    .option("--proxy-memory-request <quantity>", "proxy memory request")
    .option("--proxy-memory-limit <quantity>", "proxy memory limit ('' for none)")
    .option("--proxy-log-level <level>", "proxy log level")
    .option("--ipv6", "also intercept IPv6 traffic (required on dual-stack clusters)");
}

export function settingsFromFlags(f: SettingsFlags): InstallSettings {
  validateTrustDomain(f.trustDomain);
  if (!DURATION.test(f.identityLifetime)) {
    throw new UsageError("INSTALL_BAD_FLAG", `--identity-lifetime ${JSON.stringify(f.identityLifetime)} is not a duration like 24h or 90m`);
  }
  const base = defaultInjectionSettings();
  const injection = defaultInjectionSettings({
    trustDomain: f.trustDomain,
    defaultInboundPolicy: f.defaultInboundPolicy as DefaultInboundPolicy,
    ...(f.image ? { image: f.image } : {}),
    ...(f.proxyLogLevel ? { proxyLogLevel: f.proxyLogLevel } : {}),
    ipv6: f.ipv6 ?? false,
    proxyResources: {
      cpuRequest: f.proxyCpuRequest ?? base.proxyResources.cpuRequest,
      cpuLimit: f.proxyCpuLimit ?? base.proxyResources.cpuLimit,
      memoryRequest: f.proxyMemoryRequest ?? base.proxyResources.memoryRequest,
      memoryLimit: f.proxyMemoryLimit ?? base.proxyResources.memoryLimit,
    },
  });
  return defaultInstallSettings(injection, {
    identityLifetime: f.identityLifetime,
    replicas: f.ha ? 2 : 1,
    trustManager: f.trustManager,
    externalTrustAnchor: f.externalTrustAnchor ?? false,
  });
}

/** Deletion order: webhooks first (so pod creation is never blocked by a missing injector), CRDs last. */
export function uninstallObjects(objects: K8sObject[], keepCrds: boolean): K8sObject[] {
  return [...objects]
    .reverse()
    .filter((o) => !(keepCrds && o.kind === "CustomResourceDefinition"))
    .map((o) => ({ apiVersion: o.apiVersion, kind: o.kind, metadata: { name: o.metadata.name, ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}) } }));
}

/** Reads the injector's settings from the config file `tether install` renders into a ConfigMap. */
export function injectorSettingsFromConfig(text: string, source: string): InjectionSettings {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new UsageError("INJECTOR_BAD_CONFIG", `${source} is not JSON: ${(err as Error).message}`);
  }
  const injection = (parsed as { injection?: Partial<InjectionSettings> })?.injection;
  if (typeof injection !== "object" || injection === null) throw new UsageError("INJECTOR_BAD_CONFIG", `${source} has no "injection" object`);
  const s = defaultInjectionSettings(injection);
  validateTrustDomain(s.trustDomain);
  if (!DEFAULT_INBOUND_POLICIES.includes(s.defaultInboundPolicy)) {
    throw new UsageError("INJECTOR_BAD_CONFIG", `${source}: defaultInboundPolicy ${JSON.stringify(s.defaultInboundPolicy)} is not one of ${DEFAULT_INBOUND_POLICIES.join(", ")}`);
  }
  if (!s.image) throw new UsageError("INJECTOR_BAD_CONFIG", `${source}: image is empty`);
  if (typeof s.ipv6 !== "boolean" || typeof s.awaitProxy !== "boolean") throw new UsageError("INJECTOR_BAD_CONFIG", `${source}: ipv6 and awaitProxy must be true or false`);
  return s;
}

function kubeConfigFrom(path: string | undefined) {
  if (path) return loadKubeConfig({ kubeconfig: path });
  if (process.env.KUBECONFIG) return loadKubeConfig({ kubeconfig: process.env.KUBECONFIG.split(":")[0]! });
  if (process.env.KUBERNETES_SERVICE_HOST) return loadKubeConfig({ inCluster: true });
  return loadKubeConfig({ kubeconfig: join(homedir(), ".kube", "config") });
}

function readInput(file: string): string {
  return file === "-" ? readFileSync(0, "utf8") : readFileSync(file, "utf8");
}

export function registerInstallCommands(program: Command): void {
  withSettingsFlags(
    program
      .command("install")
      .description("print the manifests of the control plane (tether install | kubectl apply -f -)")
      .option("--ha", "run 2 replicas of each control-plane component")
      .option("--no-trust-manager", "do not render the trust-manager Bundle (publish the anchor ConfigMap yourself)")
      .option("--external-trust-anchor", "the Secret tether-trust-anchor is supplied by you; no self-signed anchor is rendered")
      .option("--helm-chart <dir>", "write the Helm chart (generated from the same manifests) to DIR instead"),
  ).action((opts: SettingsFlags & { helmChart?: string }) => {
    if (opts.helmChart) {
      rmSync(join(opts.helmChart, "templates"), { recursive: true, force: true });
      rmSync(join(opts.helmChart, "crds"), { recursive: true, force: true });
      for (const [rel, text] of helmChartFiles()) {
        mkdirSync(dirname(join(opts.helmChart, rel)), { recursive: true });
        writeFileSync(join(opts.helmChart, rel), text);
      }
      console.error(`wrote the Helm chart to ${opts.helmChart}`);
      return;
    }
    process.stdout.write(toYamlDocuments(installObjects(settingsFromFlags(opts), loadCrds())));
  });

  program
    .command("uninstall")
    .description("print the objects to delete (tether uninstall | kubectl delete -f -)")
    .option("--keep-crds", "keep the policy CRDs and every policy resource")
    .action((opts: { keepCrds?: boolean }) => {
      const all = installObjects(settingsFromFlags({ trustDomain: "cluster.local", defaultInboundPolicy: "all-authenticated", identityLifetime: "24h", trustManager: true }), loadCrds());
      process.stdout.write(toYamlDocuments(uninstallObjects(all, opts.keepCrds ?? false)));
    });

  withSettingsFlags(
    program
      .command("inject")
      .argument("<file>", "YAML manifests, or - for standard input")
      .description("add the tether proxy to workloads in YAML (Deployments, StatefulSets, DaemonSets, Jobs, CronJobs, Pods, Lists)"),
  ).action((file: string, opts: SettingsFlags) => {
    const settings = settingsFromFlags({ ...opts, trustManager: true }).injection;
    const reports: InjectReport[] = [];
    const out = parseYamlObjects(readInput(file), file === "-" ? "standard input" : file).map((o) => injectObject(o, settings, reports));
    process.stdout.write(toYamlDocuments(out));
    for (const r of reports) console.error(`${r.kind}/${r.name}: ${r.detail}`);
  });

  program
    .command("check")
    .description("check a cluster: prerequisites, CRDs, control plane, issuer and anchors, webhook, meshed proxies")
    .option("--pre", "check only that the cluster is ready for `tether install`")
    .option("--kubeconfig <path>", "kubeconfig (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
    .option("--namespace <ns>", "control-plane namespace", CONTROL_PLANE_NAMESPACE)
    .option("-o, --output <format>", "table or json", "table")
    .action(async (opts: { pre?: boolean; kubeconfig?: string; namespace: string; output: string }) => {
      const facts = await gatherFacts(kubeConfigFrom(opts.kubeconfig), { namespace: opts.namespace, now: Date.now(), pre: opts.pre ?? false });
      const items = runChecks(facts, { pre: opts.pre ?? false });
      process.stdout.write(opts.output === "json" ? JSON.stringify(items, null, 2) + "\n" : formatChecklist(items));
      if (checksFailed(items)) process.exitCode = 1;
    });

  program
    .command("injector")
    .description("the proxy injector and policy validator")
    .command("serve")
    .description("serve the admission webhooks over HTTPS")
    .requiredOption("--config <file>", "settings file (config.json of the tether-config ConfigMap)")
    .requiredOption("--tls-dir <dir>", "folder with tls.crt and tls.key (the cert-manager Secret, hot-reloaded)")
    .option("--port <port>", "HTTPS port", String(WEBHOOK_PORT))
    .option("--admin-port <port>", "metrics and probes port", String(WEBHOOK_ADMIN_PORT))
    .option("--kubeconfig <path>", "kubeconfig (default: in-cluster)")
    .action(async (opts: { config: string; tlsDir: string; port: string; adminPort: string; kubeconfig?: string }) => {
      const log = pino({ level: process.env.TETHER_LOG_LEVEL ?? "info" }).child({ component: "injector" });
      const settings = injectorSettingsFromConfig(readFileSync(opts.config, "utf8"), opts.config);
      const kc = kubeConfigFrom(opts.kubeconfig);
      const server = await startWebhookServer({
        settings,
        lookup: kubeLookup(kc, systemClock),
        certFile: join(opts.tlsDir, "tls.crt"),
        keyFile: join(opts.tlsDir, "tls.key"),
        log,
        port: Number(opts.port),
        adminPort: Number(opts.adminPort),
      });
      log.info({ port: server.port, adminPort: server.adminPort, trustDomain: settings.trustDomain, image: settings.image }, "injector serving");
      // The config file is a ConfigMap volume: `kubectl apply` of new settings reaches it without a restart.
      let current = JSON.stringify(settings);
      const configPoll = setInterval(() => {
        try {
          const next = injectorSettingsFromConfig(readFileSync(opts.config, "utf8"), opts.config);
          if (JSON.stringify(next) === current) return;
          current = JSON.stringify(next);
          server.updateSettings(next);
          log.info({ trustDomain: next.trustDomain, image: next.image }, "injector settings reloaded");
        } catch (err) {
          log.error({ err: (err as Error).message }, "new injector settings refused; keeping the current ones");
        }
      }, Number(process.env.TETHER_CONFIG_POLL_MS ?? 10_000));
      const stop = () => {
        clearInterval(configPoll);
        log.info("shutting down");
        void server.close().then(() => process.exit(0));
      };
      process.once("SIGTERM", stop);
      process.once("SIGINT", stop);
    });
}
