/**
 * One grammar per contract: every value of the port-list annotations runs through the injector,
 * discovery, the proxy and the init container, and they must agree. A value the injector admits
 * is read by the proxy and the init container as the same ports discovery hints as opaque; a
 * value the injector refuses is one discovery reports as bad.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Container, Pod } from "kubernetes-types/core/v1.js";
import { applyPatch } from "../../src/webhook/json-patch.js";
import { planInjection } from "../../src/webhook/inject.js";
import { defaultInjectionSettings } from "../../src/webhook/settings.js";
import { podEndpoint, type Lookups, type SkipReason } from "../../src/discovery/endpoints.js";
import { readProxyConfig } from "../../src/proxy/config.js";
import { parsePorts } from "../../src/proxy/init/rules.js";
import { inRanges } from "../../src/api/ports.js";

const VALUES = [
  "",
  "3306",
  " 3306 , 5432 ",
  "9000-12000",
  "1-65535",
  "4000-4100,mysql",
  "mysql",
  "http",
  "unknown-name",
  "0",
  "70000",
  "90-80",
  "80-",
  "-80",
  "Bad_Name",
  "3306,,5432",
  "a--b",
  "1234567890123456",
];
/** Ports probed for each value: edges of the ranges above and the pod's named ports. */
const PORTS = [1, 80, 3306, 3307, 4000, 4100, 4101, 5432, 8080, 8999, 9000, 12000, 12001, 13306, 65535];

function pod(annotations: Record<string, string>): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "db-0", namespace: "shop", annotations },
    spec: {
      serviceAccountName: "db",
      containers: [{ name: "app", image: "example/db:1", ports: [{ name: "mysql", containerPort: 13306 }, { name: "http", containerPort: 8080 }] }],
    },
  };
}

function inject(p: Pod): { injected: Pod } | { refused: string } {
  try {
    const result = planInjection({ pod: p, namespaceName: "shop", namespace: undefined, settings: defaultInjectionSettings(), explicit: true });
    assert.ok(result.injected);
    return { injected: applyPatch(p, result.patch) };
  } catch (err) {
    return { refused: (err as Error).message };
  }
}

function discovery(p: Pod) {
  const reports: SkipReason[] = [];
  const lookups: Lookups = { pod: () => undefined, namespace: () => undefined, trustDomain: "cluster.local", report: (reason) => reports.push(reason) };
  const opaque = (port: number) => podEndpoint(p, "10.0.0.9", port, lookups)?.protocolHint === "opaque";
  return { opaque, reports };
}

function env(container: Container): Record<string, string> {
  return Object.fromEntries((container.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
}

function flag(container: Container, name: string): string {
  const args = container.args ?? [];
  const at = args.indexOf(name);
  return at < 0 ? "" : args[at + 1]!;
}

for (const value of VALUES) {
  test(`opaque-ports ${JSON.stringify(value)}: injector, discovery and proxy agree`, () => {
    const original = pod({ "config.tether.io/opaque-ports": value });
    const admitted = inject(original);
    const seen = discovery(original);
    PORTS.forEach((port) => seen.opaque(port));
    if ("refused" in admitted) {
      assert.ok(seen.reports.includes("bad_annotation"), `the injector refused (${admitted.refused}) but discovery found nothing wrong`);
      return;
    }
    assert.deepEqual(seen.reports, [], "the injector admitted what discovery reports as bad");
    const proxyContainer = admitted.injected.spec!.containers.find((c) => c.name === "tether-proxy")!;
    // What the downward API fills in at run time.
    const config = readProxyConfig({ ...env(proxyContainer), TETHER_POD_NAME: "db-0", TETHER_POD_NAMESPACE: "shop", TETHER_SERVICE_ACCOUNT: "db" });
    const injectedDiscovery = discovery(admitted.injected);
    for (const port of PORTS) {
      assert.equal(config.opaquePorts.has(port), seen.opaque(port), `port ${port}: proxy ${config.opaquePorts.has(port)}, discovery ${seen.opaque(port)}`);
      assert.equal(injectedDiscovery.opaque(port), seen.opaque(port), `port ${port}: the injected pod reads the same`);
    }
  });

  for (const annotation of ["skip-inbound-ports", "skip-outbound-ports"]) {
    test(`${annotation} ${JSON.stringify(value)}: injector and init container agree`, () => {
      const original = pod({ [`config.tether.io/${annotation}`]: value });
      const admitted = inject(original);
      if ("refused" in admitted) {
        assert.throws(() => parsePorts(value), { code: "INIT_BAD_PORTS" }, `the injector refused (${admitted.refused}), the init container would not`);
        return;
      }
      const init = admitted.injected.spec!.initContainers!.find((c) => c.name === "tether-init")!;
      const skipped = parsePorts(flag(init, `--${annotation}`));
      const asked = parsePorts(value);
      for (const port of PORTS.filter((p) => p !== 4191)) {
        assert.equal(inRanges(port, skipped), inRanges(port, asked), `port ${port}`);
      }
    });
  }
}
