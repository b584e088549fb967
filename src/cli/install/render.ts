/**
 * The manifests of a tether installation, as objects: rendered by `tether install`, deleted by
 * `tether uninstall`, and turned into the Helm chart in deploy/helm/tether. Pure: settings and
 * the CRDs (read from deploy/crds) in, objects out.
 */
import type { ConfigMap, Container, EnvVar, Namespace, PodSpec, Service, ServiceAccount, Volume } from "kubernetes-types/core/v1.js";
import type { Deployment } from "kubernetes-types/apps/v1.js";
import type { PodDisruptionBudget } from "kubernetes-types/policy/v1.js";
import type { ClusterRole, ClusterRoleBinding, PolicyRule } from "kubernetes-types/rbac/v1.js";
// Types only (erased at run time): they make the compiler refuse a misspelt field in a manifest.
import type { ICertificate } from "@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate";
import type { IIssuer } from "@kubernetes-models/cert-manager/cert-manager.io/v1/Issuer";
import type { IBundle } from "@kubernetes-models/cert-manager/trust.cert-manager.io/v1alpha1/Bundle";
// kubernetes-types' webhook rule type lacks `resources`; kubernetes-models has the full one.
import type { IMutatingWebhookConfiguration } from "kubernetes-models/admissionregistration.k8s.io/v1/MutatingWebhookConfiguration";
import type { IValidatingWebhookConfiguration } from "kubernetes-models/admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration";
import {
  DESTINATION_ADMIN_PORT,
  DESTINATION_PORT,
  DESTINATION_SERVICE_ACCOUNT,
  IDENTITY_ADMIN_PORT,
  IDENTITY_PORT,
  IDENTITY_SERVICE_ACCOUNT,
  INJECT_LABEL,
  INJECTOR_SERVICE_ACCOUNT,
  POLICY_PORT,
  TETHER_VERSION,
  WEBHOOK_ADMIN_PORT,
  WEBHOOK_PORT,
} from "../../api/mesh.js";
import { TOKEN_AUDIENCE } from "../../identity/names.js";
import {
  ANCHORS_DIR,
  ANCHORS_FILE,
  ANCHORS_VOLUME,
  TOKEN_DIR,
  TOKEN_FILE,
  TOKEN_VOLUME,
  TRUST_ANCHORS_CONFIGMAP,
  TRUST_ANCHORS_KEY,
  type InjectionSettings,
} from "../../webhook/settings.js";

export interface InstallSettings {
  injection: InjectionSettings;
  /** Lifetime of workload certificates (Go-style duration, e.g. 24h). */
  identityLifetime: string;
  issuerDuration: string;
  issuerRenewBefore: string;
  anchorDuration: string;
  /** Replicas of each control-plane Deployment (2 with --ha). */
  replicas: number;
  logLevel: string;
  /** Render a trust-manager Bundle that publishes the anchors as a ConfigMap in every namespace. */
  trustManager: boolean;
  /** The anchor Secret tether-trust-anchor is supplied by the operator (no self-signed anchor). */
  externalTrustAnchor: boolean;
}

export function defaultInstallSettings(injection: InjectionSettings, overrides: Partial<Omit<InstallSettings, "injection">> = {}): InstallSettings {
  return {
    injection,
    identityLifetime: "24h",
    issuerDuration: "48h",
    issuerRenewBefore: "25h",
    anchorDuration: "87600h",
    replicas: 1,
    logLevel: "info",
    trustManager: true,
    externalTrustAnchor: false,
    ...overrides,
  };
}

export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; [k: string]: unknown }; [k: string]: unknown };

/** An object and the setting that must hold for it to be rendered (for Helm's `if`). */
export interface RenderedObject {
  object: K8sObject;
  when?: { setting: "trustManager" | "externalTrustAnchor"; is: boolean };
}

