/**
 * `tether local up --dir FOLDER`: the folder is the cluster. Namespaces, Services, policy resources
 * and Gateway routes are published to the controller as they are; Deployments become pods
 * NAME-0…NAME-(replicas-1) and plain Pods become pods, each a network namespace, meshed when its
 * namespace carries `tether.io/inject=enabled` (and the pod does not opt out). Editing the folder
 * (e.g. `replicas`) is reconciled: missing pods are started, surplus ones removed.
 */
import type { Container, PodTemplateSpec } from "kubernetes-types/core/v1.js";
import { INJECT_ANNOTATION, INJECT_LABEL } from "../api/mesh.js";
import type { LocalFolderCluster } from "../cluster/local.js";
import type { ManifestObject } from "../cluster/manifests.js";
import { POLICY_KINDS } from "../cluster/types.js";
import { errorMessage } from "../core/errors.js";
import type { Logger } from "./log.js";
import { LocalMesh, type PodSpec } from "./mesh.js";


/** The pods a folder asks for: Deployment replicas and plain Pods. Pure. */
export function desiredPods(objects: readonly ManifestObject[], meshedNamespaces: ReadonlySet<string>, bin: string[]): PodSpec[] {
  const pods: PodSpec[] = [];
  const fromTemplate = (name: string, namespace: string, template: PodTemplateSpec | undefined, workload: string): PodSpec => {
    const spec = template?.spec;
    const app: Container | undefined = spec?.containers?.[0];
    // No image here: the command and its args are the whole argv.
    const argv = [...(app?.command ?? []), ...(app?.args ?? [])];
    // Literal values only: the local mesh has no downward API, Secrets or ConfigMaps to read from.
    const env = Object.fromEntries((app?.env ?? []).flatMap((e) => (e.value === undefined ? [] : [[e.name, e.value]])));
    const optOut = template?.metadata?.annotations?.[INJECT_ANNOTATION] === "disabled";
    return {
      name,
      namespace,
      serviceAccount: spec?.serviceAccountName ?? "default",
      labels: { ...(template?.metadata?.labels ?? {}) },
      meshed: meshedNamespaces.has(namespace) && !optOut,
      ...(argv.length > 0 ? { app: argv[0] === "tether" ? [...bin, ...argv.slice(1)] : argv } : {}),
      ...(Object.keys(env).length > 0 ? { appEnv: env } : {}),
      ...(app?.workingDir ? { workingDir: app.workingDir } : {}),
      ports: Object.fromEntries((app?.ports ?? []).map((p) => [p.name ?? String(p.containerPort), p.containerPort])),
      workload,
    };
  };
  for (const object of objects) {
    const namespace = object.metadata.namespace ?? "default";
    if (object.kind === "Deployment") {
      const spec = object.spec as { replicas?: number; template?: PodTemplateSpec } | undefined;
      const replicas = Math.max(0, Math.min(spec?.replicas ?? 1, 50));
      for (let i = 0; i < replicas; i++) pods.push(fromTemplate(`${object.metadata.name}-${i}`, namespace, spec?.template, object.metadata.name));
    } else if (object.kind === "Pod") {
      pods.push(fromTemplate(object.metadata.name, namespace, { metadata: object.metadata as never, spec: object.spec as never }, object.metadata.name));
    }
  }
  return pods;
}

export class FolderReconciler {
  private running = false;
  private again = false;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(
    private readonly mesh: LocalMesh,
    private readonly folder: LocalFolderCluster,
    private readonly log: Logger,
  ) {}

  start(): Promise<void> {
    const kick = () => void this.reconcile();
    this.unsubscribe.push(this.folder.watchManifests(kick));
    for (const kind of ["Namespace", "Service", "Pod", ...POLICY_KINDS] as const) this.unsubscribe.push(this.folder.watch(kind, kick));
    return this.reconcile();
  }

  stop(): void {
    for (const u of this.unsubscribe) u();
  }

  /** Runs until the mesh matches the folder; a change during a pass triggers another pass. */
  async reconcile(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        await this.pass().catch((err) => this.log.error({ err: errorMessage(err) }, "reconcile failed; will retry on the next change"));
      } while (this.again);
    } finally {
      this.running = false;
    }
  }

  private async pass(): Promise<void> {
    const { mesh, folder } = this;
    const meshed = new Set<string>();
    for (const ns of folder.list("Namespace")) {
      const on = ns.metadata?.labels?.[INJECT_LABEL] === "enabled";
      if (on) meshed.add(ns.metadata!.name!);
      await mesh.ensureNamespace(ns.metadata!.name!, on);
    }
    for (const kind of POLICY_KINDS) for (const object of folder.list(kind)) await mesh.applyObject(object as never);
    for (const service of folder.list("Service")) {
      const name = service.metadata?.name ?? "";
      const namespace = service.metadata?.namespace ?? "default";
      const port = service.spec?.ports?.[0];
      if (!port || mesh.services.has(`${namespace}/${name}`)) continue;
      await mesh.addService({ name, namespace, selector: service.spec?.selector ?? {}, port: port.port, targetPort: port.targetPort ?? port.port, ...(port.name ? { portName: port.name } : {}) });
    }
    const objects = [...folder.manifests(), ...folder.list("Pod").map((p) => p as unknown as ManifestObject)];
    const desired = desiredPods(objects, meshed, [process.execPath, LocalMesh.bin]);
    const wanted = new Set(desired.map((p) => p.name));
    const surplus = [...mesh.pods.keys()].filter((name) => !wanted.has(name));
    const missing = desired.filter((p) => !mesh.pods.has(p.name));
    if (surplus.length || missing.length) this.log.info({ start: missing.map((p) => p.name), stop: surplus }, "reconciling pods with the folder");
    await Promise.all([...missing.map((p) => mesh.addPod(p)), ...surplus.map((name) => mesh.removePod(name))]);
  }
}
