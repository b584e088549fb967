/**
 * iptables text: `iptables-save` output (src/local/iptables-save.ts) and the init rules' port
 * parser (src/proxy/init/rules.ts, the config.tether.io/skip-*-ports format). Oracle: parsing
 * never throws; words quoted the way iptables-save quotes them split back to the same words; the
 * init container's own chains, rendered for random skip ports, parse back rule for rule; a port
 * list parses to ranges within 1-65535 (or InitConfigError) that render and parse back the same.
 */
import fc from "fast-check";
import { parseIptablesSave, ruleOption, splitWords } from "../../../src/local/iptables-save.js";
import type { PortRange } from "../../../src/api/ports.js";
import { chainRules, DEFAULT_INIT_CONFIG, InitConfigError, parsePorts } from "../../../src/proxy/init/rules.js";
import { expect, target, type Verdict } from "./target.js";

type Input =
  | { kind: "save"; text: string }
  | { kind: "words"; words: string[] }
  | { kind: "chains"; inbound: PortRange[]; outbound: PortRange[] }
  | { kind: "ports"; text: string };

const token = fc.oneof(fc.constantFrom("-A", "-j", "--comment", "*nat", ":KUBE-SVC - [0:0]", "COMMIT", "#", '"', "\\", "-m", "tcp"), fc.string({ maxLength: 12 }));
const range = fc.tuple(fc.integer({ min: 1, max: 65535 }), fc.nat(2000)).map(([from, len]) => ({ low: from, high: Math.min(65535, from + (len % 3 === 0 ? 0 : len)) }));

const arbitrary: fc.Arbitrary<Input> = fc.oneof(
  { weight: 2, arbitrary: fc.array(fc.array(token, { maxLength: 8 }).map((t) => t.join(" ")), { maxLength: 12 }).map((lines) => ({ kind: "save" as const, text: lines.join("\n") })) },
  { weight: 2, arbitrary: fc.array(fc.string({ minLength: 1, maxLength: 10 }), { minLength: 1, maxLength: 6 }).map((words) => ({ kind: "words" as const, words })) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("chains" as const), inbound: fc.array(range, { maxLength: 20 }), outbound: fc.array(range, { maxLength: 20 }) }) },
  { weight: 2, arbitrary: fc.oneof(fc.string({ maxLength: 30 }), fc.array(fc.oneof(fc.nat(70000).map(String), fc.tuple(fc.nat(70000), fc.nat(70000)).map(([a, b]) => `${a}-${b}`), fc.constantFrom("", " ", "x", "-", "1-", "08")), { maxLength: 6 }).map((p) => p.join(","))).map((text) => ({ kind: "ports" as const, text })) },
);

/** How iptables-save writes a word: quoted when it holds a space or a quote, with \\ and \" escaped. */
function quote(word: string): string {
  return /[\s"\\]/.test(word) || word === "" ? `"${word.replace(/[\\"]/g, (c) => `\\${c}`)}"` : word;
}

function check(input: Input): Verdict {
  switch (input.kind) {
    case "save": {
      const tables = parseIptablesSave(input.text);
      for (const table of tables.values()) for (const rule of table.rules) ruleOption(rule.args, "-j");
      return tables.size > 0 ? "accepted" : "refused";
    }
    case "words": {
      // Words without tabs/newlines: iptables-save never prints those inside a word.
      const words = input.words.map((w) => w.replace(/[\t\n\r]/g, "_"));
      const back = splitWords(words.map(quote).join(" "));
      expect(JSON.stringify(back) === JSON.stringify(words), `split ${JSON.stringify(back)} from ${JSON.stringify(words)}`);
      return "accepted";
    }
    case "chains": {
      const text = chainRules({ ...DEFAULT_INIT_CONFIG, skipInboundPorts: input.inbound, skipOutboundPorts: input.outbound });
      const nat = parseIptablesSave(text).get("nat");
      expect(nat !== undefined, "no nat table");
      const lines = text.split("\n").filter((l) => l.startsWith("-A "));
      expect(nat.rules.length === lines.length, `${nat.rules.length} rules parsed from ${lines.length}`);
      nat.rules.forEach((r, i) => expect(`-A ${r.chain} ${r.args.join(" ")}` === lines[i], `rule ${i} differs: ${lines[i]}`));
      return "accepted";
    }
    case "ports": {
      let ranges: PortRange[];
      try {
        ranges = parsePorts(input.text);
      } catch (err) {
        if (err instanceof InitConfigError) return "refused";
        throw err;
      }
      for (const r of ranges) expect(Number.isInteger(r.low) && r.low >= 1 && r.low <= r.high && r.high <= 65535, `range ${r.low}-${r.high} accepted`);
      const again = parsePorts(ranges.map((r) => (r.low === r.high ? `${r.low}` : `${r.low}-${r.high}`)).join(","));
      expect(JSON.stringify(again) === JSON.stringify(ranges), "ports do not render and parse back the same");
      return "accepted";
    }
  }
}

export const iptablesTarget = target<Input>({
  name: "iptables",
  what: "iptables-save parser, quoting, the init chains parsed back, the skip-ports parser",
  testRuns: 2000,
  open: () => ({ arbitrary, check }),
});
