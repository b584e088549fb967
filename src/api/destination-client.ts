/**
 * Client side of `tether.destination.v1.Destination/Get`, shared by the proxy and the CLI:
 * `watchDestination` follows one path (optionally reconnecting), and `DestinationState` folds the
 * stream of updates into the current endpoint set.
 */
import * as grpc from "@grpc/grpc-js";
import { isErrorCode, type ErrorCode } from "../core/errors.js";
import { hostPort } from "./address.js";
import { DestinationService, type DestinationUpdate, type TcpAddress, type WeightedAddr } from "./index.js";

export type DestinationClient = InstanceType<typeof DestinationService>;

export function createDestinationClient(
  address: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  options?: grpc.ChannelOptions,
): DestinationClient {
  return new DestinationService(address, credentials, options);
}

export interface WatchDestinationOptions {
  /** The asking proxy's namespace/pod, logged by the server. */
  contextToken?: string;
  /** The stream failed or ended (also before each reconnect). */
  onError?: (err: Error) => void;
  /** Delay in ms before reconnect attempt `n` (0-based), or undefined to give up. Absent: no reconnect. */
  retry?: (attempt: number) => number | undefined;
}

export interface DestinationWatch {
  close(): void;
}

/** Error details of a refused path end with `[CODE]`; this recovers the code. */
export function destinationErrorCode(err: Error): ErrorCode | undefined {
  const code = /\[([A-Z0-9_]+)\]$/.exec((err as grpc.ServiceError).details ?? err.message)?.[1];
  return isErrorCode(code) ? code : undefined;
}

interface RawUpdate {
  update?: string;
  add?: { endpoints?: Partial<WeightedAddr>[] } | null;
  remove?: { addresses?: Partial<TcpAddress>[] } | null;
  noEndpoints?: { exists?: boolean } | null;
}

const HINTS = new Set(["", "h2", "http1", "opaque"]);

/** proto-loader's object -> the typed update (unknown hints become "" = detect). */
export function normalizeUpdate(raw: RawUpdate): DestinationUpdate | undefined {
  if (raw.update === "add") {
    const endpoints = (raw.add?.endpoints ?? []).map(
      (e): WeightedAddr => ({
        address: e.address ?? "",
        port: e.port ?? 0,
        weight: e.weight ?? 0,
        identity: e.identity ?? "",
        protocolHint: HINTS.has(e.protocolHint ?? "") ? (e.protocolHint as WeightedAddr["protocolHint"]) : "",
        labels: { ...(e.labels ?? {}) },
      }),
    );
    return { update: "add", add: { endpoints } };
  }
  if (raw.update === "remove") {
    return { update: "remove", remove: { addresses: (raw.remove?.addresses ?? []).map((a) => ({ address: a.address ?? "", port: a.port ?? 0 })) } };
  }
  if (raw.update === "noEndpoints") return { update: "noEndpoints", noEndpoints: { exists: raw.noEndpoints?.exists ?? false } };
  return undefined;
}

/**
 * Follows `path`. `onUpdate` gets `first = true` for the first message of each stream (the full
 * set: replace, do not merge). Returns a handle whose `close` cancels the stream and any retry.
 */
export function watchDestination(
  client: DestinationClient,
  path: string,
  onUpdate: (update: DestinationUpdate, first: boolean) => void,
  options: WatchDestinationOptions = {},
): DestinationWatch {
  let closed = false;
  let call: grpc.ClientReadableStream<RawUpdate> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let attempt = 0;

  const open = () => {
    let first = true;
    let ended = false;
    const get = client.Get as (request: object) => grpc.ClientReadableStream<RawUpdate>;
    const stream = get.call(client, { path, contextToken: options.contextToken ?? "" });
    call = stream;
    const finish = (err: Error) => {
      if (ended || closed) return;
      ended = true;
      options.onError?.(err);
      const delay = options.retry?.(attempt++);
      if (delay !== undefined && !closed) timer = setTimeout(open, delay);
    };
    stream.on("data", (raw: RawUpdate) => {
      const update = normalizeUpdate(raw);
      if (!update) return;
      attempt = 0;
      const wasFirst = first;
      first = false;
      onUpdate(update, wasFirst);
    });
    stream.on("error", (err: Error) => finish(err));
    stream.on("end", () => finish(new Error(`destination stream for ${path} ended by the server`)));
  };
  open();

  return {
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      call?.cancel();
    },
  };
}


/** The endpoint set as the updates so far describe it. */
export class DestinationState {
  /** Undefined until the first message. */
  exists: boolean | undefined;
  readonly endpoints = new Map<string, WeightedAddr>();

  apply(update: DestinationUpdate, first: boolean): void {
    if (first) this.endpoints.clear();
    switch (update.update) {
      case "add":
        this.exists = true;
        for (const e of update.add.endpoints) this.endpoints.set(hostPort(e.address, e.port), e);
        break;
      case "remove":
        for (const a of update.remove.addresses) this.endpoints.delete(hostPort(a.address, a.port));
        break;
      case "noEndpoints":
        this.exists = update.noEndpoints.exists;
        this.endpoints.clear();
        break;
    }
  }

  /** Endpoints sorted by address:port. */
  list(): WeightedAddr[] {
    return [...this.endpoints.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, e]) => e);
  }
}
