import { test } from "node:test";
import assert from "node:assert/strict";
import type { Namespace, Pod, Service } from "kubernetes-types/core/v1.js";
import type { EndpointSlice } from "kubernetes-types/discovery/v1.js";
import { OPAQUE_PORTS_ANNOTATION } from "../../src/api/mesh.js";
import { podSnapshot, serviceSnapshot, type Lookups, type SkipReason, type Snapshot } from "../../src/discovery/endpoints.js";
import { endpointSlicesFor } from "../../src/discovery/slice-controller.js";
import { makePod, makeService, type PodSpec } from "./support.js";

function lookups(pods: Pod[], namespaces: Namespace[] = [], trustDomain = "cluster.local") {
  const reports: [SkipReason, string][] = [];
  const l: Lookups = {
    pod: (ns, name) => pods.find((p) => p.metadata?.namespace === ns && p.metadata?.name === name),
    namespace: (name) => namespaces.find((n) => n.metadata?.name === name),
    trustDomain,
    report: (reason, detail) => reports.push([reason, detail]),
  };
  return { l, reports };
}

/** Pods -> slices (as the controller writes them) -> discovery's answer. */
function resolve(service: Service, podSpecs: PodSpec[], port: number, opts: { namespaces?: Namespace[]; hostname?: string; trustDomain?: string } = {}) {
  const pods = podSpecs.map(makePod);
  const { l, reports } = lookups(pods, opts.namespaces, opts.trustDomain);
  const snapshot = serviceSnapshot({ service, slices: endpointSlicesFor(service, pods), port, hostname: opts.hostname }, l);
  return { snapshot, reports };
}

function addrs(s: Snapshot): string[] {
  return [...s.endpoints.keys()].sort();
}

test("meshed endpoints carry the service account identity and h2; unmeshed carry neither", () => {
  const { snapshot } = resolve(
    makeService({ name: "web" }),
    [
      { name: "web-a", ip: "10.0.0.1", meshed: true, serviceAccount: "web", replicaSet: "web" },
      { name: "web-b", ip: "10.0.0.2", meshed: false },
    ],
    80,
  );
  assert.equal(snapshot.exists, true);
  assert.deepEqual(snapshot.endpoints.get("10.0.0.1:8080"), {
    address: "10.0.0.1",
    port: 8080,
    weight: 10000,
    identity: "web.shop.serviceaccount.identity.tether.cluster.local",
    protocolHint: "h2",
    labels: {
      namespace: "shop",
      pod: "web-a",
      serviceaccount: "web",
      replicaset: "web-5d8f7c9b4",
      deployment: "web",
      service: "web",
    },
  });
  const b = snapshot.endpoints.get("10.0.0.2:8080")!;
  assert.equal(b.identity, "");
  assert.equal(b.protocolHint, "");
});

test("the trust domain setting goes into identities", () => {
  const { snapshot } = resolve(makeService({ name: "web" }), [{ name: "a", ip: "10.0.0.1", meshed: true }], 80, { trustDomain: "corp.example" });
  assert.equal(snapshot.endpoints.get("10.0.0.1:8080")!.identity, "web.shop.serviceaccount.identity.tether.corp.example");
});

test("named target ports resolve per pod, and each Service port has its own endpoints", () => {
  const service = makeService({
    name: "api",
    ports: [
      { name: "grpc", port: 9000, targetPort: "grpc" },
      { name: "admin", port: 9990, targetPort: 9990 },
    ],
  });
  const pods: PodSpec[] = [
    { name: "old", ip: "10.0.0.1", ports: { grpc: 7000 } },
    { name: "new", ip: "10.0.0.2", ports: { grpc: 7001 } },
  ];
  assert.deepEqual(addrs(resolve(service, pods, 9000).snapshot), ["10.0.0.1:7000", "10.0.0.2:7001"]);
  assert.deepEqual(addrs(resolve(service, pods, 9990).snapshot), ["10.0.0.1:9990", "10.0.0.2:9990"]);
  // A port the (non-headless) Service does not declare does not exist.
  assert.equal(resolve(service, pods, 1234).snapshot.exists, false);
});

