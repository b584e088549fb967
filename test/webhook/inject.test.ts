import { describe, it } from "node:test";
import assert from "node:assert/strict";
import jsonpatch from "fast-json-patch";
import type { Container, Namespace, Pod } from "kubernetes-types/core/v1.js";
import { InjectionError, isInjected, planInjection, type InjectionInput } from "../../src/webhook/inject.js";
import { applyPatch, type PatchOperation } from "../../src/webhook/json-patch.js";
import { defaultInjectionSettings } from "../../src/webhook/settings.js";

const settings = defaultInjectionSettings();

function ns(name: string, labels: Record<string, string> = { "tether.io/inject": "enabled" }, annotations?: Record<string, string>): Namespace {
  return { apiVersion: "v1", kind: "Namespace", metadata: { name, labels, ...(annotations ? { annotations } : {}) } };
}

function pod(extra: { annotations?: Record<string, string>; labels?: Record<string, string>; spec?: Partial<Pod["spec"]> } = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      generateName: "web-7d9f-",
      ...(extra.annotations ? { annotations: extra.annotations } : {}),
      ...(extra.labels ? { labels: extra.labels } : {}),
    },
    spec: {
      serviceAccountName: "web",
      containers: [{ name: "app", image: "example/web:1", ports: [{ name: "http", containerPort: 8080 }, { containerPort: 9090 }] }],
      ...extra.spec,
    },
  };
}

function input(p: Pod, namespace: Namespace | undefined = ns("shop"), explicit = false): InjectionInput {
  return { pod: p, namespaceName: namespace?.metadata?.name ?? "shop", namespace, settings, explicit };
}

/** Applies with the independent library (after validating the patch) and checks our applier agrees. */
function apply(p: Pod, patch: PatchOperation[]): Pod {
  const err = jsonpatch.validate(patch as jsonpatch.Operation[], structuredClone(p));
  assert.equal(err, undefined, `invalid patch: ${err?.message}`);
  const viaLibrary = jsonpatch.applyPatch(structuredClone(p), patch as jsonpatch.Operation[], true, false).newDocument;
  assert.deepEqual(applyPatch(p, patch), viaLibrary);
  return viaLibrary;
}

function injected(p: Pod, namespace?: Namespace): { pod: Pod; warnings: string[]; patch: PatchOperation[] } {
  const result = planInjection(input(p, namespace));
  assert.equal(result.injected, true, result.injected ? "" : result.message);
  if (!result.injected) throw new Error("unreachable");
  return { pod: apply(p, result.patch), warnings: result.warnings, patch: result.patch };
}

function proxyOf(p: Pod): Container {
  const c = p.spec?.containers.find((x) => x.name === "tether-proxy");
  assert.ok(c, "pod has a tether-proxy container");
  return c;
}

function initOf(p: Pod): Container {
  const c = p.spec?.initContainers?.find((x) => x.name === "tether-init");
  assert.ok(c, "pod has a tether-init init container");
  return c;
}

function env(c: Container, name: string): string | undefined {
  return c.env?.find((e) => e.name === name)?.value;
}

function argAfter(c: Container, flag: string): string | undefined {
  const i = c.args?.indexOf(flag) ?? -1;
  return i >= 0 ? c.args?.[i + 1] : undefined;
}

