/**
 * The outbound proxy (:4140): every TCP connection the pod's applications open is redirected
 * here. It finds where the client meant to go (SO_ORIGINAL_DST), asks discovery what stands behind
 * that address, detects the protocol and then balances: HTTP/2 and HTTP/1 per request, opaque TCP
 * per connection. Meshed endpoints are reached over mTLS only; unknown destinations pass through
 * as plain TCP (they are not in the mesh).
 */
import http from "node:http";
import net from "node:net";
import type { Logger } from "pino";
import { hostPort } from "../api/address.js";
import type { PortSet } from "../api/ports.js";
import type { Clock } from "../core/clock.js";
import { errorMessage } from "../core/errors.js";
import { createBalancer, type Balancer } from "./balance/index.js";
import { detectProtocol } from "./detect.js";
import { DestinationCache, type DestinationTarget, type Endpoint } from "./destinations.js";
import { UpstreamError } from "./forward/errors.js";
import { forwardH1, forwardUpgrade, H1AgentPool, type H1Upstream } from "./forward/h1.js";
import { forwardH2, type H2Upstream } from "./forward/h2.js";
import { H2ConnectionPool } from "./forward/pool.js";
import type { H2Stream } from "./h2/connection.js";
import type { HeaderFields } from "./h2/fields.js";
import { forwardTcp, type TcpUpstream } from "./forward/tcp.js";
import { recordRequest, recordTcpOpen, type RequestLabels } from "./accounting.js";
import type { ProxyMetrics } from "./metrics.js";
import type { TlsContexts } from "./tls-contexts.js";
import { ProxySide } from "./listener.js";
import { openUpstreamSocket } from "./upstream.js";
import type { OriginalDestination } from "./original-dst.js";

export interface OutboundOptions {
  listen: { host: string; port: number };
  destinations: DestinationCache;
  contexts: TlsContexts;
  /** Balancer name: "peak-ewma" or "round-robin". */
  balancer: string;
  metrics: ProxyMetrics;
  logger: Logger;
  clock: Clock;
  opaquePorts: PortSet;
  detectTimeoutMs: number;
  /** How long a connection waits for discovery's first answer before it is refused. */
  controlPlaneWaitMs: number;
  connectTimeoutMs?: number;
  /** Where the client meant to go: SO_ORIGINAL_DST in production, a mapping in loopback tests. */
  originalDestination(socket: net.Socket): OriginalDestination;
}

/** One destination address in use: its discovery target and its balancer. */
class BalancedTarget {
  refs = 0;
  readonly balancer: Balancer<Endpoint>;
  private readonly sync = () => {
    this.balancer.update([...this.dst.endpoints.values()]);
    this.onChange();
  };

  constructor(
    readonly dst: DestinationTarget,
    balancerName: string,
    clock: Clock,
    private readonly onChange: () => void,
  ) {
    this.balancer = createBalancer<Endpoint>(balancerName, { key: (e) => e.key, clock });
    this.balancer.update([...dst.endpoints.values()]);
    dst.on("change", this.sync);
  }

  dispose(): void {
    this.dst.off("change", this.sync);
  }
}

function outboundLabels(target: BalancedTarget, chosen: Endpoint | undefined): RequestLabels {
  return {
    direction: "outbound",
    authority: target.dst.path,
    peerIdentity: chosen?.identity ?? "",
    dstPod: chosen?.labels.pod ?? "",
    tls: chosen?.identity !== undefined,
  };
}

/** Pool key: the same address under another identity is another connection. */
function poolKey(endpoint: Endpoint): string {
  return `${endpoint.identity ?? "plaintext"}@${endpoint.key}`;
}

export class OutboundProxy extends ProxySide<BalancedTarget> {
  private readonly targets = new Map<string, BalancedTarget>();
  private readonly agentEndpoints = new Map<string, Endpoint>();

