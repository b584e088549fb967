/**
 * The inbound proxy's view of policy: one InboundPolicies/WatchPort stream per local port, opened
 * on first use and kept (a pod has few ports). The last policy received keeps applying while the
 * control plane is away; a port whose policy never arrived is denied (fail closed).
 */
import type { InboundServer } from "../api/index.js";
import type { BackoffOptions } from "../core/backoff.js";
import type { Clock } from "../core/clock.js";
import { WatchStream, type Subscribe } from "./watch-stream.js";

interface PortPolicy {
  current: InboundServer | undefined;
  stream: WatchStream<InboundServer>;
  waiters: Set<() => void>;
}

export interface InboundPolicyCacheOptions {
  subscribe(port: number): Subscribe<InboundServer>;
  clock: Clock;
  backoff: BackoffOptions;
  onUpdate?(port: number, server: InboundServer): void;
  onDisconnect?(port: number, err: Error | undefined): void;
}

export class InboundPolicyCache {
  private readonly ports = new Map<number, PortPolicy>();

  constructor(private readonly options: InboundPolicyCacheOptions) {}

  /** Starts watching a port now (e.g. every container port at start-up). */
  watch(port: number): void {
    this.entry(port);
  }

  /** The port's policy, waiting up to `timeoutMs` for the first one; undefined means deny. */
  async get(port: number, timeoutMs: number): Promise<InboundServer | undefined> {
    const entry = this.entry(port);
    if (entry.current || timeoutMs <= 0) return entry.current;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.options.clock.clearTimeout(timer);
        entry.waiters.delete(done);
        resolve();
      };
      const timer = this.options.clock.setTimeout(done, timeoutMs);
      entry.waiters.add(done);
    });
    return entry.current;
  }

  /** Synchronous read of what is known (no waiting). */
  peek(port: number): InboundServer | undefined {
    return this.ports.get(port)?.current;
  }

  /** True when every watched port has received a policy at least once. */
  allReceived(): boolean {
    return [...this.ports.values()].every((p) => p.current !== undefined);
  }

  close(): void {
    for (const entry of this.ports.values()) entry.stream.close();
    this.ports.clear();
  }

  private entry(port: number): PortPolicy {
    let entry = this.ports.get(port);
    if (entry) return entry;
    const created = { current: undefined, waiters: new Set() } as Omit<PortPolicy, "stream"> & Partial<PortPolicy>;
    // Registered before the stream opens: a stream may deliver its first message synchronously.
    this.ports.set(port, created as PortPolicy);
    created.stream = new WatchStream<InboundServer>({
      subscribe: this.options.subscribe(port),
      onMessage: (server) => {
        created.current = server;
        this.options.onUpdate?.(port, server);
        for (const wake of [...created.waiters]) wake();
      },
      onDisconnect: (err) => this.options.onDisconnect?.(port, err),
      clock: this.options.clock,
      backoff: this.options.backoff,
    });
    return created as PortPolicy;
  }
}