/** Admin (metrics/probes) ports: the defaults of `tether ca serve` and of the destination controller. */
export const CONTROL_PLANE_UID = 65532;
export const IDENTITY_ISSUER_SECRET = "tether-identity-issuer";
export const TRUST_ANCHOR_SECRET = "tether-trust-anchor";
export const INJECTOR_TLS_SECRET = "tether-injector-tls";
export const CONFIG_MAP = "tether-config";
export const ISSUER_DIR = "/var/run/tether/issuer";
export const CONFIG_DIR = "/var/run/tether/config";
export const TLS_DIR = "/var/run/tether/tls";
export const MUTATING_WEBHOOK = "tether-proxy-injector";
export const VALIDATING_WEBHOOK = "tether-policy-validator";

const PART_OF = "tether";

/** Checks a manifest literal against its Kubernetes type (excess fields are compile errors). */
function typed<T extends object>(o: T): K8sObject {
  return o as unknown as K8sObject;
}

function labels(component: string): Record<string, string> {
  return { "app.kubernetes.io/name": component, "app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/version": TETHER_VERSION };
}

function meta(name: string, ns: string | undefined, component: string, extra: Record<string, unknown> = {}) {
  return { name, ...(ns ? { namespace: ns } : {}), labels: labels(component), ...extra };
}

function env(values: Record<string, string>): EnvVar[] {
  return Object.entries(values).map(([name, value]) => ({ name, value }));
}

function fieldEnv(name: string, fieldPath: string): EnvVar {
  return { name, valueFrom: { fieldRef: { fieldPath } } };
}

interface DeploymentSpec {
  name: string;
  serviceAccount: string;
  args: string[];
  env: EnvVar[];
  ports: { name: string; containerPort: number }[];
  adminPort: number;
  adminScheme?: "HTTP";
  volumes: Volume[];
  mounts: NonNullable<Container["volumeMounts"]>;
  resources: NonNullable<Container["resources"]>;
}

function deployment(s: InstallSettings, ns: string, d: DeploymentSpec): K8sObject {
  const selector = { "app.kubernetes.io/name": d.name };
  const probe = (path: string) => ({ httpGet: { path, port: d.adminPort } });
  const podSpec: PodSpec = {
    serviceAccountName: d.serviceAccount,
    automountServiceAccountToken: true,
    enableServiceLinks: false,
    securityContext: { runAsNonRoot: true, runAsUser: CONTROL_PLANE_UID, runAsGroup: CONTROL_PLANE_UID, seccompProfile: { type: "RuntimeDefault" } },
    affinity: {
      // Spread replicas over nodes when the cluster has several; never block scheduling on it.
      podAntiAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [
          { weight: 100, podAffinityTerm: { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: selector } } },
        ],
      },
    },
    containers: [
      {
        name: d.name,
        image: s.injection.image,
        imagePullPolicy: s.injection.imagePullPolicy,
        args: d.args,
        ...(d.env.length ? { env: d.env } : {}),
        ports: [...d.ports, { name: "admin", containerPort: d.adminPort }],
        livenessProbe: { ...probe("/live"), initialDelaySeconds: 10, periodSeconds: 10 },
        readinessProbe: { ...probe("/ready"), periodSeconds: 5 },
        resources: d.resources,
        securityContext: {
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
          privileged: false,
          capabilities: { drop: ["ALL"] },
        },
        volumeMounts: d.mounts,
      },
    ],
    volumes: d.volumes,
  };
  return typed<Deployment>({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: meta(d.name, ns, d.name),
    spec: {
      replicas: s.replicas,
      revisionHistoryLimit: 5,
      selector: { matchLabels: selector },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: { metadata: { labels: labels(d.name) }, spec: podSpec },
    },
  });
}

function pdb(name: string, ns: string): K8sObject {
  return typed<PodDisruptionBudget>({
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: meta(name, ns, name),
    spec: { maxUnavailable: 1, selector: { matchLabels: { "app.kubernetes.io/name": name } } },
  });
}

function service(name: string, ns: string, ports: { name: string; port: number; targetPort: number | string; appProtocol?: string }[]): K8sObject {
  return typed<Service>({
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(name, ns, name),
    spec: { type: "ClusterIP", selector: { "app.kubernetes.io/name": name }, ports: ports.map((p) => ({ protocol: "TCP", ...p })) },
  });
}