  constructor(private readonly options: OutboundOptions) {
    super(
      "outbound",
      options.logger,
      options.metrics,
      options.listen,
      new H2ConnectionPool({
        connectTimeoutMs: options.connectTimeoutMs ?? 3000,
        onProtocolError: (kind) => options.metrics.protocolErrors.inc({ direction: "outbound", kind: `upstream-${kind}` }),
      }),
      // Every connection of an endpoint's agent goes to that endpoint, over mTLS when it is meshed.
      new H1AgentPool((key) => {
        const agent = new http.Agent({ keepAlive: true });
        (agent as unknown as { createConnection: () => net.Socket }).createConnection = () =>
          openUpstreamSocket(this.agentEndpoints.get(key)!, { contexts: options.contexts, alpn: ["http/1.1"] });
        return agent;
      }),
    );
    options.metrics.setBalancerSource(() =>
      [...this.targets.values()].map((t) => ({ authority: t.dst.path, ...t.balancer.size() })),
    );
  }

  private acquire(path: string): BalancedTarget {
    let target = this.targets.get(path);
    if (!target) {
      target = new BalancedTarget(this.options.destinations.acquire(path), this.options.balancer, this.options.clock, () => this.retainPooled());
      this.targets.set(path, target);
    }
    target.refs++;
    return target;
  }

  private release(target: BalancedTarget): void {
    if (--target.refs > 0) return;
    this.targets.delete(target.dst.path);
    target.dispose();
    this.options.destinations.release(target.dst);
  }

  /**
   * After a discovery change: pooled HTTP/2 connections to endpoints no destination in use lists
   * any more close gracefully (in-flight requests finish). Released destinations' connections
   * are left to the idle timeout, so a client reconnecting at once finds them warm.
   */
  private retainPooled(): void {
    const keys = new Set<string>();
    for (const target of this.targets.values()) for (const endpoint of target.dst.endpoints.values()) keys.add(poolKey(endpoint));
    this.h2Pool.retain(keys);
  }

  protected async onConnection(socket: net.Socket): Promise<void> {
    const { options } = this;
    socket.setNoDelay(true);
    socket.on("error", () => {});
    let original: OriginalDestination;
    try {
      original = options.originalDestination(socket);
    } catch (err) {
      options.metrics.protocolErrors.inc({ direction: "outbound", kind: "no-original-destination" });
      options.logger.warn({ err: errorMessage(err), client: socket.remoteAddress }, "outbound connection without an original destination: closed");
      socket.destroy();
      return;
    }
    const path = hostPort(original.address, original.port);
    const target = this.acquire(path);
    socket.once("close", () => this.release(target));
    const state = await target.dst.whenResolved(options.clock, options.controlPlaneWaitMs);
    if (state === "not-found") return this.passThrough(socket, original);
    if (state === "pending") {
      // Fail closed: without discovery we cannot know whether the destination is meshed.
      options.metrics.protocolErrors.inc({ direction: "outbound", kind: "discovery-unavailable" });
      options.logger.warn({ destination: path }, "discovery has not answered for this destination: connection refused");
      socket.destroy();
      return;
    }
    const opaque = options.opaquePorts.has(original.port) || [...target.dst.endpoints.values()].some((e) => e.protocolHint === "opaque");
    const detection = await detectProtocol(socket, { timeoutMs: options.detectTimeoutMs, opaque });
    if (socket.destroyed) return;
    return this.serveDetected(socket, detection, target);
  }

  /** A destination discovery does not know is outside the mesh: plain TCP to where the client meant. */
  private async passThrough(socket: net.Socket, original: OriginalDestination): Promise<void> {
    const close = recordTcpOpen(this.options.metrics, { direction: "outbound", peer: "", tls: false });
    const result = await forwardTcp(socket, {
      maxAttempts: 1,
      connectTimeoutMs: this.options.connectTimeoutMs ?? 3000,
      clock: this.options.clock,
      choose: () => ({
        connect: () => net.connect({ host: original.address, port: original.port, allowHalfOpen: true }),
        done: () => {},
        failed: () => {},
        cancel: () => {},
      }),
    });
    close({ bytesIn: result.bytesFromClient, bytesOut: result.bytesToClient, ...(result.error ? { error: result.error } : {}) });
  }

