/** The webhook's metrics, on its own registry (served on the admin port). */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export class WebhookMetrics {
  readonly registry = new Registry();
  readonly admissions = new Counter({
    name: "tether_webhook_admissions_total",
    help: "AdmissionReviews answered, by webhook (inject|validate), outcome and reason",
    labelNames: ["webhook", "outcome", "reason"] as const,
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: "tether_webhook_admission_duration_seconds",
    help: "Time to answer an AdmissionReview",
    labelNames: ["webhook"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly badRequests = new Counter({
    name: "tether_webhook_bad_requests_total",
    help: "HTTP requests refused before admission (malformed, oversized, wrong content type, unknown path)",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly certReloads = new Counter({
    name: "tether_webhook_certificate_reloads_total",
    help: "Reloads of the serving certificate, by result (ok|refused)",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  readonly certExpiry = new Gauge({
    name: "tether_webhook_certificate_expiry_timestamp_seconds",
    help: "notAfter of the serving certificate in use",
    registers: [this.registry],
  });
}
