/**
 * Process identity and termination through /proc. A pid alone can be reused after a crash, so the
 * substrate records (pid, start time) and only ever signals a process whose start time matches.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";

export interface ProcessId {
  pid: number;
  /** Field 22 of /proc/PID/stat (clock ticks since boot), as text. */
  startTime: string;
}

interface StatFields {
  state: string;
  pgid: number;
  startTime: string;
}

/** Parses /proc/PID/stat; the command name may hold spaces and parentheses, so split after the last ')'. */
export function parseStat(text: string): StatFields | undefined {
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  const fields = text.slice(close + 2).split(" ");
  // fields[0] is field 3 (state); field N is fields[N - 3].
  const state = fields[0];
  const pgid = Number(fields[2]);
  const startTime = fields[19];
  if (state === undefined || startTime === undefined || !Number.isInteger(pgid)) return undefined;
  return { state, pgid, startTime };
}

function readStat(pid: number): StatFields | undefined {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return undefined;
  }
}

/** The process's identity, or undefined if it is gone or a zombie (exited, waiting for its parent). */
export function processIdentity(pid: number): ProcessId | undefined {
  const stat = readStat(pid);
  if (!stat || stat.state === "Z" || stat.state === "X") return undefined;
  return { pid, startTime: stat.startTime };
}

export function isRunning(id: ProcessId): boolean {
  return processIdentity(id.pid)?.startTime === id.startTime;
}

function allPids(): number[] {
  return readdirSync("/proc")
    .filter((name) => /^[0-9]+$/.test(name))
    .map(Number);
}

/** Live processes whose network namespace is the one bound at `nsPath` (what `ip netns pids` does). */
export function pidsInNetns(nsPath: string): ProcessId[] {
  let target;
  try {
    target = statSync(nsPath);
  } catch {
    return [];
  }
  const found: ProcessId[] = [];
  for (const pid of allPids()) {
    try {
      const ns = statSync(`/proc/${pid}/ns/net`);
      if (ns.ino !== target.ino || ns.dev !== target.dev) continue;
    } catch {
      continue;
    }
    const id = processIdentity(pid);
    if (id) found.push(id);
  }
  return found;
}

/** Live processes whose environment holds `key=value`. */
export function pidsWithEnv(key: string, value: string): ProcessId[] {
  const needle = `${key}=${value}`;
  const found: ProcessId[] = [];
  for (const pid of allPids()) {
    let environ: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, "utf8");
    } catch {
      continue;
    }
    if (!environ.split("\0").includes(needle)) continue;
    const id = processIdentity(pid);
    if (id) found.push(id);
  }
  return found;
}

function signal(id: ProcessId, sig: NodeJS.Signals, groups: boolean): void {
  const stat = readStat(id.pid);
  if (!stat || stat.startTime !== id.startTime) return;
  // A process the substrate started leads its own group (spawned detached): signal the group so
  // its children go too. Never signal our own group.
  const group = groups && stat.pgid === id.pid && stat.pgid !== readStat(process.pid)?.pgid;
  try {
    process.kill(group ? -id.pid : id.pid, sig);
  } catch {
    // already gone
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * SIGTERM, then SIGKILL to whatever still runs after `graceMs`. Returns the processes still alive
 * after that (normally none). Never signals this process itself. With `groups` (the default), a
 * process leading its own process group is signalled with its whole group.
 */
export async function terminate(ids: readonly ProcessId[], graceMs: number, groups = true): Promise<ProcessId[]> {
  const targets = ids.filter((id) => id.pid !== process.pid && isRunning(id));
  for (const id of targets) signal(id, "SIGTERM", groups);
  const waitFor = async (ms: number) => {
    const until = Date.now() + ms;
    let alive = targets.filter(isRunning);
    while (alive.length > 0 && Date.now() < until) {
      await sleep(25);
      alive = alive.filter(isRunning);
    }
    return alive;
  };
  const stubborn = await waitFor(graceMs);
  for (const id of stubborn) signal(id, "SIGKILL", groups);
  return waitFor(2_000);
}
