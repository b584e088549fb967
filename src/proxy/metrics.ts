/**
 * The proxy's Prometheus metrics. Names follow DESIGN.md (tether_…, base units). Label sets are
 * kept small and bounded: authority and peer identity come from discovery and certificates, not
 * from arbitrary request input.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export type Direction = "inbound" | "outbound";

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface BalancerSnapshot {
  authority: string;
  total: number;
  available: number;
}

export function createProxyMetrics(defaultLabels: Record<string, string> = {}) {
  const registry = new Registry();
  let balancerSource: () => Iterable<BalancerSnapshot> = () => [];
  registry.setDefaultLabels(defaultLabels);
  const requestLabels = ["direction", "authority", "peer_identity", "dst_pod", "tls"] as const;
  return {
    registry,
    /** The outbound proxy tells the metrics where its balancers are (read at each scrape). */
    setBalancerSource(source: () => Iterable<BalancerSnapshot>): void {
      balancerSource = source;
    },
    requests: new Counter({
      name: "tether_proxy_requests_total",
      help: "HTTP and gRPC requests received, by direction, authority, peer identity, destination pod and TLS",
      labelNames: requestLabels,
      registers: [registry],
    }),
    responses: new Counter({
      name: "tether_proxy_responses_total",
      help: "Responses sent, with HTTP status, gRPC status and classification (success/failure)",
      labelNames: [...requestLabels, "status_code", "grpc_status", "classification"],
      registers: [registry],
    }),
    responseLatency: new Histogram({
      name: "tether_proxy_response_latency_seconds",
      help: "Time from request headers received to response end",
      labelNames: ["direction", "authority", "dst_pod", "classification"],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    tcpOpens: new Counter({
      name: "tether_proxy_tcp_open_total",
      help: "TCP connections opened",
      labelNames: ["direction", "peer", "tls"],
      registers: [registry],
    }),
    tcpCloses: new Counter({
      name: "tether_proxy_tcp_close_total",
      help: "TCP connections closed, with the reason class",
      labelNames: ["direction", "peer", "tls", "errno"],
      registers: [registry],
    }),
    tcpOpenConnections: new Gauge({
      name: "tether_proxy_tcp_open_connections",
      help: "TCP connections currently open",
      labelNames: ["direction", "peer", "tls"],
      registers: [registry],
    }),
    tcpBytes: new Counter({
      name: "tether_proxy_tcp_bytes_total",
      help: "Bytes transferred on TCP connections",
      labelNames: ["direction", "peer", "tls", "way"],
      registers: [registry],
    }),
    balancerEndpoints: new Gauge({
      name: "tether_proxy_balancer_endpoints",
      help: "Endpoints known to each outbound balancer, by state (ready, backoff)",
      labelNames: ["authority", "state"],
      registers: [registry],
      // Read at scrape time: backoff changes with every pick, not only with discovery updates.
      collect() {
        this.reset();
        for (const b of balancerSource()) {
          this.set({ authority: b.authority, state: "ready" }, b.available);
          this.set({ authority: b.authority, state: "backoff" }, b.total - b.available);
        }
      },
    }),
    authorizations: new Counter({
      name: "tether_proxy_inbound_authorizations_total",
      help: "Inbound authorization decisions, with the rule that decided",
      labelNames: ["port", "decision", "authorization", "route", "reason", "client_identity"],
      registers: [registry],
    }),
    certExpiry: new Gauge({
      name: "tether_proxy_identity_cert_expiration_timestamp_seconds",
      help: "When the proxy's current certificate expires (Unix time)",
      registers: [registry],
    }),
    certRefreshes: new Counter({
      name: "tether_proxy_identity_cert_refresh_total",
      help: "Certificate requests to the identity CA, by result",
      labelNames: ["result"],
      registers: [registry],
    }),
    protocolErrors: new Counter({
      name: "tether_proxy_protocol_errors_total",
      help: "Malformed or refused peer input (bad frames, TLS handshake failures, floods), by kind",
      labelNames: ["direction", "kind"],
      registers: [registry],
    }),
  };
}

export type ProxyMetrics = ReturnType<typeof createProxyMetrics>;
