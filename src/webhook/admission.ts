/**
 * AdmissionReview v1 handling, without sockets: parse a review, run the injector or the policy
 * validator, and build the response the API server expects. Lookups of cluster state are
 * injected so tests run on plain objects.
 */
import type { Namespace, Pod } from "kubernetes-types/core/v1.js";
import type { LabelSelector } from "kubernetes-types/meta/v1.js";
import { errorCode, errorMessage } from "../core/errors.js";
import { validatePolicyResource, POLICY_GROUP, GATEWAY_GROUP } from "../cluster/policy-validation.js";
import { POLICY_RESOURCE_KINDS, ROUTE_KINDS } from "../cluster/types.js";
import { planInjection, InjectionError } from "./inject.js";
import type { InjectionSettings } from "./settings.js";
import { selectorMatches } from "../cluster/selector.js";

export const ADMISSION_API_VERSION = "admission.k8s.io/v1";

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

export interface AdmissionRequest {
  uid: string;
  kind: GroupVersionKind;
  namespace?: string;
  name?: string;
  operation: "CREATE" | "UPDATE" | "DELETE" | "CONNECT";
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; message: string; reason?: string };
  patchType?: "JSONPatch";
  patch?: string;
  warnings?: string[];
}

/** What happened, for metrics and logs. */
export type Outcome = "injected" | "skipped" | "allowed" | "warned" | "denied" | "error";

export interface Reviewed {
  response: AdmissionResponse;
  outcome: Outcome;
  /** Why (the skip reason, the error code): a bounded set, safe as a metric label. */
  reason: string;
}

export interface ClusterLookup {
  namespace(name: string): Promise<Namespace | undefined>;
  /** Pods of a namespace matching a selector (implementations may over-return; callers re-match). */
  pods(namespace: string, selector: LabelSelector): Promise<Pod[]>;
}

export type ParsedReview = { ok: true; request: AdmissionRequest } | { ok: false; message: string };

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Checks the envelope; what is wrong here is answered with HTTP 400 (there is no uid to answer to). */
export function parseReview(body: unknown): ParsedReview {
  if (!isObj(body)) return { ok: false, message: "the body is not a JSON object" };
  if (body.apiVersion !== ADMISSION_API_VERSION || body.kind !== "AdmissionReview") {
    return {
      ok: false,
      message: `expected apiVersion ${ADMISSION_API_VERSION} kind AdmissionReview, got ${JSON.stringify(body.apiVersion)} ${JSON.stringify(body.kind)}; set admissionReviewVersions: [v1] in the webhook configuration`,
    };
  }
  const r = body.request;
  if (!isObj(r)) return { ok: false, message: "the AdmissionReview has no request" };
  if (typeof r.uid !== "string" || r.uid === "") return { ok: false, message: "request.uid is missing" };
  const kind = r.kind;
  if (!isObj(kind) || typeof kind.kind !== "string" || typeof kind.group !== "string" || typeof kind.version !== "string") {
    return { ok: false, message: "request.kind must be {group, version, kind}" };
  }
  if (!["CREATE", "UPDATE", "DELETE", "CONNECT"].includes(r.operation as string)) {
    return { ok: false, message: `request.operation ${JSON.stringify(r.operation)} is not CREATE, UPDATE, DELETE or CONNECT` };
  }
  return { ok: true, request: r as unknown as AdmissionRequest };
}

export function reviewEnvelope(response: AdmissionResponse): unknown {
  return { apiVersion: ADMISSION_API_VERSION, kind: "AdmissionReview", response };
}

function deny(uid: string, code: number, message: string, reason: string): Reviewed {
  const statusReason = code === 403 ? "Forbidden" : code === 400 ? "BadRequest" : "InternalError";
  return { response: { uid, allowed: false, status: { code, message, reason: statusReason } }, outcome: "denied", reason };
}

function allow(uid: string, outcome: Outcome, reason: string, warnings: string[] = []): Reviewed {
  return { response: { uid, allowed: true, ...(warnings.length ? { warnings } : {}) }, outcome, reason };
}

