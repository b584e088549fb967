/**
 * The interception rules of the init container, as data. `installPlan` and `removePlan` build the
 * steps; `renderPlan` prints them as shell (for --dry-run); run.ts executes them. Idempotent by
 * construction: the own chains are declared in one iptables-restore transaction (which creates or
 * flushes and refills them atomically), and the jumps into them are added only when absent.
 */
import { TetherError, type CodeOf } from "../../core/errors.js";
import { PROXY_ADMIN_PORT, PROXY_INBOUND_PORT, PROXY_OUTBOUND_PORT, PROXY_UID } from "../../api/mesh.js";
import { numericListProblem, parsePortList, type PortRange } from "../../api/ports.js";

export const INBOUND_CHAIN = "TETHER_INBOUND";
export const OUTBOUND_CHAIN = "TETHER_OUTPUT";

export interface InitConfig {
  inboundPort: number;
  outboundPort: number;
  adminPort: number;
  proxyUid: number;
  skipInboundPorts: PortRange[];
  skipOutboundPorts: PortRange[];
  /** iptables binary: iptables, iptables-legacy, iptables-nft, or the ip6tables variants. */
  iptables: string;
  family: 4 | 6;
}

export const DEFAULT_INIT_CONFIG: InitConfig = {
  inboundPort: PROXY_INBOUND_PORT,
  outboundPort: PROXY_OUTBOUND_PORT,
  adminPort: PROXY_ADMIN_PORT,
  proxyUid: PROXY_UID,
  skipInboundPorts: [],
  skipOutboundPorts: [],
  iptables: "iptables",
  family: 4,
};

export type Step =
  /** Feed `input` to `argv` (iptables-restore). */
  | { op: "restore"; argv: string[]; input: string }
  /** Run `apply` unless `check` succeeds. */
  | { op: "ensure"; check: string[]; apply: string[] }
  /** Run `apply` while `check` succeeds (removes duplicates too). */
  | { op: "remove"; check: string[]; apply: string[] }
  /** Run `argv`; a failure is ignored when `ignoreFailure` (e.g. the chain is already gone). */
  | { op: "run"; argv: string[]; ignoreFailure: boolean };

export class InitConfigError extends TetherError<CodeOf<"InitConfigError">> {}

/** Parses "22,8000-8100" (the config.tether.io/skip-*-ports annotation grammar, numbers only). */
export function parsePorts(text: string): PortRange[] {
  const list = parsePortList(text);
  const problem = numericListProblem(list);
  if (problem) throw new InitConfigError("INIT_BAD_PORTS", `bad ports "${text}": ${problem}; use comma-separated ports 1-65535 or ranges like 8000-8100`);
  return list.ranges;
}

function checkPort(name: string, port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InitConfigError("INIT_BAD_PORTS", `${name} ${port} is not a TCP port (1-65535)`);
  }
}

function validate(config: InitConfig): void {
  checkPort("inbound port", config.inboundPort);
  checkPort("outbound port", config.outboundPort);
  checkPort("admin port", config.adminPort);
  if (!Number.isInteger(config.proxyUid) || config.proxyUid < 0) {
    throw new InitConfigError("INIT_BAD_UID", `proxy uid ${config.proxyUid} is not a uid (integer >= 0)`);
  }
  if (!/^ip6?tables(-legacy|-nft)?$/.test(config.iptables)) {
    throw new InitConfigError(
      "INIT_BAD_IPTABLES",
      `iptables binary "${config.iptables}" is not one of iptables, iptables-legacy, iptables-nft (or ip6tables…)`,
    );
  }
}

/** multiport takes at most 15 ports per rule, a range counting as two. */
function portGroups(ranges: PortRange[]): string[] {
  const groups: string[] = [];
  let current: string[] = [];
  let slots = 0;
  for (const r of ranges) {
    const cost = r.low === r.high ? 1 : 2;
    if (slots + cost > 15) {
      groups.push(current.join(","));
      current = [];
      slots = 0;
    }
    current.push(r.low === r.high ? `${r.low}` : `${r.low}:${r.high}`);
    slots += cost;
  }
  if (current.length > 0) groups.push(current.join(","));
  return groups;
}

