/** Discovery's metrics, on a Registry of its own (never the global one). */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export class DiscoveryMetrics {
  readonly subscribers: Gauge;
  readonly watches: Gauge;
  readonly requests: Counter<"result">;
  readonly updates: Counter<"type">;
  readonly messagesSent: Counter;
  readonly slowSubscribers: Counter;
  readonly skipped: Counter<"reason">;
  readonly fanoutSeconds: Histogram;
  readonly errors: Counter;

  constructor(readonly registry: Registry = new Registry()) {
    const registers = [registry];
    this.subscribers = new Gauge({ name: "tether_destination_subscribers", help: "Open Destination/Get streams", registers });
    this.watches = new Gauge({
      name: "tether_destination_watches",
      help: "Shared watches (one per Service port or IP:port with at least one subscriber)",
      registers,
    });
    this.requests = new Counter({
      name: "tether_destination_requests_total",
      help: "Destination/Get requests by result (ok, or the error code of a refused path)",
      labelNames: ["result"],
      registers,
    });
    this.updates = new Counter({
      name: "tether_destination_updates_total",
      help: "Changes computed per shared watch, by message type (each is then sent to every subscriber)",
      labelNames: ["type"],
      registers,
    });
    this.messagesSent = new Counter({ name: "tether_destination_messages_sent_total", help: "Messages written to subscriber streams", registers });
    this.slowSubscribers = new Counter({
      name: "tether_destination_slow_subscribers_total",
      help: "Times a subscriber's stream was full; it later gets one catch-up diff instead of every change",
      registers,
    });
    this.skipped = new Counter({
      name: "tether_destination_endpoints_skipped_total",
      help: "Endpoints left out of an answer (or annotations ignored), by reason",
      labelNames: ["reason"],
      registers,
    });
    this.fanoutSeconds = new Histogram({
      name: "tether_destination_fanout_seconds",
      help: "Time to compute one watch's change and write it to all its subscribers",
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.errors = new Counter({ name: "tether_destination_errors_total", help: "Unexpected failures while computing an answer", registers });
  }
}
