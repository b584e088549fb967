import { test } from "node:test";
import assert from "node:assert/strict";
import { readProxyConfig, ProxyConfigError } from "../../src/proxy/config.js";

const base = {
  TETHER_POD_NAME: "web-1",
  TETHER_POD_NAMESPACE: "shop",
  TETHER_SERVICE_ACCOUNT: "web",
  TETHER_TOKEN_FILE: "/var/run/secrets/tether.io/serviceaccount/token",
  TETHER_TRUST_ANCHORS_FILE: "/var/run/tether/anchors/ca-bundle.crt",
  TETHER_IDENTITY_ADDR: "tether-identity.tether.svc.cluster.local:8080",
  TETHER_DESTINATION_ADDR: "tether-destination.tether.svc.cluster.local:8086",
};

test("reads a complete environment with defaults", () => {
  const config = readProxyConfig({ ...base, TETHER_INBOUND_PORTS: "8080,9000", TETHER_OPAQUE_PORTS: "5432,9000-12000" });
  assert.deepEqual(config.identity, { serviceAccount: "web", namespace: "shop", trustDomain: "cluster.local" });
  assert.equal(config.identityServerName.serviceAccount, "tether-identity");
  assert.equal(config.controllerServerName.namespace, "tether");
  assert.deepEqual(config.inboundPorts, [8080, 9000]);
  for (const port of [5432, 9000, 12000]) assert.ok(config.opaquePorts.has(port));
  assert.ok(!config.opaquePorts.has(8080));
  assert.equal(config.inboundPort, 4143);
  assert.equal(config.outboundPort, 4140);
  assert.equal(config.adminPort, 4191);
  assert.equal(config.balancer, "peak-ewma");
  assert.equal(config.policyAddr, base.TETHER_DESTINATION_ADDR);
});

test("names every missing or malformed variable at once", () => {
  assert.throws(
    () => readProxyConfig({ TETHER_POD_NAME: "x", TETHER_BALANCER: "random", TETHER_ADMIN_LISTEN_PORT: "99999" }),
    (err: unknown) => {
      assert.ok(err instanceof ProxyConfigError);
      assert.equal(err.code, "PROXY_CONFIG_INVALID");
      for (const name of ["TETHER_POD_NAMESPACE", "TETHER_SERVICE_ACCOUNT", "TETHER_TOKEN_FILE", "TETHER_BALANCER", "TETHER_ADMIN_LISTEN_PORT"]) {
        assert.match(err.message, new RegExp(name));
      }
      return true;
    },
  );
});

test("an invalid service account name is refused", () => {
  assert.throws(() => readProxyConfig({ ...base, TETHER_SERVICE_ACCOUNT: "Bad.Name" }), /DNS-1123/);
});

test("port lists: the opaque ports take the shared grammar's numbers, the inbound ports single ports", () => {
  const refused = (env: Record<string, string>, pattern: RegExp) =>
    assert.throws(() => readProxyConfig({ ...base, ...env }), (err: unknown) => err instanceof ProxyConfigError && pattern.test(err.message));
  assert.deepEqual(readProxyConfig({ ...base, TETHER_INBOUND_PORTS: " 80 , 443 " }).inboundPorts, [80, 443]);
  assert.deepEqual(readProxyConfig(base).inboundPorts, []);
  refused({ TETHER_OPAQUE_PORTS: "0" }, /TETHER_OPAQUE_PORTS: "0" is not a port/);
  refused({ TETHER_OPAQUE_PORTS: "10-5" }, /TETHER_OPAQUE_PORTS: "10-5"/);
  refused({ TETHER_OPAQUE_PORTS: "http" }, /TETHER_OPAQUE_PORTS: "http"/);
  refused({ TETHER_INBOUND_PORTS: "9000-9002" }, /TETHER_INBOUND_PORTS: lists container ports, one by one/);
});
