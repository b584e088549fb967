/**
 * A server stream from the control plane that survives the control plane going away: on error
 * or end it re-subscribes with capped exponential backoff, and the owner keeps serving from the
 * last message it saw. Each new stream's first message is the full state, so the owner replaces
 * rather than merges on `first`.
 */
import { Backoff, type BackoffOptions } from "../core/backoff.js";
import type { Clock, TimerHandle } from "../core/clock.js";

export interface StreamHandlers<T> {
  onMessage(message: T): void;
  onError(err: Error): void;
  onEnd(): void;
}

/** Opens one server stream; returns a function that cancels it. */
export type Subscribe<T> = (handlers: StreamHandlers<T>) => () => void;

export interface WatchStreamOptions<T> {
  subscribe: Subscribe<T>;
  onMessage(message: T, first: boolean): void;
  /** Called when a stream breaks; the owner keeps its last state. */
  onDisconnect?(err: Error | undefined, retryInMs: number): void;
  clock: Clock;
  backoff: BackoffOptions;
}

export class WatchStream<T> {
  private cancel: (() => void) | undefined;
  private retryTimer: TimerHandle | undefined;
  private readonly backoff: Backoff;
  private closed = false;
  private generation = 0;
  /** True once any stream delivered a first message. */
  everReceived = false;

  constructor(private readonly options: WatchStreamOptions<T>) {
    this.backoff = new Backoff(options.backoff);
    this.open();
  }

  close(): void {
    this.closed = true;
    this.generation++;
    if (this.retryTimer) this.options.clock.clearTimeout(this.retryTimer);
    this.cancel?.();
    this.cancel = undefined;
  }

  private open(): void {
    const generation = ++this.generation;
    let first = true;
    // Events of a stream we already gave up on must not touch the state.
    const current = () => !this.closed && generation === this.generation;
    const broken = (err: Error | undefined) => {
      if (!current()) return;
      this.cancel = undefined;
      this.generation++;
      const delay = this.backoff.next();
      this.options.onDisconnect?.(err, delay);
      this.retryTimer = this.options.clock.setTimeout(() => {
        this.retryTimer = undefined;
        if (!this.closed) this.open();
      }, delay);
    };
    this.cancel = this.options.subscribe({
      onMessage: (message) => {
        if (!current()) return;
        if (first) this.backoff.reset();
        this.everReceived = true;
        const wasFirst = first;
        first = false;
        this.options.onMessage(message, wasFirst);
      },
      onError: (err) => broken(err),
      onEnd: () => broken(undefined),
    });
  }
}