function serviceAccount(name: string, ns: string): K8sObject {
  return typed<ServiceAccount>({ apiVersion: "v1", kind: "ServiceAccount", metadata: meta(name, ns, name), automountServiceAccountToken: false });
}

function clusterRole(name: string, rules: PolicyRule[]): K8sObject[] {
  return [typed<ClusterRole>({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: meta(name, undefined, name), rules })];
}

function clusterRoleBinding(name: string, ns: string): K8sObject {
  return typed<ClusterRoleBinding>({
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    metadata: meta(name, undefined, name),
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
    subjects: [{ kind: "ServiceAccount", name, namespace: ns }],
  });
}

const READ = ["get", "list", "watch"];

function rbac(ns: string): K8sObject[] {
  return [
    // The CA verifies workload tokens with TokenReview and needs nothing else from the API.
    ...clusterRole(IDENTITY_SERVICE_ACCOUNT, [{ apiGroups: ["authentication.k8s.io"], resources: ["tokenreviews"], verbs: ["create"] }]),
    clusterRoleBinding(IDENTITY_SERVICE_ACCOUNT, ns),
    // Discovery and policy read; the only write is the status subresource of the policy resources.
    ...clusterRole(DESTINATION_SERVICE_ACCOUNT, [
      { apiGroups: [""], resources: ["namespaces", "pods", "services", "serviceaccounts"], verbs: READ },
      { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: READ },
      { apiGroups: ["policy.tether.io"], resources: ["servers", "authorizationpolicies", "meshtlsauthentications", "networkauthentications"], verbs: READ },
      {
        apiGroups: ["policy.tether.io"],
        resources: ["servers/status", "authorizationpolicies/status", "meshtlsauthentications/status", "networkauthentications/status"],
        verbs: ["patch", "update"],
      },
      { apiGroups: ["gateway.networking.k8s.io"], resources: ["httproutes", "grpcroutes"], verbs: READ },
    ]),
    clusterRoleBinding(DESTINATION_SERVICE_ACCOUNT, ns),
    // The injector reads a pod's namespace (labels, config annotations) and lists pods to warn about Server ports.
    ...clusterRole(INJECTOR_SERVICE_ACCOUNT, [
      { apiGroups: [""], resources: ["namespaces"], verbs: ["get"] },
      { apiGroups: [""], resources: ["pods"], verbs: ["list"] },
    ]),
    clusterRoleBinding(INJECTOR_SERVICE_ACCOUNT, ns),
  ];
}

