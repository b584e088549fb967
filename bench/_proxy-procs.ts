/**
 * Process plumbing for bench/proxy.ts: starting children that announce their port on stdout,
 * reading a process's CPU time and memory from /proc, and stopping every child (also on error
 * and on Ctrl-C), so that a benchmark never leaves a proxy or HAProxy behind.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import net from "node:net";

export interface Started {
  name: string;
  pid: number;
  /** The port the child announced ({"port":N} on stdout), if it announces one. */
  port: number;
}

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ: 100 on every Linux architecture Node supports

export interface ProcSample {
  /** User + system CPU seconds since the process started. */
  cpuSeconds: number;
  /** Current resident set (VmRSS), MB. */
  rssMb: number;
  /** Peak resident set (VmHWM), MB. */
  peakRssMb: number;
}

export function sampleProc(pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { cpuSeconds: (utime + stime) / CLOCK_TICKS_PER_SECOND, rssMb: kb("VmRSS") / 1024, peakRssMb: kb("VmHWM") / 1024 };
}

/** A port free right now on 127.0.0.1 (for HAProxy, which cannot report an ephemeral port). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port: number, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.exitCode !== null) throw new Error(`process exited with ${child.exitCode} before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: "127.0.0.1", port }, () => (socket.destroy(), resolve(true)));
      socket.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every child the benchmark started; `stopAll` ends them (SIGTERM, then SIGKILL). */
export class Children {
  private readonly procs = new Map<string, ChildProcess>();
  private readonly stderr = new Map<string, string>();
  /** Waiters for the next JSON line each child prints after its port. */
  private readonly lineWaiters = new Map<string, ((line: Record<string, unknown>) => void)[]>();

  /**
   * Starts `command args` as `name`. With `announcesPort`, resolves once the child printed
   * {"port":N}; otherwise at once (port 0). The child's stdin stays open: children that watch it
   * exit when the benchmark dies.
   */
  async start(name: string, command: string, args: string[], opts: { announcesPort: boolean; timeoutMs?: number }): Promise<Started> {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], cwd: process.cwd() });
    this.procs.set(name, child);
    let err = "";
    child.stderr!.on("data", (d: Buffer) => {
      err = (err + d.toString()).slice(-4000);
      this.stderr.set(name, err);
    });
    child.stdin!.on("error", () => {});
    if (!opts.announcesPort) {
      await once(child, "spawn");
      return { name, pid: child.pid!, port: 0 };
    }
    const port = await new Promise<number>((resolve, reject) => {
      let out = "";
      let announced = false;
      const timer = setTimeout(() => reject(new Error(`${name} did not report a port within ${opts.timeoutMs ?? 20_000} ms; stderr: ${err}`)), opts.timeoutMs ?? 20_000);
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        const lines = out.split("\n");
        out = lines.pop()!;
        for (const line of lines.filter((l) => l.startsWith("{"))) {
          const message = JSON.parse(line) as Record<string, unknown>;
          if (!announced) {
            announced = true;
            clearTimeout(timer);
            resolve(message.port as number);
          } else {
            this.lineWaiters.get(name)?.shift()?.(message);
          }
        }
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited with ${code} before reporting a port; stderr: ${err}`));
      });
    });
    return { name, pid: child.pid!, port };
  }

  /** Sends `signal` to the child and resolves with the next JSON line it prints. */
  ask(name: string, signal: NodeJS.Signals, timeoutMs = 5000): Promise<Record<string, unknown>> {
    const child = this.procs.get(name);
    if (!child) return Promise.reject(new Error(`no child named ${name}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not answer ${signal} within ${timeoutMs} ms`)), timeoutMs);
      const waiters = this.lineWaiters.get(name) ?? [];
      this.lineWaiters.set(name, waiters);
      waiters.push((line) => (clearTimeout(timer), resolve(line)));
      child.kill(signal);
    });
  }

  process(name: string): ChildProcess | undefined {
    return this.procs.get(name);
  }

  stderrOf(name: string): string {
    return this.stderr.get(name) ?? "";
  }

  /** Stops one child and waits for it to exit (SIGKILL after `graceMs`). */
  async stop(name: string, graceMs = 3000): Promise<void> {
    const child = this.procs.get(name);
    this.procs.delete(name);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  }

  async stopAll(graceMs = 3000): Promise<void> {
    await Promise.all([...this.procs.keys()].map((name) => this.stop(name, graceMs)));
  }

  /** Synchronous last resort (process 'exit'): SIGKILL whatever is still running. */
  killAllNow(): void {
    for (const child of this.procs.values()) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
}