describe("injection decision", () => {
  const cases: { name: string; pod: Pod; namespace: Namespace | undefined; explicit?: boolean; reason?: string }[] = [
    { name: "labelled namespace", pod: pod(), namespace: ns("shop") },
    { name: "unlabelled namespace", pod: pod(), namespace: ns("shop", {}), reason: "namespace-not-enabled" },
    { name: "namespace label disabled", pod: pod(), namespace: ns("shop", { "tether.io/inject": "disabled" }), reason: "namespace-not-enabled" },
    { name: "unknown namespace", pod: pod(), namespace: undefined, reason: "namespace-not-enabled" },
    { name: "pod opt-out", pod: pod({ annotations: { "tether.io/inject": "disabled" } }), namespace: ns("shop"), reason: "pod-opted-out" },
    { name: "host network", pod: pod({ spec: { hostNetwork: true } }), namespace: ns("shop"), reason: "host-network" },
    { name: "control-plane namespace", pod: pod(), namespace: ns("tether"), reason: "control-plane-namespace" },
    { name: "kube-system", pod: pod(), namespace: ns("kube-system"), reason: "system-namespace" },
    { name: "explicit (tether inject) without namespace", pod: pod(), namespace: undefined, explicit: true },
    { name: "explicit still honours opt-out", pod: pod({ annotations: { "tether.io/inject": "disabled" } }), namespace: undefined, explicit: true, reason: "pod-opted-out" },
    {
      name: "already injected (proxy container)",
      pod: pod({ spec: { containers: [{ name: "tether-proxy", image: "x" }, { name: "app", image: "y" }] } }),
      namespace: ns("shop"),
      reason: "already-injected",
    },
    { name: "already injected (annotation)", pod: pod({ annotations: { "tether.io/proxy-version": "0.0.9" } }), namespace: ns("shop"), reason: "already-injected" },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const result = planInjection({ pod: c.pod, namespaceName: c.namespace?.metadata?.name ?? "shop", namespace: c.namespace, settings, explicit: c.explicit ?? false });
      if (c.reason) {
        assert.equal(result.injected, false);
        if (!result.injected) {
          assert.equal(result.reason, c.reason);
          assert.ok(result.message.length > 10);
        }
      } else {
        assert.equal(result.injected, true);
      }
    });
  }
});

