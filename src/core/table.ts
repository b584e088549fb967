/** Fixed-width text columns, the way kubectl prints: each column as wide as its widest cell. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[], gap = 2): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join(" ".repeat(gap))
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}
