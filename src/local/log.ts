/**
 * The local mesh's logs. Every process it starts writes its own files under `<state>/logs/`
 * (src/local/processes.ts); the runner's own log goes to `<state>/logs/runner.log`, so a person
 * running `tether local demo|up` sees progress and results, not JSON. `--verbose` follows every
 * log file and prints its lines pretty, as they are written.
 */
import { closeSync, mkdirSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { pino, type Logger } from "pino";

export type { Logger };

/** pino JSON on stderr with `component` bound; TETHER_LOG_LEVEL sets the level. */
export function localLogger(component = "local"): Logger {
  return pino({ level: process.env.TETHER_LOG_LEVEL ?? "info" }, pino.destination(2)).child({ component });
}

export const silentLogger: Logger = pino({ level: "silent" });

export function logsDir(stateDir: string): string {
  return join(stateDir, "logs");
}

/** The runner's logger, writing JSON lines to `<state>/logs/runner.log`. */
export function runnerLogger(stateDir: string): Logger {
  mkdirSync(logsDir(stateDir), { recursive: true });
  const destination = pino.destination({ dest: join(logsDir(stateDir), "runner.log"), sync: true });
  return pino({ level: process.env.TETHER_LOG_LEVEL ?? "info" }, destination).child({ component: "local" });
}

const LEVELS: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };
const SKIPPED = new Set(["level", "time", "pid", "hostname", "msg", "component", "v"]);

/** One log line as a person reads it: `12:00:01 INFO  [source] message key=value ...`. */
export function prettyLine(source: string, line: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return `[${source}] ${line}`;
  }
  if (typeof record !== "object" || record === null) return `[${source}] ${line}`;
  const time = typeof record.time === "number" ? new Date(record.time).toISOString().slice(11, 19) : "--:--:--";
  const level = (LEVELS[record.level as number] ?? String(record.level ?? "")).padEnd(5);
  const who = typeof record.component === "string" ? `${source} ${record.component}` : source;
  const fields = Object.entries(record)
    .filter(([k]) => !SKIPPED.has(k))
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
  return [time, level, `[${who}]`, String(record.msg ?? ""), ...fields].join(" ").trimEnd();
}

/**
 * Follows every file under `<state>/logs/` (new files too) and hands each new line, pretty, to
 * `write`. Polls: the files are written by other processes. Returns the stop function.
 */
export function followLogs(stateDir: string, write: (line: string) => void, intervalMs = 250): () => void {
  const dir = logsDir(stateDir);
  const offsets = new Map<string, { offset: number; partial: string }>();
  const files = (d: string): string[] => {
    try {
      return readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(d, e.name)) : e.name.endsWith(".log") ? [join(d, e.name)] : []));
    } catch {
      return [];
    }
  };
  const poll = () => {
    for (const file of files(dir)) {
      const seen = offsets.get(file) ?? { offset: 0, partial: "" };
      offsets.set(file, seen);
      const size = statSync(file, { throwIfNoEntry: false })?.size ?? 0;
      if (size <= seen.offset) continue;
      const buffer = Buffer.alloc(size - seen.offset);
      const fd = openSync(file, "r");
      try {
        readSync(fd, buffer, 0, buffer.length, seen.offset);
      } finally {
        closeSync(fd);
      }
      seen.offset = size;
      const lines = (seen.partial + buffer.toString("utf8")).split("\n");
      seen.partial = lines.pop()!;
      const source = relative(dir, file).replace(/\.(out|err)?\.?log$/, "");
      for (const line of lines) if (line.trim()) write(prettyLine(source, line));
    }
  };
  const timer = setInterval(poll, intervalMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    poll();
  };
}
