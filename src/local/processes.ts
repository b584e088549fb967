/**
 * Long-running processes of the local mesh (apps, proxies, control plane), in a pod's network
 * namespace or the host's. Each is recorded before it is spawned and updated with its
 * (pid, start time) right after; it runs detached in its own process group with stdout and stderr
 * going straight to log files, so it neither dies with nor blocks on the runner. The environment
 * carries INSTANCE_ENV so `down` finds it even if the runner died between spawn and record.
 */
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { join } from "node:path";
import { LocalMeshError } from "./errors.js";
import { inNetns } from "./command.js";
import { INSTANCE_ENV } from "./names.js";
import { processIdentity, terminate, type ProcessId } from "./procfs.js";
import type { ProcessEntry, StateStore } from "./state.js";

export interface SpawnOptions {
  /** Network namespace to run in; the host's when undefined. */
  netns?: string;
  /** Run as this uid (and gid, default the same) with no supplementary groups. Root when undefined. */
  uid?: number;
  gid?: number;
  /** Environment of the process (PATH is added from ours when missing). */
  env?: Record<string, string>;
  cwd?: string;
  /** Names the log files (`<logName>.out.log` / `.err.log`) under the state's logs folder. */
  logName?: string;
  /** Folder for the log files, relative to the state dir's `logs/` (e.g. the pod's name). */
  logGroup?: string;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface TrackedProcess {
  readonly pid: number;
  readonly argv: readonly string[];
  readonly stdoutPath: string;
  readonly stderrPath: string;
  /** Settles when the process exits (its record is then forgotten). */
  readonly exited: Promise<ExitInfo>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it is gone. */
  stop(graceMs?: number): Promise<void>;
}

/** argv that enters `netns` (if any), then drops to `uid` (if any), then runs `argv`. */
export function wrapArgv(argv: readonly string[], options: Pick<SpawnOptions, "netns" | "uid" | "gid">): string[] {
  if (argv.length === 0) throw new LocalMeshError("LOCAL_BAD_NAME", "cannot run an empty command");
  let full = [...argv];
  if (options.uid !== undefined) {
    const gid = options.gid ?? options.uid;
    // setpriv after nsenter: entering a namespace needs the privileges the uid change drops.
    full = ["setpriv", `--reuid=${options.uid}`, `--regid=${gid}`, "--clear-groups", "--", ...full];
  }
  return options.netns ? inNetns(options.netns, full) : full;
}

export async function spawnTracked(state: StateStore, argv: readonly string[], options: SpawnOptions = {}): Promise<TrackedProcess> {
  const id = state.takeProcessId();
  const logDir = join(state.dir, "logs", options.logGroup ?? options.netns ?? "host");
  mkdirSync(logDir, { recursive: true });
  const base = options.logName ?? `${id}-${(argv[0] ?? "cmd").split("/").pop()}`;
  const stdoutPath = join(logDir, `${base}.out.log`);
  const stderrPath = join(logDir, `${base}.err.log`);
  const full = wrapArgv(argv, options);
  const entry: ProcessEntry = {
    kind: "process",
    id,
    ...(options.netns ? { netns: options.netns } : {}),
    argv: full,
    stdout: stdoutPath,
    stderr: stderrPath,
  };
  state.record([entry]);

  const out = openSync(stdoutPath, "a");
  const err = openSync(stderrPath, "a");
  const env = { PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin", ...options.env, [INSTANCE_ENV]: state.instance };
  const child = spawn(full[0] as string, full.slice(1), {
    detached: true,
    stdio: ["ignore", out, err],
    env,
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  closeSync(out);
  closeSync(err);

  const exited = new Promise<ExitInfo>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
    child.once("error", () => resolve({ code: null, signal: null }));
  });
  const pid = child.pid;
  if (pid === undefined) {
    state.forget([entry]);
    const info = await exited;
    throw new LocalMeshError("LOCAL_COMMAND_FAILED", `cannot start ${full.join(" ")} (exit ${info.code ?? "none"}); is it installed?`);
  }
  // Right after spawn the child may still be nsenter/setpriv, but exec keeps the pid and the start time.
  const identity: ProcessId = processIdentity(pid) ?? { pid, startTime: "" };
  state.record([{ ...entry, pid, startTime: identity.startTime }]);
  void exited.then(() => {
    if (state.has(entry)) state.forget([entry]);
  });

  return {
    pid,
    argv: full,
    stdoutPath,
    stderrPath,
    exited,
    async stop(graceMs = 3_000) {
      if (identity.startTime) await terminate([identity], graceMs);
      await exited;
    },
  };
}