/** The mutating webhook: inject pods on CREATE. */
export async function reviewInjection(request: AdmissionRequest, settings: InjectionSettings, lookup: ClusterLookup): Promise<Reviewed> {
  const uid = request.uid;
  if (request.kind.group !== "" || request.kind.kind !== "Pod") {
    return deny(uid, 400, `the tether injector only handles core/v1 Pods, not ${request.kind.group || "core"}/${request.kind.kind}; fix the rules of the MutatingWebhookConfiguration`, "wrong-kind");
  }
  // Only creation is mutated: containers of an existing pod cannot change.
  if (request.operation !== "CREATE") return allow(uid, "skipped", "not-create");
  const pod = request.object;
  if (!isObj(pod) || !isObj(pod.spec)) return deny(uid, 400, "request.object is not a pod with a spec", "malformed-pod");
  const namespaceName = request.namespace || (isObj(pod.metadata) && typeof pod.metadata.namespace === "string" ? pod.metadata.namespace : "");
  if (!namespaceName) return deny(uid, 400, "the request names no namespace", "malformed-pod");
  let namespace: Namespace | undefined;
  try {
    namespace = await lookup.namespace(namespaceName);
  } catch (err) {
    // Fail closed: without the namespace's settings the pod could be admitted unmeshed or misconfigured.
    return deny(uid, 500, `could not read namespace ${namespaceName} to decide on injection (${errorMessage(err)}); the request can be retried`, "lookup-failed");
  }
  try {
    const result = planInjection({ pod: pod as Pod, namespaceName, namespace, settings });
    if (!result.injected) return allow(uid, "skipped", result.reason);
    return {
      response: {
        uid,
        allowed: true,
        patchType: "JSONPatch",
        patch: Buffer.from(JSON.stringify(result.patch)).toString("base64"),
        ...(result.warnings.length ? { warnings: result.warnings } : {}),
      },
      outcome: "injected",
      reason: "injected",
    };
  } catch (err) {
    if (err instanceof InjectionError) return deny(uid, 403, `tether injector: ${err.message}`, err.code);
    throw err;
  }
}


function attachesToServer(route: Record<string, unknown>): boolean {
  const spec = route.spec;
  if (!isObj(spec) || !Array.isArray(spec.parentRefs)) return false;
  return spec.parentRefs.some((p) => isObj(p) && p.group === POLICY_GROUP && p.kind === "Server");
}

/** "Server port that no selected pod has" is a warning, not an error: pods may come later. */
async function serverPortWarnings(server: Record<string, unknown>, namespace: string, lookup: ClusterLookup): Promise<string[]> {
  const spec = server.spec as { podSelector?: LabelSelector; port?: number | string };
  if (!spec.podSelector || spec.port === undefined) return [];
  let pods: Pod[];
  try {
    pods = (await lookup.pods(namespace, spec.podSelector)).filter((p) => selectorMatches(spec.podSelector!, p.metadata?.labels));
  } catch (err) {
    return [`could not list pods to check the Server's port (${errorMessage(err)})`];
  }
  if (pods.length === 0) return [`spec.podSelector selects no pods in namespace ${namespace} yet`];
  const has = (p: Pod) =>
    (p.spec?.containers ?? []).some((c) => (c.ports ?? []).some((cp) => (typeof spec.port === "number" ? cp.containerPort === spec.port : cp.name === spec.port)));
  const without = pods.filter((p) => !has(p));
  if (without.length === 0) return [];
  const names = without.slice(0, 3).map((p) => p.metadata?.name ?? "?").join(", ");
  return [
    `spec.port ${JSON.stringify(spec.port)} is not a container port of ${without.length} of the ${pods.length} selected pods (${names}${without.length > 3 ? ", …" : ""})`,
  ];
}

/** The validating webhook: policy.tether.io resources and Gateway API routes attached to a Server. */
export async function reviewPolicy(request: AdmissionRequest, lookup: ClusterLookup): Promise<Reviewed> {
  const uid = request.uid;
  const { group, kind } = request.kind;
  const isPolicy = group === POLICY_GROUP && (POLICY_RESOURCE_KINDS as readonly string[]).includes(kind);
  const isRoute = group === GATEWAY_GROUP && (ROUTE_KINDS as readonly string[]).includes(kind);
  if (!isPolicy && !isRoute) {
    return deny(uid, 400, `the tether policy validator does not handle ${group || "core"}/${kind}; fix the rules of the ValidatingWebhookConfiguration`, "wrong-kind");
  }
  if (request.operation === "DELETE" || request.operation === "CONNECT") return allow(uid, "allowed", "not-a-write");
  const obj = request.object;
  if (!isObj(obj)) return deny(uid, 400, "request.object is missing", "malformed-object");
  // Routes that do not attach to a Server belong to someone else (an ingress, a gateway).
  if (isRoute && !attachesToServer(obj)) return allow(uid, "allowed", "route-not-for-tether");
  const result = validatePolicyResource(obj);
  if (result.errors.length > 0) {
    const list = result.errors.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message)).join("; ");
    return deny(uid, 403, `${kind} ${request.namespace ?? ""}/${request.name ?? ""} is invalid: ${list}`, "invalid");
  }
  const warnings = [...result.warnings];
  if (kind === "Server" && request.namespace) warnings.push(...(await serverPortWarnings(obj, request.namespace, lookup)));
  return allow(uid, warnings.length ? "warned" : "allowed", warnings.length ? "warnings" : "valid", warnings);
}

/** Unexpected failures become a denial with the error's code, never an unanswered request. */
export function internalError(uid: string, err: unknown): Reviewed {
  return deny(uid, 500, `internal error in the tether webhook (${errorCode(err)}): ${errorMessage(err)}`, "internal");
}
