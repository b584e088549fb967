/**
 * Parses `iptables-save` output into tables, chains and rules with their arguments split as the
 * shell would, so callers can find and delete rules (`-D` with the same arguments) without
 * string matching. Pure.
 */

export interface SavedRule {
  chain: string;
  /** Arguments after `-A CHAIN`, unquoted. */
  args: string[];
}

export interface SavedTable {
  chains: Set<string>;
  rules: SavedRule[];
}

/** Splits one line into words, honouring the double quotes iptables-save puts around comments. */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let current = "";
  let inWord = false;
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i] as string;
    if (quoted) {
      if (ch === "\\" && i + 1 < line.length) current += line[++i];
      else if (ch === '"') quoted = false;
      else current += ch;
    } else if (ch === '"') {
      quoted = true;
      inWord = true;
    } else if (ch === " " || ch === "\t") {
      if (inWord) words.push(current);
      current = "";
      inWord = false;
    } else {
      current += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(current);
  return words;
}

export function parseIptablesSave(text: string): Map<string, SavedTable> {
  const tables = new Map<string, SavedTable>();
  let table: SavedTable | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line === "COMMIT") continue;
    if (line.startsWith("*")) {
      table = { chains: new Set(), rules: [] };
      tables.set(line.slice(1), table);
    } else if (line.startsWith(":") && table) {
      table.chains.add(line.slice(1).split(" ")[0] as string);
    } else if (line.startsWith("-A ") && table) {
      const [, chain, ...args] = splitWords(line);
      if (chain) table.rules.push({ chain, args });
    }
  }
  return tables;
}

/** The value following `flag` in a rule's arguments (e.g. `-j`, `--comment`). */
export function ruleOption(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}