test("a pod without the named port is left out of that port only", () => {
  const service = makeService({ name: "api", ports: [{ name: "grpc", port: 9000, targetPort: "grpc" }, { name: "m", port: 9100, targetPort: 9100 }] });
  const pods: PodSpec[] = [
    { name: "has", ip: "10.0.0.1", ports: { grpc: 7000 } },
    { name: "lacks", ip: "10.0.0.2" },
  ];
  assert.deepEqual(addrs(resolve(service, pods, 9000).snapshot), ["10.0.0.1:7000"]);
  assert.deepEqual(addrs(resolve(service, pods, 9100).snapshot), ["10.0.0.1:9100", "10.0.0.2:9100"]);
});

test("not-ready and terminating endpoints take no new requests", () => {
  const { snapshot } = resolve(
    makeService({ name: "web" }),
    [
      { name: "ok", ip: "10.0.0.1" },
      { name: "starting", ip: "10.0.0.2", ready: false },
      { name: "leaving", ip: "10.0.0.3", terminating: true },
    ],
    80,
  );
  assert.deepEqual(addrs(snapshot), ["10.0.0.1:8080"]);
});

test("terminating condition is honoured even when a slice still says ready", () => {
  const service = makeService({ name: "web" });
  const slice: EndpointSlice = {
    metadata: { name: "web-x", namespace: "shop", labels: { "kubernetes.io/service-name": "web" } },
    addressType: "IPv4",
    ports: [{ name: "", port: 8080, protocol: "TCP" }],
    endpoints: [
      { addresses: ["10.0.0.1"], conditions: { ready: true, terminating: true } },
      { addresses: ["10.0.0.2"], conditions: {} },
    ],
  };
  const { l } = lookups([]);
  // A nil `ready` means ready (Kubernetes API convention); endpoints without targetRef are outside the mesh.
  const s = serviceSnapshot({ service, slices: [slice], port: 80 }, l);
  assert.deepEqual(addrs(s), ["10.0.0.2:8080"]);
  assert.equal(s.endpoints.get("10.0.0.2:8080")!.identity, "");
});

test("a Service with no ready endpoints exists but is empty; a missing one does not exist", () => {
  const empty = resolve(makeService({ name: "web" }), [{ name: "a", ip: "10.0.0.1", ready: false }], 80).snapshot;
  assert.equal(empty.exists, true);
  assert.equal(empty.endpoints.size, 0);
  const { l } = lookups([]);
  assert.equal(serviceSnapshot({ service: undefined, slices: [], port: 80 }, l).exists, false);
});

test("headless Services resolve by name, pass undeclared ports through, and by hostname to one pod", () => {
  const declared = makeService({ name: "db", clusterIP: "None", ports: [{ name: "pg", port: 5432, targetPort: 5432 }] });
  const pods: PodSpec[] = [
    { name: "db-0", ip: "10.0.0.1", app: "web", hostname: "db-0", subdomain: "db" },
    { name: "db-1", ip: "10.0.0.2", app: "web", hostname: "db-1", subdomain: "db" },
  ];
  assert.deepEqual(addrs(resolve(declared, pods, 5432).snapshot), ["10.0.0.1:5432", "10.0.0.2:5432"]);
  assert.deepEqual(addrs(resolve(declared, pods, 9187).snapshot), ["10.0.0.1:9187", "10.0.0.2:9187"]);
  assert.deepEqual(addrs(resolve(declared, pods, 5432, { hostname: "db-1" }).snapshot), ["10.0.0.2:5432"]);

  const portless = makeService({ name: "db", clusterIP: "None", ports: [] });
  assert.deepEqual(addrs(resolve(portless, pods, 7000).snapshot), ["10.0.0.1:7000", "10.0.0.2:7000"]);
});