  /** The endpoint for one request or connection, or a typed refusal that says why there is none. */
  private pick(target: BalancedTarget) {
    if (target.dst.state === "pending") {
      throw new UpstreamError("UPSTREAM_DISCOVERY_UNAVAILABLE", `discovery has not answered for ${target.dst.path}`, false);
    }
    const pick = target.balancer.pick();
    if (!pick) {
      const why = target.dst.state === "not-found" ? "is unknown to discovery" : "has no ready endpoints";
      throw new UpstreamError("UPSTREAM_NO_ENDPOINTS", `${target.dst.path} ${why}`, false);
    }
    const endpoint = pick.endpoint;
    if (endpoint.identity !== undefined && !this.options.contexts.clientContext()) {
      pick.cancel();
      throw new UpstreamError(
        "UPSTREAM_NO_IDENTITY",
        `refusing to reach meshed endpoint ${endpoint.key} without a valid certificate of our own`,
        false,
      );
    }
    return pick;
  }

  protected onH2Stream(stream: H2Stream, fields: HeaderFields, endStream: boolean, target: BalancedTarget): void {
    const { clock, contexts, metrics } = this.options;
    let chosen: Endpoint | undefined;
    forwardH2(stream, fields, endStream, {
      clock,
      choose: (): H2Upstream => {
        const pick = this.pick(target);
        const endpoint = pick.endpoint;
        chosen = endpoint;
        return {
          connection: () => this.h2Pool.connection(poolKey(endpoint), () => openUpstreamSocket(endpoint, { contexts, alpn: ["h2"] })),
          done: (outcome) => pick.done(outcome),
          failed: () => pick.failed(),
          cancel: () => pick.cancel(),
        };
      },
      finished: (result) =>
        recordRequest(metrics, outboundLabels(target, chosen), {
          status: result.status,
          grpcStatus: result.grpcStatus,
          error: result.error,
          latencyMs: result.durationMs,
        }),
    });
  }

  private h1Upstream(target: BalancedTarget, onChosen: (e: Endpoint) => void): H1Upstream {
    const pick = this.pick(target);
    const endpoint = pick.endpoint;
    onChosen(endpoint);
    const key = poolKey(endpoint);
    this.agentEndpoints.set(key, endpoint);
    return {
      hostname: endpoint.address,
      port: endpoint.port,
      agent: this.h1Agents.agent(key),
      done: (outcome) => pick.done(outcome),
      failed: () => pick.failed(),
      cancel: () => pick.cancel(),
    };
  }

  protected async onH1Request(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const target = this.h1Contexts.get(req.socket);
    if (!target) return void res.writeHead(500).end();
    const start = this.options.clock.now();
    let chosen: Endpoint | undefined;
    const result = await forwardH1(req, res, { clock: this.options.clock, choose: () => this.h1Upstream(target, (e) => (chosen = e)) });
    recordRequest(
      this.options.metrics,
      outboundLabels(target, chosen),
      { status: result.status, error: result.error, latencyMs: this.options.clock.now() - start },
    );
  }

  protected async onH1Upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): Promise<void> {
    const target = this.h1Contexts.get(req.socket) ?? this.h1Contexts.get(socket);
    if (!target) return void socket.destroy();
    await forwardUpgrade(req, socket, head, { clock: this.options.clock, choose: () => this.h1Upstream(target, () => {}) });
  }

  protected async forwardOpaque(socket: net.Socket, target: BalancedTarget, replay: Buffer | undefined): Promise<void> {
    const { contexts, metrics } = this.options;
    let chosen: Endpoint | undefined;
    const result = await forwardTcp(socket, {
      clock: this.options.clock,
      connectTimeoutMs: this.options.connectTimeoutMs ?? 3000,
      ...(replay ? { replay } : {}),
      choose: (): TcpUpstream => {
        const pick = this.pick(target);
        const endpoint = pick.endpoint;
        chosen = endpoint;
        return {
          connect: () => openUpstreamSocket(endpoint, { contexts, allowHalfOpen: true }),
          done: (outcome) => pick.done(outcome),
          failed: () => pick.failed(),
          cancel: () => pick.cancel(),
        };
      },
    });
    const close = recordTcpOpen(metrics, { direction: "outbound", peer: chosen?.identity ?? "", tls: chosen?.identity !== undefined });
    close({ bytesIn: result.bytesFromClient, bytesOut: result.bytesToClient, ...(result.error ? { error: result.error } : {}) });
  }
}
