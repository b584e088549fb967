import { test } from "node:test";
import assert from "node:assert/strict";
import { planServiceSync, type ServiceRule } from "../../src/local/kube-proxy.js";

const ranges = { serviceSubnet: "10.248.0.0/16", podSubnet: "10.247.0.0/16" };

const web: ServiceRule = {
  name: "default/web:http",
  vip: "10.248.0.10",
  port: 80,
  endpoints: [
    { ip: "10.247.0.4", port: 8080 },
    { ip: "10.247.0.2", port: 8080 },
    { ip: "10.247.0.3", port: 8080 },
  ],
};

const lines = (text: string, table: string) => {
  const start = text.indexOf(`*${table}\n`);
  return text.slice(start, text.indexOf("COMMIT", start)).split("\n").filter((l) => l.startsWith("-"));
};

test("spreads connections evenly: probability 1/(n-i) per endpoint, last unconditional", () => {
  const plan = planServiceSync("", [web], ranges);
  const dnat = lines(plan.restore, "nat").filter((l) => l.includes("DNAT"));
  assert.equal(plan.dnatRules, 3);
  assert.equal(dnat.length, 3);
  assert.match(dnat[0] ?? "", /-d 10\.248\.0\.10\/32 -p tcp -m tcp --dport 80 .*--probability 0\.3333333333 -j DNAT --to-destination 10\.247\.0\.2:8080$/);
  assert.match(dnat[1] ?? "", /--probability 0\.5000000000 -j DNAT --to-destination 10\.247\.0\.3:8080$/);
  assert.doesNotMatch(dnat[2] ?? "", /statistic/);
  assert.match(dnat[2] ?? "", /--to-destination 10\.247\.0\.4:8080$/);
  // Each endpoint's overall share is 1/3: p0 = 1/3, (1-1/3)*1/2 = 1/3, the rest 1/3.
  assert.match(plan.restore, /^\*nat\n:TETHER_LOCAL_SERVICES - \[0:0\]\n/);
});

test("the same services give the same rules whatever the input order", () => {
  const shuffled = { ...web, endpoints: [...web.endpoints].reverse() };
  const other: ServiceRule = { name: "default/api:grpc", vip: "10.248.0.2", port: 9090, endpoints: [{ ip: "10.247.0.9", port: 9090 }] };
  assert.equal(planServiceSync("", [web, other], ranges).restore, planServiceSync("", [other, shuffled], ranges).restore);
});

test("a service without endpoints is rejected in filter, not DNATed", () => {
  const plan = planServiceSync("", [{ ...web, endpoints: [] }], ranges);
  assert.equal(plan.dnatRules, 0);
  assert.deepEqual(lines(plan.restore, "filter").filter((l) => l.includes("REJECT")).length, 1);
  assert.match(plan.restore, /-A TETHER_LOCAL_SERVICES -d 10\.248\.0\.10\/32 .* -j REJECT --reject-with icmp-port-unreachable/);
});

test("refuses services that would send traffic outside the mesh's ranges, keeps the rest", () => {
  const bad: ServiceRule[] = [
    { name: "vip-outside", vip: "192.168.1.1", port: 80, endpoints: [] },
    { name: "endpoint-outside", vip: "10.248.0.3", port: 80, endpoints: [{ ip: "8.8.8.8", port: 53 }] },
    { name: "bad-port", vip: "10.248.0.4", port: 0, endpoints: [] },
    { name: "bad-endpoint-port", vip: "10.248.0.5", port: 80, endpoints: [{ ip: "10.247.0.2", port: 70000 }] },
    { name: "not-an-ip", vip: "web", port: 80, endpoints: [] },
  ];
  const plan = planServiceSync("", [...bad, web], ranges);
  assert.deepEqual(plan.rejected.map((r) => r.name).sort(), bad.map((b) => b.name).sort());
  assert.equal(plan.dnatRules, 3);
  assert.doesNotMatch(plan.restore, /8\.8\.8\.8|192\.168/);
});

test("comments cannot break out of their quotes", () => {
  const plan = planServiceSync("", [{ ...web, name: 'x" -j ACCEPT "y' }], ranges);
  assert.match(plan.restore, /--comment "x__-j_ACCEPT__y"/);
});

const save = (natOutput: string[], filterOutput: string[] = []) =>
  [
    "*nat",
    ":OUTPUT ACCEPT [0:0]",
    ...natOutput.map((l) => `-A OUTPUT ${l}`),
    "COMMIT",
    "*filter",
    ":OUTPUT ACCEPT [0:0]",
    ...filterOutput.map((l) => `-A OUTPUT ${l}`),
    "COMMIT",
  ].join("\n");

const jumps = (restore: string, table: string) => lines(restore, table).filter((l) => / OUTPUT /.test(l));

test("adds the jumps once, and leaves them alone when already in place", () => {
  assert.deepEqual(jumps(planServiceSync("", [web], ranges).restore, "nat"), ["-A OUTPUT -j TETHER_LOCAL_SERVICES"]);
  assert.deepEqual(jumps(planServiceSync("", [web], ranges).restore, "filter"), ["-A OUTPUT -j TETHER_LOCAL_SERVICES"]);
  const installed = save(["-p tcp -j TETHER_OUTPUT", "-j TETHER_LOCAL_SERVICES"], ["-j TETHER_LOCAL_SERVICES"]);
  const plan = planServiceSync(installed, [web], ranges);
  assert.deepEqual(jumps(plan.restore, "nat"), []);
  assert.deepEqual(jumps(plan.restore, "filter"), []);
});

test("moves the kube-proxy jump after the proxy's TETHER_OUTPUT jump", () => {
  // proxy-init appended its jump after ours: ours must move to the end.
  const plan = planServiceSync(save(["-j TETHER_LOCAL_SERVICES", "-p tcp -j TETHER_OUTPUT"]), [web], ranges);
  assert.deepEqual(jumps(plan.restore, "nat"), ["-D OUTPUT -j TETHER_LOCAL_SERVICES", "-A OUTPUT -j TETHER_LOCAL_SERVICES"]);
  // Duplicates collapse into one jump at the end.
  const dup = planServiceSync(save(["-j TETHER_LOCAL_SERVICES", "-j TETHER_LOCAL_SERVICES"]), [web], ranges);
  assert.deepEqual(jumps(dup.restore, "nat"), [
    "-D OUTPUT -j TETHER_LOCAL_SERVICES",
    "-D OUTPUT -j TETHER_LOCAL_SERVICES",
    "-A OUTPUT -j TETHER_LOCAL_SERVICES",
  ]);
});
