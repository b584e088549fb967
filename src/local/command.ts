/**
 * Runs the host tools the substrate drives (ip, iptables, nsenter), optionally inside a pod's
 * network namespace. A failing tool becomes a LocalMeshError carrying its stderr.
 */
import { spawn } from "node:child_process";
import { LocalMeshError } from "./errors.js";
import { netnsPath } from "./names.js";

export interface RunOptions {
  /** Run inside this named network namespace (through nsenter). */
  netns?: string;
  /** Written to the tool's stdin (iptables-restore, ip -batch). */
  input?: string;
  timeoutMs?: number;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number | null;
}

/** argv that runs `argv` inside `netns` without a new mount namespace (unlike `ip netns exec`). */
export function inNetns(netns: string, argv: readonly string[]): string[] {
  return ["nsenter", `--net=${netnsPath(netns)}`, "--", ...argv];
}

/** Runs a tool and returns its output whatever its exit code. */
export function runAllowingFailure(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const full = options.netns ? inNetns(options.netns, argv) : [...argv];
  const [file, ...args] = full;
  return new Promise((resolve, reject) => {
    const child = spawn(file as string, args, { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 15_000);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(
        new LocalMeshError("LOCAL_COMMAND_FAILED", `cannot run ${full.join(" ")}: ${err.message}; is iproute2/iptables/util-linux installed?`, {
          cause: err,
        }),
      );
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code });
    });
    child.stdin.on("error", () => {}); // the tool may exit before reading its input; its exit code says why
    child.stdin.end(options.input ?? "");
  });
}

/** Runs a tool and fails with its stderr unless it exits 0. */
export async function run(argv: readonly string[], options: RunOptions = {}): Promise<string> {
  const result = await runAllowingFailure(argv, options);
  if (result.code !== 0) {
    const where = options.netns ? ` in netns ${options.netns}` : "";
    throw new LocalMeshError(
      "LOCAL_COMMAND_FAILED",
      `${argv.join(" ")}${where} failed (exit ${result.code ?? "killed"}): ${result.stderr.trim() || result.stdout.trim() || "no output"}`,
    );
  }
  return result.stdout;
}

/** Fails with LOCAL_NOT_ROOT, saying what to run, unless this process can manage namespaces and iptables. */
export function requireRoot(command: string): void {
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    throw new LocalMeshError(
      "LOCAL_NOT_ROOT",
      `${command} needs root (it creates network namespaces, a bridge and iptables rules); run: sudo ${command}`,
    );
  }
}