function skipRules(chain: string, ranges: PortRange[]): string[] {
  return portGroups(ranges).map((ports) => `-A ${chain} -p tcp -m multiport --dports ${ports} -j RETURN`);
}

/** The iptables-restore input that (re)defines both chains. */
export function chainRules(config: InitConfig): string {
  const loopback = config.family === 6 ? "::1/128" : "127.0.0.0/8";
  return [
    "*nat",
    `:${INBOUND_CHAIN} - [0:0]`,
    `:${OUTBOUND_CHAIN} - [0:0]`,
    // Inbound: the admin port and skipped ports reach the pod directly; all other TCP -> proxy.
    `-A ${INBOUND_CHAIN} -p tcp --dport ${config.adminPort} -j RETURN`,
    ...skipRules(INBOUND_CHAIN, config.skipInboundPorts),
    `-A ${INBOUND_CHAIN} -p tcp -j REDIRECT --to-ports ${config.inboundPort}`,
    // Outbound: the proxy's own connections must not loop back into it.
    `-A ${OUTBOUND_CHAIN} -m owner --uid-owner ${config.proxyUid} -j RETURN`,
    `-A ${OUTBOUND_CHAIN} -o lo -j RETURN`,
    `-A ${OUTBOUND_CHAIN} -d ${loopback} -j RETURN`,
    ...skipRules(OUTBOUND_CHAIN, config.skipOutboundPorts),
    `-A ${OUTBOUND_CHAIN} -p tcp -j REDIRECT --to-ports ${config.outboundPort}`,
    "COMMIT",
    "",
  ].join("\n");
}

/** Built-in chain -> own chain. */
const JUMPS: readonly (readonly [string, string])[] = [
  ["PREROUTING", INBOUND_CHAIN],
  ["OUTPUT", OUTBOUND_CHAIN],
];

function jumpRule(bin: string, action: "-C" | "-A" | "-D", from: string, to: string): string[] {
  return [bin, "-w", "-t", "nat", action, from, "-p", "tcp", "-j", to];
}

export function installPlan(config: InitConfig): Step[] {
  validate(config);
  const bin = config.iptables;
  return [
    { op: "restore", argv: [`${bin}-restore`, "-w", "--noflush"], input: chainRules(config) },
    ...JUMPS.map(([from, to]): Step => ({
      op: "ensure",
      check: jumpRule(bin, "-C", from, to),
      apply: jumpRule(bin, "-A", from, to),
    })),
  ];
}

export function removePlan(config: InitConfig): Step[] {
  validate(config);
  const bin = config.iptables;
  return [
    ...JUMPS.map(([from, to]): Step => ({
      op: "remove",
      check: jumpRule(bin, "-C", from, to),
      apply: jumpRule(bin, "-D", from, to),
    })),
    ...[INBOUND_CHAIN, OUTBOUND_CHAIN].flatMap((chain): Step[] => [
      { op: "run", argv: [bin, "-w", "-t", "nat", "-F", chain], ignoreFailure: true },
      { op: "run", argv: [bin, "-w", "-t", "nat", "-X", chain], ignoreFailure: true },
    ]),
  ];
}

/** Shell text equivalent to the plan (what --dry-run prints; also runnable by hand). */
export function renderPlan(steps: Step[]): string {
  const sh = (argv: string[]) => argv.join(" ");
  return steps
    .map((s) => {
      switch (s.op) {
        case "restore":
          return `${sh(s.argv)} <<'EOF'\n${s.input}EOF`;
        case "ensure":
          return `${sh(s.check)} 2>/dev/null || ${sh(s.apply)}`;
        case "remove":
          return `while ${sh(s.check)} 2>/dev/null; do ${sh(s.apply)}; done`;
        case "run":
          return s.ignoreFailure ? `${sh(s.argv)} 2>/dev/null || true` : sh(s.argv);
      }
    })
    .join("\n");
}
