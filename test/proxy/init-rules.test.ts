import { test } from "node:test";
import assert from "node:assert/strict";
import {
  chainRules,
  DEFAULT_INIT_CONFIG,
  installPlan,
  parsePorts,
  removePlan,
  renderPlan,
  type InitConfig,
} from "../../src/proxy/init/rules.js";
import { TetherError } from "../../src/core/errors.js";

const cfg = (over: Partial<InitConfig> = {}): InitConfig => ({ ...DEFAULT_INIT_CONFIG, ...over });

test("defaults come from the mesh constants", () => {
  assert.deepEqual(
    [cfg().inboundPort, cfg().outboundPort, cfg().adminPort, cfg().proxyUid],
    [4143, 4140, 4191, 2102],
  );
});

const tables: [string, Partial<InitConfig>, string[]][] = [
  [
    "defaults",
    {},
    [
      "*nat",
      ":TETHER_INBOUND - [0:0]",
      ":TETHER_OUTPUT - [0:0]",
      "-A TETHER_INBOUND -p tcp --dport 4191 -j RETURN",
      "-A TETHER_INBOUND -p tcp -j REDIRECT --to-ports 4143",
      "-A TETHER_OUTPUT -m owner --uid-owner 2102 -j RETURN",
      "-A TETHER_OUTPUT -o lo -j RETURN",
      "-A TETHER_OUTPUT -d 127.0.0.0/8 -j RETURN",
      "-A TETHER_OUTPUT -p tcp -j REDIRECT --to-ports 4140",
      "COMMIT",
      "",
    ],
  ],
  [
    "custom ports, uid, skipped ports and IPv6 loopback",
    {
      inboundPort: 5143,
      outboundPort: 5140,
      adminPort: 5191,
      proxyUid: 1337,
      skipInboundPorts: parsePorts("22, 8000-8100"),
      skipOutboundPorts: parsePorts("5432"),
      family: 6,
    },
    [
      "*nat",
      ":TETHER_INBOUND - [0:0]",
      ":TETHER_OUTPUT - [0:0]",
      "-A TETHER_INBOUND -p tcp --dport 5191 -j RETURN",
      "-A TETHER_INBOUND -p tcp -m multiport --dports 22,8000:8100 -j RETURN",
      "-A TETHER_INBOUND -p tcp -j REDIRECT --to-ports 5143",
      "-A TETHER_OUTPUT -m owner --uid-owner 1337 -j RETURN",
      "-A TETHER_OUTPUT -o lo -j RETURN",
      "-A TETHER_OUTPUT -d ::1/128 -j RETURN",
      "-A TETHER_OUTPUT -p tcp -m multiport --dports 5432 -j RETURN",
      "-A TETHER_OUTPUT -p tcp -j REDIRECT --to-ports 5140",
      "COMMIT",
      "",
    ],
  ],
];

for (const [name, over, lines] of tables) {
  test(`chain rules: ${name}`, () => assert.deepEqual(chainRules(cfg(over)).split("\n"), lines));
}

test("more than 15 multiport slots are split over several rules", () => {
  const ports = parsePorts([...Array(14).keys()].map((i) => 1000 + i).join(",") + ",2000-2010,3000");
  const rules = chainRules(cfg({ skipOutboundPorts: ports })).split("\n").filter((l) => l.includes("multiport"));
  assert.equal(rules.length, 2);
  assert.match(rules[0]!, /--dports 1000,1001,.*,1013 -j RETURN$/);
  assert.match(rules[1]!, /--dports 2000:2010,3000 -j RETURN$/);
});

test("install: one restore transaction for the chains, jumps only added when absent", () => {
  const plan = installPlan(cfg({ iptables: "iptables-legacy" }));
  assert.equal(plan.length, 3);
  assert.deepEqual(plan[0], {
    op: "restore",
    argv: ["iptables-legacy-restore", "-w", "--noflush"],
    input: chainRules(cfg()),
  });
  assert.deepEqual(plan[1], {
    op: "ensure",
    check: ["iptables-legacy", "-w", "-t", "nat", "-C", "PREROUTING", "-p", "tcp", "-j", "TETHER_INBOUND"],
    apply: ["iptables-legacy", "-w", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "-j", "TETHER_INBOUND"],
  });
  assert.equal(plan[2]!.op === "ensure" && plan[2]!.apply[5], "OUTPUT");
});

test("remove: jumps deleted while present, then chains flushed and deleted (tolerating absence)", () => {
  const text = renderPlan(removePlan(cfg()));
  assert.deepEqual(text.split("\n"), [
    "while iptables -w -t nat -C PREROUTING -p tcp -j TETHER_INBOUND 2>/dev/null; do iptables -w -t nat -D PREROUTING -p tcp -j TETHER_INBOUND; done",
    "while iptables -w -t nat -C OUTPUT -p tcp -j TETHER_OUTPUT 2>/dev/null; do iptables -w -t nat -D OUTPUT -p tcp -j TETHER_OUTPUT; done",
    "iptables -w -t nat -F TETHER_INBOUND 2>/dev/null || true",
    "iptables -w -t nat -X TETHER_INBOUND 2>/dev/null || true",
    "iptables -w -t nat -F TETHER_OUTPUT 2>/dev/null || true",
    "iptables -w -t nat -X TETHER_OUTPUT 2>/dev/null || true",
  ]);
});

const refused: [string, () => unknown, string][] = [
  ["port 0", () => parsePorts("0"), "INIT_BAD_PORTS"],
  ["port above 65535", () => parsePorts("70000"), "INIT_BAD_PORTS"],
  ["reversed range", () => parsePorts("90-80"), "INIT_BAD_PORTS"],
  ["not a number", () => parsePorts("http"), "INIT_BAD_PORTS"],
  ["bad inbound port", () => installPlan(cfg({ inboundPort: 0 })), "INIT_BAD_PORTS"],
  ["negative uid", () => installPlan(cfg({ proxyUid: -1 })), "INIT_BAD_UID"],
  ["binary that is not iptables", () => installPlan(cfg({ iptables: "rm -rf" })), "INIT_BAD_IPTABLES"],
];
for (const [name, fn, code] of refused) {
  test(`refused: ${name} (${code})`, () =>
    assert.throws(fn, (e: unknown) => e instanceof TetherError && e.code === code));
}

test("empty port lists and spaces are accepted", () => {
  assert.deepEqual(parsePorts(""), []);
  assert.deepEqual(parsePorts(" 80 ,443"), [
    { low: 80, high: 80 },
    { low: 443, high: 443 },
  ]);
});
