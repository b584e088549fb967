/**
 * Port-list annotations ("25,587,9000-9010"): validated here so a typo is refused at admission
 * instead of surfacing later as a proxy that will not start.
 */
export interface PortRange {
  low: number;
  high: number;
}

/** Parses a comma-separated list of ports and ranges; throws an Error naming the bad entry. */
export function parsePortRanges(text: string): PortRange[] {
  const ranges: PortRange[] = [];
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(part);
    const low = m ? Number(m[1]) : NaN;
    const high = m?.[2] !== undefined ? Number(m[2]) : low;
    if (!m || low < 1 || high > 65535 || high < low) {
      throw new Error(`${JSON.stringify(part)} is not a port (1-65535) or a range LOW-HIGH`);
    }
    ranges.push({ low, high });
  }
  return ranges;
}

export function formatPortRanges(ranges: readonly PortRange[]): string {
  return ranges.map((r) => (r.low === r.high ? String(r.low) : `${r.low}-${r.high}`)).join(",");
}

export function inRanges(port: number, ranges: readonly PortRange[]): boolean {
  return ranges.some((r) => port >= r.low && port <= r.high);
}