function certManager(s: InstallSettings, ns: string): RenderedObject[] {
  const td = s.injection.trustDomain;
  const issuer = (name: string, spec: NonNullable<IIssuer["spec"]>) => typed<IIssuer>({ apiVersion: "cert-manager.io/v1", kind: "Issuer", metadata: meta(name, ns, "tether-identity"), spec });
  const cert = (name: string, spec: NonNullable<ICertificate["spec"]>) =>
    typed<ICertificate>({ apiVersion: "cert-manager.io/v1", kind: "Certificate", metadata: meta(name, ns, "tether-identity"), spec });
  const ecdsa = { algorithm: "ECDSA", size: 256, rotationPolicy: "Always" } as const;
  return [
    // Namespaced issuers only: a ClusterIssuer holding the anchor would let any namespace that can
    // create Certificates mint an intermediate CA for the mesh.
    { object: issuer("tether-selfsigned", { selfSigned: {} }) },
    {
      object: cert(TRUST_ANCHOR_SECRET, {
        isCA: true,
        commonName: `root.identity.tether.${td}`,
        secretName: TRUST_ANCHOR_SECRET,
        duration: s.anchorDuration,
        privateKey: ecdsa,
        usages: ["cert sign", "crl sign"],
        issuerRef: { name: "tether-selfsigned", kind: "Issuer", group: "cert-manager.io" },
      }),
      when: { setting: "externalTrustAnchor", is: false },
    },
    { object: issuer(TRUST_ANCHOR_SECRET, { ca: { secretName: TRUST_ANCHOR_SECRET } }) },
    {
      object: cert(IDENTITY_ISSUER_SECRET, {
        isCA: true,
        commonName: `identity.tether.${td}`,
        secretName: IDENTITY_ISSUER_SECRET,
        duration: s.issuerDuration,
        renewBefore: s.issuerRenewBefore,
        privateKey: ecdsa,
        usages: ["cert sign", "crl sign"],
        issuerRef: { name: TRUST_ANCHOR_SECRET, kind: "Issuer", group: "cert-manager.io" },
      }),
    },
    // The webhook's serving certificate has its own small CA: the API server trusts it through
    // the caBundle cainjector copies, never the mesh's anchor.
    {
      object: cert("tether-webhook-ca", {
        isCA: true,
        commonName: "tether-webhook-ca",
        secretName: "tether-webhook-ca",
        duration: "87600h",
        privateKey: ecdsa,
        usages: ["cert sign", "crl sign"],
        issuerRef: { name: "tether-selfsigned", kind: "Issuer", group: "cert-manager.io" },
      }),
    },
    { object: issuer("tether-webhook-ca", { ca: { secretName: "tether-webhook-ca" } }) },
    {
      object: cert("tether-injector", {
        secretName: INJECTOR_TLS_SECRET,
        dnsNames: [`tether-injector.${ns}.svc`, `tether-injector.${ns}.svc.${s.injection.clusterDomain}`],
        duration: "720h",
        renewBefore: "240h",
        privateKey: ecdsa,
        usages: ["server auth", "digital signature"],
        issuerRef: { name: "tether-webhook-ca", kind: "Issuer", group: "cert-manager.io" },
      }),
    },
    {
      // trust-manager copies the anchor (public) into a ConfigMap in every namespace, where the
      // proxies mount it. Its trust namespace must be the control-plane namespace (docs/install.md).
      object: typed<IBundle>({
        apiVersion: "trust.cert-manager.io/v1alpha1",
        kind: "Bundle",
        metadata: meta(TRUST_ANCHORS_CONFIGMAP, undefined, "tether-identity"),
        spec: {
          sources: [{ secret: { name: TRUST_ANCHOR_SECRET, key: "ca.crt" } }],
          target: { configMap: { key: TRUST_ANCHORS_KEY } },
        },
      }),
      when: { setting: "trustManager", is: true },
    },
  ];
}

function webhooks(ns: string): K8sObject[] {
  const client = (path: string) => ({ service: { name: "tether-injector", namespace: ns, path, port: 443 } });
  const caFrom = { "cert-manager.io/inject-ca-from": `${ns}/tether-injector` };
  const common = { admissionReviewVersions: ["v1"], sideEffects: "None" as const, timeoutSeconds: 10, matchPolicy: "Equivalent" as const };
  return [
    typed<IMutatingWebhookConfiguration>({
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "MutatingWebhookConfiguration",
      metadata: meta(MUTATING_WEBHOOK, undefined, "tether-injector", { annotations: caFrom }),
      webhooks: [
        {
          name: "inject.tether.io",
          clientConfig: client("/inject"),
          rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"], scope: "Namespaced" }],
          namespaceSelector: {
            matchExpressions: [
              { key: INJECT_LABEL, operator: "In", values: ["enabled"] },
              { key: "kubernetes.io/metadata.name", operator: "NotIn", values: [ns, "kube-system"] },
            ],
          },
          // Security first: a pod of an opted-in namespace is never admitted without its proxy.
          failurePolicy: "Fail",
          reinvocationPolicy: "Never",
          ...common,
        },
      ],
    }),
    typed<IValidatingWebhookConfiguration>({
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingWebhookConfiguration",
      metadata: meta(VALIDATING_WEBHOOK, undefined, "tether-injector", { annotations: caFrom }),
      webhooks: [
        {
          name: "policy.tether.io",
          clientConfig: client("/validate"),
          rules: [
            {
              operations: ["CREATE", "UPDATE"],
              apiGroups: ["policy.tether.io"],
              apiVersions: ["v1alpha1"],
              resources: ["servers", "authorizationpolicies", "meshtlsauthentications", "networkauthentications"],
              scope: "Namespaced",
            },
          ],
          failurePolicy: "Fail",
          ...common,
        },
        {
          // Gateway API routes are shared with gateways: when the injector is down their writes must
          // not stop cluster-wide. The policy controller still refuses an invalid route (in status).
          name: "routes.policy.tether.io",
          clientConfig: client("/validate"),
          rules: [
            { operations: ["CREATE", "UPDATE"], apiGroups: ["gateway.networking.k8s.io"], apiVersions: ["v1"], resources: ["httproutes", "grpcroutes"], scope: "Namespaced" },
          ],
          failurePolicy: "Ignore",
          ...common,
        },
      ],
    }),
  ];
}

