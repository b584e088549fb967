/**
 * The outbound proxy's view of discovery: one shared Destination/Get stream per target address,
 * reference-counted, kept while in use and released after an idle period. When the control plane
 * is unreachable the last known endpoint set keeps serving.
 */
import { EventEmitter } from "node:events";
import { hostPort } from "../api/address.js";
import type { DestinationUpdate, WeightedAddr } from "../api/index.js";
import type { BackoffOptions } from "../core/backoff.js";
import type { Clock, TimerHandle } from "../core/clock.js";
import { WatchStream, type Subscribe } from "./watch-stream.js";

export interface Endpoint {
  /** "address:port", unique within a target. */
  key: string;
  address: string;
  port: number;
  weight: number;
  /** The identity the endpoint's proxy must prove; undefined when it is not meshed. */
  identity: string | undefined;
  protocolHint: WeightedAddr["protocolHint"];
  labels: Record<string, string>;
}

/**
 * pending: no answer yet; resolved: endpoints known (possibly empty after removals);
 * no-endpoints: the Service exists with nothing ready; not-found: discovery does not know the address.
 */
export type TargetState = "pending" | "resolved" | "no-endpoints" | "not-found";

function toEndpoint(addr: WeightedAddr): Endpoint {
  return {
    key: hostPort(addr.address, addr.port),
    address: addr.address,
    port: addr.port,
    weight: addr.weight || 1,
    identity: addr.identity || undefined,
    protocolHint: addr.protocolHint,
    labels: addr.labels ?? {},
  };
}

export class DestinationTarget extends EventEmitter {
  state: TargetState = "pending";
  readonly endpoints = new Map<string, Endpoint>();
  /** Whether the stream to discovery is currently up (false: serving the last known set). */
  connected = false;
  refs = 0;
  idleTimer: TimerHandle | undefined;
  stream: WatchStream<DestinationUpdate> | undefined;

  constructor(readonly path: string) {
    super();
    this.setMaxListeners(0);
  }

  apply(update: DestinationUpdate, first: boolean): void {
    this.connected = true;
    if (first) this.endpoints.clear();
    switch (update.update) {
      case "add":
        for (const addr of update.add.endpoints) {
          const endpoint = toEndpoint(addr);
          this.endpoints.set(endpoint.key, endpoint);
        }
        this.state = "resolved";
        break;
      case "remove":
        for (const addr of update.remove.addresses) this.endpoints.delete(hostPort(addr.address, addr.port));
        this.state = "resolved";
        break;
      case "noEndpoints":
        this.endpoints.clear();
        this.state = update.noEndpoints.exists ? "no-endpoints" : "not-found";
        break;
    }
    this.emit("change");
  }

  /** Resolves once the target has a first answer, or after `timeoutMs` (state stays "pending"). */
  whenResolved(clock: Clock, timeoutMs: number): Promise<TargetState> {
    if (this.state !== "pending") return Promise.resolve(this.state);
    return new Promise((resolve) => {
      const timer = clock.setTimeout(() => {
        this.off("change", onChange);
        resolve(this.state);
      }, timeoutMs);
      const onChange = () => {
        clock.clearTimeout(timer);
        resolve(this.state);
      };
      this.once("change", onChange);
    });
  }
}

export interface DestinationCacheOptions {
  subscribe(path: string): Subscribe<DestinationUpdate>;
  clock: Clock;
  /** How long an unused target's stream is kept open. */
  idleMs: number;
  backoff: BackoffOptions;
  onDisconnect?(path: string, err: Error | undefined): void;
}

export class DestinationCache {
  private readonly targets = new Map<string, DestinationTarget>();

  constructor(private readonly options: DestinationCacheOptions) {}

  /** Takes a reference on a target, opening its stream if needed. Pair with `release`. */
  acquire(path: string): DestinationTarget {
    let target = this.targets.get(path);
    if (!target) {
      target = new DestinationTarget(path);
      const t = target;
      t.stream = new WatchStream<DestinationUpdate>({
        subscribe: this.options.subscribe(path),
        onMessage: (update, first) => t.apply(update, first),
        onDisconnect: (err) => {
          t.connected = false;
          this.options.onDisconnect?.(path, err);
        },
        clock: this.options.clock,
        backoff: this.options.backoff,
      });
      this.targets.set(path, target);
    }
    if (target.idleTimer) {
      this.options.clock.clearTimeout(target.idleTimer);
      target.idleTimer = undefined;
    }
    target.refs++;
    return target;
  }

  release(target: DestinationTarget): void {
    target.refs = Math.max(0, target.refs - 1);
    if (target.refs > 0 || target.idleTimer) return;
    target.idleTimer = this.options.clock.setTimeout(() => {
      target.idleTimer = undefined;
      if (target.refs > 0) return;
      target.stream?.close();
      this.targets.delete(target.path);
    }, this.options.idleMs);
  }

  /** Targets with an open stream (for metrics and tests). */
  size(): number {
    return this.targets.size;
  }

  close(): void {
    for (const target of this.targets.values()) {
      if (target.idleTimer) this.options.clock.clearTimeout(target.idleTimer);
      target.stream?.close();
    }
    this.targets.clear();
  }
}
