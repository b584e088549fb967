/**
 * A small parser of the Prometheus text exposition format (version 0.0.4), enough for what
 * prom-client writes: # TYPE lines, samples with escaped label values, optional timestamps.
 * Malformed lines are counted and skipped, never thrown: one bad proxy must not blank a table.
 */

export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  name: string;
  labels: Labels;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  /** Metric family name -> counter, gauge, histogram, summary or untyped. */
  types: Map<string, string>;
  /** Lines that could not be parsed (the first few, for error messages). */
  badLines: string[];
  badLineCount: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

function parseValue(text: string): number | undefined {
  switch (text) {
    case "+Inf":
      return Infinity;
    case "-Inf":
      return -Infinity;
    case "NaN":
      return NaN;
  }
  const n = Number(text);
  return text !== "" && !Number.isNaN(n) ? n : undefined;
}

/** Parses `{a="x",b="y"}` starting at line[start] === "{"; returns the labels and the index after "}". */
function parseLabels(line: string, start: number): { labels: Record<string, string>; end: number } | undefined {
  const labels: Record<string, string> = {};
  let i = start + 1;
  for (;;) {
    while (line[i] === " " || line[i] === ",") i++;
    if (line[i] === "}") return { labels, end: i + 1 };
    const name = LABEL_NAME.exec(line.slice(i))?.[0];
    if (!name) return undefined;
    i += name.length;
    while (line[i] === " ") i++;
    if (line[i] !== "=") return undefined;
    i++;
    while (line[i] === " ") i++;
    if (line[i] !== '"') return undefined;
    i++;
    let value = "";
    for (;;) {
      const c = line[i];
      if (c === undefined) return undefined;
      if (c === '"') break;
      if (c === "\\") {
        const next = line[i + 1];
        value += next === "n" ? "\n" : (next ?? "");
        i += 2;
        continue;
      }
      value += c;
      i++;
    }
    labels[name] = value;
    i++;
  }
}

export function parsePrometheusText(text: string): Exposition {
  const out: Exposition = { samples: [], types: new Map(), badLines: [], badLineCount: 0 };
  const bad = (line: string) => {
    out.badLineCount++;
    if (out.badLines.length < 5) out.badLines.push(line.slice(0, 200));
  };
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "") continue;
    if (line.startsWith("#")) {
      const m = /^#\s*TYPE\s+(\S+)\s+(\S+)/.exec(line);
      if (m?.[1] && m[2]) out.types.set(m[1], m[2]);
      continue;
    }
    const name = NAME.exec(line)?.[0];
    if (!name) {
      bad(line);
      continue;
    }
    let i = name.length;
    let labels: Record<string, string> = {};
    if (line[i] === "{") {
      const parsed = parseLabels(line, i);
      if (!parsed) {
        bad(line);
        continue;
      }
      labels = parsed.labels;
      i = parsed.end;
    }
    const rest = line.slice(i).trim().split(/\s+/);
    const value = parseValue(rest[0] ?? "");
    if (value === undefined || rest.length > 2) {
      bad(line);
      continue;
    }
    out.samples.push({ name, labels, value });
  }
  return out;
}