describe("injection patch", () => {
  it("adds the proxy first, the init container, volumes, annotation and label", () => {
    const { pod: out, warnings } = injected(pod({ labels: { app: "web" } }));
    assert.deepEqual(warnings, []);
    assert.deepEqual(out.spec?.containers.map((c) => c.name), ["tether-proxy", "app"]);
    assert.deepEqual(out.spec?.initContainers?.map((c) => c.name), ["tether-init"]);
    assert.deepEqual(out.spec?.volumes?.map((v) => v.name), ["tether-identity-token", "tether-trust-anchors", "tether-init-xtables-lock"]);
    assert.equal(out.metadata?.annotations?.["tether.io/proxy-version"], "0.1.0");
    assert.deepEqual(out.metadata?.labels, { app: "web", "tether.io/control-plane-ns": "tether" });
    assert.equal(isInjected(out), true);

    const proxy = proxyOf(out);
    assert.equal(proxy.securityContext?.runAsUser, 2102);
    assert.equal(proxy.securityContext?.readOnlyRootFilesystem, true);
    assert.equal(proxy.securityContext?.allowPrivilegeEscalation, false);
    assert.deepEqual(proxy.securityContext?.capabilities, { drop: ["ALL"] });
    assert.deepEqual(proxy.ports?.map((p) => p.containerPort), [4143, 4140, 4191]);
    assert.equal(proxy.readinessProbe?.httpGet?.port, 4191);
    assert.equal(proxy.livenessProbe?.httpGet?.path, "/live");
    assert.deepEqual(proxy.resources, { requests: { cpu: "100m", memory: "64Mi" }, limits: { cpu: "1", memory: "256Mi" } });
    assert.equal(env(proxy, "TETHER_INBOUND_PORTS"), "8080,9090");
    assert.equal(env(proxy, "TETHER_IDENTITY_ADDR"), "tether-identity.tether.svc.cluster.local:8080");
    assert.equal(env(proxy, "TETHER_DESTINATION_ADDR"), "tether-destination.tether.svc.cluster.local:8086");
    assert.equal(env(proxy, "TETHER_POLICY_ADDR"), "tether-destination.tether.svc.cluster.local:8090");
    assert.equal(env(proxy, "TETHER_TOKEN_FILE"), "/var/run/secrets/tether.io/serviceaccount/token");
    assert.equal(env(proxy, "TETHER_DEFAULT_INBOUND_POLICY"), "all-authenticated");
    assert.equal(
      env(proxy, "TETHER_IDENTITY_NAME"),
      "$(TETHER_SERVICE_ACCOUNT).$(TETHER_POD_NAMESPACE).serviceaccount.identity.tether.cluster.local",
    );
    // Dependent variables must be defined before the one that references them.
    const names = proxy.env?.map((e) => e.name) ?? [];
    assert.ok(names.indexOf("TETHER_SERVICE_ACCOUNT") < names.indexOf("TETHER_IDENTITY_NAME"));
    assert.equal(proxy.env?.find((e) => e.name === "TETHER_SERVICE_ACCOUNT")?.valueFrom?.fieldRef?.fieldPath, "spec.serviceAccountName");

    const init = initOf(out);
    assert.deepEqual(init.securityContext?.capabilities, { add: ["NET_ADMIN", "NET_RAW"], drop: ["ALL"] });
    assert.equal(init.securityContext?.allowPrivilegeEscalation, false);
    assert.equal(argAfter(init, "--proxy-uid"), "2102");
    assert.equal(argAfter(init, "--skip-inbound-ports"), "4191");
    assert.equal(init.args?.includes("--skip-outbound-ports"), false);

    const token = out.spec?.volumes?.find((v) => v.name === "tether-identity-token");
    assert.deepEqual(token?.projected?.sources?.[0]?.serviceAccountToken, { audience: "identity.tether.io", expirationSeconds: 3600, path: "token" });
  });

  it("is idempotent: the injected pod is returned unchanged", () => {
    const { pod: once } = injected(pod());
    const again = planInjection(input(once));
    assert.equal(again.injected, false);
    if (!again.injected) assert.equal(again.reason, "already-injected");
  });

  it("escapes '/' and '~' in annotation and label keys", () => {
    const { patch, pod: out } = injected(pod({ annotations: { "a~b/c": "1" }, labels: { app: "web" } }));
    assert.ok(patch.some((op) => op.path === "/metadata/annotations/tether.io~1proxy-version"));
    assert.ok(patch.some((op) => op.path === "/metadata/labels/tether.io~1control-plane-ns"));
    assert.equal(out.metadata?.annotations?.["a~b/c"], "1");
  });

  it("creates metadata when the pod has none", () => {
    const bare: Pod = { spec: { containers: [{ name: "app", image: "x" }] } };
    const { pod: out } = injected(bare);
    assert.equal(out.metadata?.labels?.["tether.io/control-plane-ns"], "tether");
  });

  it("keeps existing init containers first and sidecars after the proxy", () => {
    const { pod: out } = injected(
      pod({
        spec: {
          initContainers: [{ name: "migrate", image: "m" }],
          containers: [{ name: "app", image: "a" }, { name: "log-shipper", image: "l" }],
          volumes: [{ name: "data", emptyDir: {} }],
        },
      }),
    );
    assert.deepEqual(out.spec?.initContainers?.map((c) => c.name), ["migrate", "tether-init"]);
    assert.deepEqual(out.spec?.containers.map((c) => c.name), ["tether-proxy", "app", "log-shipper"]);
    assert.deepEqual(out.spec?.volumes?.map((v) => v.name), ["data", "tether-identity-token", "tether-trust-anchors", "tether-init-xtables-lock"]);
  });

  it("passes skip-port annotations to the init container and leaves skipped ports out of the inbound set", () => {
    const { pod: out } = injected(
      pod({
        annotations: {
          "config.tether.io/skip-inbound-ports": "9090, 10000-10010",
          "config.tether.io/skip-outbound-ports": "5432,6379",
          "config.tether.io/opaque-ports": "3306",
        },
      }),
    );
    const init = initOf(out);
    assert.equal(argAfter(init, "--skip-inbound-ports"), "4191,9090,10000-10010");
    assert.equal(argAfter(init, "--skip-outbound-ports"), "5432,6379");
    assert.equal(env(proxyOf(out), "TETHER_INBOUND_PORTS"), "8080");
    assert.equal(env(proxyOf(out), "TETHER_OPAQUE_PORTS"), "3306");
  });

  it("takes config from the namespace unless the pod overrides it", () => {
    const namespace = ns("shop", { "tether.io/inject": "enabled" }, {
      "config.tether.io/default-inbound-policy": "deny",
      "config.tether.io/proxy-memory-limit": "512Mi",
    });
    const fromNs = proxyOf(injected(pod(), namespace).pod);
    assert.equal(env(fromNs, "TETHER_DEFAULT_INBOUND_POLICY"), "deny");
    assert.equal(fromNs.resources?.limits?.memory, "512Mi");
    const fromPod = proxyOf(
      injected(pod({ annotations: { "config.tether.io/default-inbound-policy": "cluster-authenticated", "config.tether.io/proxy-cpu-limit": "250m" } }), namespace).pod,
    );
    assert.equal(env(fromPod, "TETHER_DEFAULT_INBOUND_POLICY"), "cluster-authenticated");
    assert.equal(fromPod.resources?.limits?.cpu, "250m");
  });

  it("intercepts IPv6 too when the install says so", () => {
    const result = planInjection({ ...input(pod()), settings: defaultInjectionSettings({ ipv6: true }) });
    assert.ok(result.injected);
    assert.equal(initOf(apply(pod(), result.patch)).args?.at(-1), "--ipv6");
  });

  it("omits resource fields whose install default is empty", () => {
    const s = defaultInjectionSettings({ proxyResources: { cpuRequest: "50m", cpuLimit: "", memoryRequest: "32Mi", memoryLimit: "" } });
    const result = planInjection({ ...input(pod()), settings: s });
    assert.ok(result.injected);
    const out = apply(pod(), result.patch);
    assert.deepEqual(proxyOf(out).resources, { requests: { cpu: "50m", memory: "32Mi" } });
  });

  describe("probes stay as they are; the ones the proxy cannot carry are warned about", () => {
    const probeCases: { name: string; container: Container; annotations?: Record<string, string>; warn?: RegExp }[] = [
      { name: "HTTP probe on a named port", container: { name: "app", ports: [{ name: "http", containerPort: 8080 }], readinessProbe: { httpGet: { path: "/ready", port: "http" } } } },
      { name: "HTTP probe on a numbered port", container: { name: "app", livenessProbe: { httpGet: { path: "/live", port: 8080 } } } },
      { name: "gRPC probe", container: { name: "app", livenessProbe: { grpc: { port: 9000 } } } },
      {
        name: "HTTPS probe on a named port",
        container: { name: "app", ports: [{ name: "https", containerPort: 8443 }], livenessProbe: { httpGet: { path: "/", port: "https", scheme: "HTTPS" } } },
        warn: /HTTPS liveness probe on port 8443/,
      },
      { name: "tcpSocket probe", container: { name: "app", startupProbe: { tcpSocket: { port: 5432 } } }, warn: /tcpSocket startup probe on port 5432/ },
      {
        name: "HTTPS probe on a skipped port",
        container: { name: "app", livenessProbe: { httpGet: { path: "/", port: 8443, scheme: "HTTPS" } } },
        annotations: { "config.tether.io/skip-inbound-ports": "8443" },
      },
    ];
    for (const c of probeCases) {
      it(c.name, () => {
        const p = pod({ ...(c.annotations ? { annotations: c.annotations } : {}), spec: { containers: [{ image: "x", ...c.container }] } });
        const { pod: out, warnings } = injected(p);
        // The app container's probe is untouched.
        const app = out.spec?.containers.find((x) => x.name === "app");
        assert.deepEqual(app, p.spec?.containers[0]);
        if (c.warn) {
          assert.equal(warnings.length, 1);
          assert.match(warnings[0]!, c.warn);
        } else {
          assert.deepEqual(warnings, []);
        }
      });
    }
  });

  describe("refusals", () => {
    const refusals: { name: string; pod: Pod; namespace?: Namespace; code: string; message: RegExp }[] = [
      { name: "bad skip port", pod: pod({ annotations: { "config.tether.io/skip-inbound-ports": "80,http" } }), code: "INJECT_BAD_ANNOTATION", message: /skip-inbound-ports.*"http"/ },
      { name: "port out of range", pod: pod({ annotations: { "config.tether.io/opaque-ports": "70000" } }), code: "INJECT_BAD_ANNOTATION", message: /opaque-ports/ },
      { name: "reversed range", pod: pod({ annotations: { "config.tether.io/skip-outbound-ports": "90-80" } }), code: "INJECT_BAD_ANNOTATION", message: /90-80/ },
      { name: "bad quantity", pod: pod({ annotations: { "config.tether.io/proxy-memory-limit": "lots" } }), code: "INJECT_BAD_ANNOTATION", message: /proxy-memory-limit.*quantity/ },
      { name: "unknown default policy", pod: pod({ annotations: { "config.tether.io/default-inbound-policy": "allow" } }), code: "INJECT_BAD_ANNOTATION", message: /all-authenticated/ },
      {
        name: "bad annotation on the namespace",
        pod: pod(),
        namespace: ns("shop", { "tether.io/inject": "enabled" }, { "config.tether.io/proxy-log-level": "loud" }),
        code: "INJECT_BAD_ANNOTATION",
        message: /namespace shop/,
      },
      { name: "service account with a dot", pod: pod({ spec: { serviceAccountName: "web.v2" } }), code: "INJECT_BAD_SERVICE_ACCOUNT", message: /no dots/ },
      { name: "no containers", pod: { metadata: {}, spec: { containers: [] } }, code: "INJECT_NO_CONTAINERS", message: /spec.containers/ },
      // Found by the inject-yaml fuzz target (a mutated manifest): the patch appended to a
      // spec.volumes that was not a list, and applying it threw a plain Error out of `tether inject`.
      ...(["volumes", "initContainers"] as const).map((field) => ({ name: `spec.${field} not a list`, pod: pod({ spec: { [field]: "x" } as never }), code: "INJECT_MALFORMED_POD", message: new RegExp(`spec\\.${field} is not a list`) })),
      { name: "metadata.labels not a map", pod: pod({ labels: "app=web" as never }), code: "INJECT_MALFORMED_POD", message: /metadata\.labels is not a map/ },
      { name: "metadata not a map", pod: { ...pod(), metadata: "web" as never }, code: "INJECT_MALFORMED_POD", message: /metadata is not a map/ },
    ];
    for (const r of refusals) {
      it(r.name, () => {
        assert.throws(
          () => planInjection(input(r.pod, r.namespace ?? ns("shop"))),
          (err: unknown) => err instanceof InjectionError && err.code === r.code && r.message.test(err.message),
        );
      });
    }
  });
});

