/** The policy controller's metrics, on a Registry of its own (never the global one). */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export class PolicyMetrics {
  readonly streams: Gauge;
  readonly watches: Gauge;
  readonly requests: Counter<"result">;
  readonly updatesSent: Counter;
  readonly compileSeconds: Histogram;
  readonly compileErrors: Counter;
  readonly invalidResources: Gauge<"kind">;
  readonly statusWrites: Counter<"result">;
  readonly statusErrors: Counter;

  constructor(readonly registry: Registry = new Registry()) {
    const registers = [registry];
    this.streams = new Gauge({ name: "tether_policy_watch_streams", help: "Open InboundPolicies/WatchPort streams", registers });
    this.watches = new Gauge({ name: "tether_policy_watched_ports", help: "Distinct pod ports with at least one stream", registers });
    this.requests = new Counter({
      name: "tether_policy_requests_total",
      help: "WatchPort requests by result (ok, or the gRPC status name of a refusal)",
      labelNames: ["result"],
      registers,
    });
    this.updatesSent = new Counter({ name: "tether_policy_updates_sent_total", help: "Policy messages written to streams (first and changed)", registers });
    this.compileSeconds = new Histogram({
      name: "tether_policy_compile_seconds",
      help: "Time to compile the policy of one pod port",
      buckets: [0.00001, 0.0001, 0.001, 0.01, 0.1, 1],
      registers,
    });
    this.compileErrors = new Counter({ name: "tether_policy_compile_errors_total", help: "Policy compilations that threw (the last policy stays)", registers });
    this.invalidResources = new Gauge({
      name: "tether_policy_invalid_resources",
      help: "Policy resources whose Accepted condition is False, by kind",
      labelNames: ["kind"],
      registers,
    });
    this.statusErrors = new Counter({ name: "tether_policy_status_errors_total", help: "Status computations that threw (retried on the next change)", registers });
    this.statusWrites = new Counter({ name: "tether_policy_status_writes_total", help: "Status writes by result (ok, error)", labelNames: ["result"], registers });
  }
}