test("opaque ports: the pod annotation wins over the namespace's; names and ranges work; the Service's applies to its port", () => {
  const ns: Namespace = { metadata: { name: "shop", annotations: { [OPAQUE_PORTS_ANNOTATION]: "8080" } } };
  const service = makeService({ name: "web" });
  const byNs = resolve(service, [{ name: "a", ip: "10.0.0.1", meshed: true }], 80, { namespaces: [ns] }).snapshot;
  assert.equal(byNs.endpoints.get("10.0.0.1:8080")!.protocolHint, "opaque");

  const overridden = resolve(service, [{ name: "a", ip: "10.0.0.1", meshed: true, annotations: { [OPAQUE_PORTS_ANNOTATION]: "3306" } }], 80, {
    namespaces: [ns],
  }).snapshot;
  assert.equal(overridden.endpoints.get("10.0.0.1:8080")!.protocolHint, "h2");

  const named = resolve(service, [{ name: "a", ip: "10.0.0.1", ports: { mysql: 8080 }, annotations: { [OPAQUE_PORTS_ANNOTATION]: "mysql" } }], 80)
    .snapshot;
  assert.equal(named.endpoints.get("10.0.0.1:8080")!.protocolHint, "opaque");

  const ranged = resolve(service, [{ name: "a", ip: "10.0.0.1", meshed: true, annotations: { [OPAQUE_PORTS_ANNOTATION]: "8000-8100" } }], 80)
    .snapshot;
  assert.equal(ranged.endpoints.get("10.0.0.1:8080")!.protocolHint, "opaque");

  const onService = makeService({ name: "web", annotations: { [OPAQUE_PORTS_ANNOTATION]: "80" } });
  const svc = resolve(onService, [{ name: "a", ip: "10.0.0.1", meshed: true }], 80).snapshot;
  assert.equal(svc.endpoints.get("10.0.0.1:8080")!.protocolHint, "opaque");
});

test("a bad annotation entry is reported and the rest still applies", () => {
  const { snapshot, reports } = resolve(
    makeService({ name: "web" }),
    [{ name: "a", ip: "10.0.0.1", meshed: true, annotations: { [OPAQUE_PORTS_ANNOTATION]: "nope!, 8080" } }],
    80,
  );
  assert.equal(snapshot.endpoints.get("10.0.0.1:8080")!.protocolHint, "opaque");
  assert.equal(reports[0]![0], "bad_annotation");
  assert.match(reports[0]![1], /nope!/);
});

test("fail closed: a meshed pod whose identity cannot be named is left out, not sent plaintext", () => {
  const { snapshot, reports } = resolve(makeService({ name: "web" }), [{ name: "a", ip: "10.0.0.1", meshed: true, serviceAccount: "has.dot" }], 80);
  assert.equal(snapshot.endpoints.size, 0);
  assert.equal(reports[0]![0], "bad_identity");
});

test("an endpoint whose pod is not cached yet is left out until it is", () => {
  const service = makeService({ name: "web" });
  const slices = endpointSlicesFor(service, [makePod({ name: "a", ip: "10.0.0.1", meshed: true })]);
  const { l, reports } = lookups([]);
  assert.equal(serviceSnapshot({ service, slices, port: 80 }, l).endpoints.size, 0);
  assert.equal(reports[0]![0], "pod_not_found");
});

test("FQDN slices are reported and ignored", () => {
  const { l, reports } = lookups([]);
  const slice: EndpointSlice = {
    metadata: { name: "x", namespace: "shop" },
    addressType: "FQDN",
    endpoints: [{ addresses: ["example.com"] }],
  };
  assert.equal(serviceSnapshot({ service: makeService({ name: "web" }), slices: [slice], port: 80 }, l).endpoints.size, 0);
  assert.equal(reports[0]![0], "unsupported_address");
});

test("pod IP: the one pod, with identity and hint, unless it has finished", () => {
  const pod = makePod({ name: "a", ip: "10.0.0.7", meshed: true, ready: false });
  const { l } = lookups([pod]);
  const s = podSnapshot(pod, "10.0.0.7", 9000, l);
  assert.deepEqual(addrs(s), ["10.0.0.7:9000"]);
  assert.equal(s.endpoints.get("10.0.0.7:9000")!.identity, "web.shop.serviceaccount.identity.tether.cluster.local");
  const done = { ...pod, status: { ...pod.status, phase: "Succeeded" } };
  assert.equal(podSnapshot(done, "10.0.0.7", 9000, l).exists, false);
  assert.equal(podSnapshot(undefined, "10.0.0.7", 9000, l).exists, false);
});