describe("the injected pod, in full", () => {
  it("is exactly this", () => {
    const original = pod({ labels: { app: "web" } });
    const { pod: out } = injected(original);
    const field = (name: string, fieldPath: string) => ({ name, valueFrom: { fieldRef: { fieldPath } } });
    const expected: Pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { generateName: "web-7d9f-", labels: { app: "web", "tether.io/control-plane-ns": "tether" }, annotations: { "tether.io/proxy-version": "0.1.0" } },
      spec: {
        serviceAccountName: "web",
        initContainers: [
          {
            name: "tether-init",
            image: "ghcr.io/tether-mesh/tether:0.1.0",
            imagePullPolicy: "IfNotPresent",
            args: ["proxy-init", "--proxy-uid", "2102", "--inbound-port", "4143", "--outbound-port", "4140", "--skip-inbound-ports", "4191"],
            resources: { requests: { cpu: "10m", memory: "64Mi" }, limits: { cpu: "500m", memory: "256Mi" } },
            securityContext: {
              runAsUser: 0,
              runAsGroup: 0,
              runAsNonRoot: false,
              readOnlyRootFilesystem: true,
              allowPrivilegeEscalation: false,
              privileged: false,
              capabilities: { add: ["NET_ADMIN", "NET_RAW"], drop: ["ALL"] },
              seccompProfile: { type: "RuntimeDefault" },
            },
            volumeMounts: [{ name: "tether-init-xtables-lock", mountPath: "/run" }],
            terminationMessagePolicy: "FallbackToLogsOnError",
          },
        ],
        containers: [
          {
            name: "tether-proxy",
            image: "ghcr.io/tether-mesh/tether:0.1.0",
            imagePullPolicy: "IfNotPresent",
            args: ["proxy"],
            env: [
              field("TETHER_POD_NAME", "metadata.name"),
              field("TETHER_POD_NAMESPACE", "metadata.namespace"),
              field("TETHER_POD_IP", "status.podIP"),
              field("TETHER_SERVICE_ACCOUNT", "spec.serviceAccountName"),
              { name: "TETHER_TRUST_DOMAIN", value: "cluster.local" },
              { name: "TETHER_IDENTITY_NAME", value: "$(TETHER_SERVICE_ACCOUNT).$(TETHER_POD_NAMESPACE).serviceaccount.identity.tether.cluster.local" },
              { name: "TETHER_TOKEN_FILE", value: "/var/run/secrets/tether.io/serviceaccount/token" },
              { name: "TETHER_TRUST_ANCHORS_FILE", value: "/var/run/tether/trust-anchors/ca-bundle.crt" },
              { name: "TETHER_IDENTITY_ADDR", value: "tether-identity.tether.svc.cluster.local:8080" },
              { name: "TETHER_DESTINATION_ADDR", value: "tether-destination.tether.svc.cluster.local:8086" },
              { name: "TETHER_POLICY_ADDR", value: "tether-destination.tether.svc.cluster.local:8090" },
              { name: "TETHER_INBOUND_PORTS", value: "8080,9090" },
              { name: "TETHER_OPAQUE_PORTS", value: "" },
              { name: "TETHER_DEFAULT_INBOUND_POLICY", value: "all-authenticated" },
              { name: "TETHER_LOG_LEVEL", value: "info" },
              { name: "NODE_OPTIONS", value: "--max-semi-space-size=1" },
            ],
            ports: [
              { name: "tether-inbound", containerPort: 4143 },
              { name: "tether-outbound", containerPort: 4140 },
              { name: "tether-admin", containerPort: 4191 },
            ],
            livenessProbe: { httpGet: { path: "/live", port: 4191 }, initialDelaySeconds: 10, periodSeconds: 10, failureThreshold: 3 },
            readinessProbe: { httpGet: { path: "/ready", port: 4191 }, periodSeconds: 5, failureThreshold: 2 },
            lifecycle: proxyOf(out).lifecycle!,
            resources: { requests: { cpu: "100m", memory: "64Mi" }, limits: { cpu: "1", memory: "256Mi" } },
            securityContext: {
              runAsUser: 2102,
              runAsGroup: 2102,
              runAsNonRoot: true,
              readOnlyRootFilesystem: true,
              allowPrivilegeEscalation: false,
              privileged: false,
              capabilities: { drop: ["ALL"] },
              seccompProfile: { type: "RuntimeDefault" },
            },
            volumeMounts: [
              { name: "tether-identity-token", mountPath: "/var/run/secrets/tether.io/serviceaccount", readOnly: true },
              { name: "tether-trust-anchors", mountPath: "/var/run/tether/trust-anchors", readOnly: true },
            ],
            terminationMessagePolicy: "FallbackToLogsOnError",
          },
          original.spec!.containers[0]!,
        ],
        volumes: [
          { name: "tether-identity-token", projected: { sources: [{ serviceAccountToken: { audience: "identity.tether.io", expirationSeconds: 3600, path: "token" } }] } },
          { name: "tether-trust-anchors", configMap: { name: "tether-identity-trust-roots", items: [{ key: "ca-bundle.crt", path: "ca-bundle.crt" }] } },
          { name: "tether-init-xtables-lock", emptyDir: {} },
        ],
      },
    };
    assert.deepEqual(out, expected);
    // The postStart hook waits on the proxy's readiness endpoint.
    const command = proxyOf(out).lifecycle?.postStart?.exec?.command ?? [];
    assert.deepEqual(command.slice(0, 2), ["node", "-e"]);
    assert.match(command[2]!, /port:4191,path:"\/ready"/);
  });

  it("the postStart script waits until /ready answers 200", async () => {
    const { createServer } = await import("node:http");
    const { spawn } = await import("node:child_process");
    const command = proxyOf(injected(pod()).pod).lifecycle!.postStart!.exec!.command!;
    // Run the script against a fake admin port: not ready twice, then ready.
    let calls = 0;
    const server = createServer((_req, res) => {
      calls++;
      res.writeHead(calls < 3 ? 503 : 200).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    const script = command[2]!.replace("port:4191", `port:${port}`);
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, ["-e", script], { stdio: "ignore" });
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      child.on("exit", (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    server.close();
    assert.equal(code, 0);
    assert.equal(calls, 3);
  });
});