/** The components' settings file (mounted from the tether-config ConfigMap). */
export function componentConfig(s: InstallSettings): string {
  return JSON.stringify(
    {
      trustDomain: s.injection.trustDomain,
      identityLifetime: s.identityLifetime,
      defaultInboundPolicy: s.injection.defaultInboundPolicy,
      injection: s.injection,
    },
    null,
    2,
  );
}

export function renderInstall(s: InstallSettings, crds: K8sObject[]): RenderedObject[] {
  const ns = s.injection.controlPlaneNamespace;
  const td = s.injection.trustDomain;
  const small = { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "512Mi" } };
  const anchorsVolume: Volume = { name: ANCHORS_VOLUME, configMap: { name: TRUST_ANCHORS_CONFIGMAP, items: [{ key: TRUST_ANCHORS_KEY, path: TRUST_ANCHORS_KEY }] } };
  const tokenVolume: Volume = {
    name: TOKEN_VOLUME,
    projected: { sources: [{ serviceAccountToken: { audience: TOKEN_AUDIENCE, expirationSeconds: s.injection.tokenExpirationSeconds, path: "token" } }] },
  };
  const configVolume: Volume = { name: "config", configMap: { name: CONFIG_MAP } };
  const addr = (name: string, port: number) => `${name}.${ns}.svc.${s.injection.clusterDomain}:${port}`;

  const objects: RenderedObject[] = [
    {
      object: typed<Namespace>({
        apiVersion: "v1",
        kind: "Namespace",
        metadata: meta(ns, undefined, "tether", {
          labels: { ...labels("tether"), "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest" },
        }),
      }),
    },
    ...crds.map((object) => ({ object })),
    ...[IDENTITY_SERVICE_ACCOUNT, DESTINATION_SERVICE_ACCOUNT, INJECTOR_SERVICE_ACCOUNT].map((n) => ({ object: serviceAccount(n, ns) })),
    ...rbac(ns).map((object) => ({ object })),
    { object: typed<ConfigMap>({ apiVersion: "v1", kind: "ConfigMap", metadata: meta(CONFIG_MAP, ns, "tether"), data: { "config.json": componentConfig(s) } }) },
    ...certManager(s, ns),
    { object: service("tether-identity", ns, [{ name: "grpc", port: IDENTITY_PORT, targetPort: "grpc", appProtocol: "grpc" }]) },
    {
      object: service("tether-destination", ns, [
        { name: "grpc", port: DESTINATION_PORT, targetPort: "grpc", appProtocol: "grpc" },
        { name: "policy", port: POLICY_PORT, targetPort: "policy", appProtocol: "grpc" },
      ]),
    },
    { object: service("tether-injector", ns, [{ name: "webhook", port: 443, targetPort: "webhook" }]) },
    {
      object: deployment(s, ns, {
        name: "tether-identity",
        serviceAccount: IDENTITY_SERVICE_ACCOUNT,
        args: [
          "ca",
          "serve",
          "--issuer-dir",
          ISSUER_DIR,
          "--trust-domain",
          td,
          "--listen",
          `0.0.0.0:${IDENTITY_PORT}`,
          "--admin-port",
          String(IDENTITY_ADMIN_PORT),
          "--lifetime",
          s.identityLifetime,
          "--token-mode",
          "tokenreview",
          "--log-level",
          s.logLevel,
        ],
        env: [],
        ports: [{ name: "grpc", containerPort: IDENTITY_PORT }],
        adminPort: IDENTITY_ADMIN_PORT,
        volumes: [{ name: "issuer", secret: { secretName: IDENTITY_ISSUER_SECRET } }],
        mounts: [{ name: "issuer", mountPath: ISSUER_DIR, readOnly: true }],
        resources: small,
      }),
    },
    {
      object: deployment(s, ns, {
        name: "tether-destination",
        serviceAccount: DESTINATION_SERVICE_ACCOUNT,
        args: [
          "controller",
          "serve",
          "--trust-domain",
          td,
          "--cluster-domain",
          s.injection.clusterDomain,
          "--default-inbound-policy",
          s.injection.defaultInboundPolicy,
          "--admin-port",
          String(DESTINATION_ADMIN_PORT),
          "--log-level",
          s.logLevel,
        ],
        // The controller proves its own identity to proxies (mTLS), like a proxy does: same variables.
        env: [
          fieldEnv("TETHER_POD_NAME", "metadata.name"),
          fieldEnv("TETHER_POD_NAMESPACE", "metadata.namespace"),
          fieldEnv("TETHER_SERVICE_ACCOUNT", "spec.serviceAccountName"),
          ...env({
            TETHER_TRUST_DOMAIN: td,
            TETHER_IDENTITY_ADDR: addr("tether-identity", IDENTITY_PORT),
            TETHER_TOKEN_FILE: TOKEN_FILE,
            TETHER_TRUST_ANCHORS_FILE: ANCHORS_FILE,
          }),
        ],
        ports: [
          { name: "grpc", containerPort: DESTINATION_PORT },
          { name: "policy", containerPort: POLICY_PORT },
        ],
        adminPort: DESTINATION_ADMIN_PORT,
        volumes: [tokenVolume, anchorsVolume],
        mounts: [
          { name: TOKEN_VOLUME, mountPath: TOKEN_DIR, readOnly: true },
          { name: ANCHORS_VOLUME, mountPath: ANCHORS_DIR, readOnly: true },
        ],
        resources: small,
      }),
    },
    {
      object: deployment(s, ns, {
        name: "tether-injector",
        serviceAccount: INJECTOR_SERVICE_ACCOUNT,
        args: ["injector", "serve", "--config", `${CONFIG_DIR}/config.json`, "--tls-dir", TLS_DIR, "--port", String(WEBHOOK_PORT), "--admin-port", String(WEBHOOK_ADMIN_PORT)],
        env: env({ TETHER_LOG_LEVEL: s.logLevel }),
        ports: [{ name: "webhook", containerPort: WEBHOOK_PORT }],
        adminPort: WEBHOOK_ADMIN_PORT,
        volumes: [configVolume, { name: "tls", secret: { secretName: INJECTOR_TLS_SECRET } }],
        mounts: [
          { name: "config", mountPath: CONFIG_DIR, readOnly: true },
          { name: "tls", mountPath: TLS_DIR, readOnly: true },
        ],
        resources: { requests: { cpu: "50m", memory: "96Mi" }, limits: { memory: "256Mi" } },
      }),
    },
    ...["tether-identity", "tether-destination", "tether-injector"].map((n) => ({ object: pdb(n, ns) })),
    ...webhooks(ns).map((object) => ({ object })),
  ];
  return objects;
}

/** The objects `tether install` prints for these settings (conditions evaluated). */
export function installObjects(s: InstallSettings, crds: K8sObject[]): K8sObject[] {
  return renderInstall(s, crds)
    .filter((r) => !r.when || s[r.when.setting] === r.when.is)
    .map((r) => r.object);
}
