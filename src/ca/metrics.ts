/** The CA's metrics, on its own registry (served on the admin port). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface CaMetrics {
  registry: Registry;
  issuances: Counter<"result">;
  latency: Histogram<"result">;
  issuerExpiry: Gauge;
  anchorExpiry: Gauge;
  reloads: Counter<"result" | "reason">;
}

export function createCaMetrics(options: { processMetrics?: boolean } = {}): CaMetrics {
  const registry = new Registry();
  if (options.processMetrics) collectDefaultMetrics({ register: registry, prefix: "tether_identity_" });
  return {
    registry,
    issuances: new Counter({
      name: "tether_identity_certify_total",
      help: "Certify requests by result (issued, unauthenticated, permission_denied, invalid_argument, internal).",
      labelNames: ["result"],
      registers: [registry],
    }),
    latency: new Histogram({
      name: "tether_identity_certify_duration_seconds",
      help: "Time to answer a Certify request, by result.",
      labelNames: ["result"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    issuerExpiry: new Gauge({
      name: "tether_identity_issuer_expiry_timestamp_seconds",
      help: "When the issuer certificate in service expires (Unix seconds).",
      registers: [registry],
    }),
    anchorExpiry: new Gauge({
      name: "tether_identity_trust_anchor_expiry_timestamp_seconds",
      help: "When the earliest-expiring trust anchor expires (Unix seconds).",
      registers: [registry],
    }),
    reloads: new Counter({
      name: "tether_identity_issuer_reloads_total",
      help: "Issuer reloads by result (success, error) and reason (the error code; empty on success).",
      labelNames: ["result", "reason"],
      registers: [registry],
    }),
  };
}
