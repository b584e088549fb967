/**
 * Validation of one policy resource on its own (no lookups): Server, AuthorizationPolicy,
 * MeshTLSAuthentication, NetworkAuthentication and the Gateway API HTTPRoute/GRPCRoute tether reads.
 * The policy controller reports these errors in status conditions and the admission webhook refuses
 * the object with them, so both say the same thing. Errors name the field (`spec.networks[1].cidr`).
 */
import { cidrProblem, cidrWithin, parseCidr, type Cidr } from "../core/ip.js";

export interface ValidationIssue {
  field: string;
  message: string;
}

export interface ValidationResult {
  errors: ValidationIssue[];
  warnings: string[];
}

export const POLICY_GROUP = "policy.tether.io";
export const GATEWAY_GROUP = "gateway.networking.k8s.io";

export const PROXY_PROTOCOLS = ["unknown", "HTTP/1", "HTTP/2", "gRPC", "opaque"] as const;
export const TARGET_KINDS = ["Server", "Namespace", "HTTPRoute", "GRPCRoute"] as const;
export const AUTHENTICATION_KINDS = ["MeshTLSAuthentication", "NetworkAuthentication", "ServiceAccount"] as const;
export const IDENTITY_REF_KINDS = ["ServiceAccount", "Namespace"] as const;
const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];

/** The API group each kind a policy may reference belongs to ("" is the core group). */
export const KIND_GROUP: Record<string, string> = {
  Server: POLICY_GROUP,
  MeshTLSAuthentication: POLICY_GROUP,
  NetworkAuthentication: POLICY_GROUP,
  AuthorizationPolicy: POLICY_GROUP,
  Namespace: "",
  ServiceAccount: "",
  HTTPRoute: GATEWAY_GROUP,
  GRPCRoute: GATEWAY_GROUP,
};

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const IANA_SVC_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;
const SELECTOR_OPERATORS = ["In", "NotIn", "Exists", "DoesNotExist"];

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

class Collector {
  readonly errors: ValidationIssue[] = [];
  readonly warnings: string[] = [];
  error(field: string, message: string): void {
    this.errors.push({ field, message });
  }
  warn(message: string): void {
    this.warnings.push(message);
  }
  /** Reads an optional array field; reports a non-array. */
  array(obj: Obj, key: string, field: string): unknown[] {
    const v = obj[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) {
      this.error(field, "must be a list");
      return [];
    }
    return v;
  }
  string(obj: Obj, key: string, field: string, required: boolean): string | undefined {
    const v = obj[key];
    if (v === undefined || v === null || v === "") {
      if (required) this.error(field, "is required");
      return undefined;
    }
    if (typeof v !== "string") {
      this.error(field, "must be a string");
      return undefined;
    }
    return v;
  }
  regex(source: string, field: string): void {
    try {
      new RegExp(source);
    } catch (err) {
      this.error(field, `is not a valid regular expression: ${(err as Error).message}`);
    }
  }
}

export function validateLabelKey(key: string): string | undefined {
  const slash = key.lastIndexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix))) {
    return `label key prefix ${JSON.stringify(prefix)} must be a DNS subdomain`;
  }
  if (name.length === 0 || name.length > 63 || !LABEL_NAME.test(name)) {
    return `label key ${JSON.stringify(key)} must be 1-63 characters of letters, digits, '-', '_' or '.', starting and ending alphanumeric`;
  }
  return undefined;
}

export function validateLabelValue(value: unknown): string | undefined {
  if (typeof value !== "string") return "label value must be a string";
  if (value !== "" && (value.length > 63 || !LABEL_NAME.test(value))) {
    return `label value ${JSON.stringify(value)} must be at most 63 characters of letters, digits, '-', '_' or '.', starting and ending alphanumeric`;
  }
  return undefined;
}

function validateSelector(c: Collector, sel: unknown, field: string): void {
  if (sel === undefined || sel === null) {
    c.error(field, "is required (use {} to select every pod in the namespace)");
    return;
  }
  if (!isObj(sel)) {
    c.error(field, "must be a label selector object");
    return;
  }
  const labels = sel.matchLabels;
  if (labels !== undefined && labels !== null) {
    if (!isObj(labels)) c.error(`${field}.matchLabels`, "must be a map of label keys to values");
    else
      for (const [k, v] of Object.entries(labels)) {
        const bad = validateLabelKey(k) ?? validateLabelValue(v);
        if (bad) c.error(`${field}.matchLabels[${JSON.stringify(k)}]`, bad);
      }
  }
  c.array(sel, "matchExpressions", `${field}.matchExpressions`).forEach((e, i) => {
    const f = `${field}.matchExpressions[${i}]`;
    if (!isObj(e)) return c.error(f, "must be an object with key, operator and values");
    const key = c.string(e, "key", `${f}.key`, true);
    if (key !== undefined) {
      const bad = validateLabelKey(key);
      if (bad) c.error(`${f}.key`, bad);
    }
    const op = e.operator;
    if (typeof op !== "string" || !SELECTOR_OPERATORS.includes(op)) {
      return c.error(`${f}.operator`, `must be one of ${SELECTOR_OPERATORS.join(", ")}`);
    }
    const values = c.array(e, "values", `${f}.values`);
    if ((op === "In" || op === "NotIn") && values.length === 0) c.error(`${f}.values`, `must not be empty with operator ${op}`);
    if ((op === "Exists" || op === "DoesNotExist") && values.length > 0) c.error(`${f}.values`, `must be empty with operator ${op}`);
    values.forEach((v, j) => {
      const bad = validateLabelValue(v);
      if (bad) c.error(`${f}.values[${j}]`, bad);
    });
  });
}

/** Checks a CIDR (the grammar of core/ip.ts, which the proxy evaluates); the CIDR, or why not. */
export function checkCidr(text: unknown): Cidr | string {
  if (typeof text !== "string" || text === "") return "must be a CIDR such as 10.0.0.0/8 or fd00::/8";
  return parseCidr(text) ?? cidrProblem(text)!;
}

function validateNetworks(c: Collector, spec: Obj): void {
  const networks = c.array(spec, "networks", "spec.networks");
  if (networks.length === 0) c.error("spec.networks", "must list at least one network");
  networks.forEach((n, i) => {
    const f = `spec.networks[${i}]`;
    if (!isObj(n)) return c.error(f, "must be an object with cidr and optional except");
    const cidr = checkCidr(n.cidr);
    if (typeof cidr === "string") c.error(`${f}.cidr`, cidr);
    else if (cidr.prefix === 0) c.warn(`${f}.cidr ${String(n.cidr)} matches every IPv${cidr.family} address`);
    c.array(n, "except", `${f}.except`).forEach((e, j) => {
      const ef = `${f}.except[${j}]`;
      const ex = checkCidr(e);
      if (typeof ex === "string") return c.error(ef, ex);
      if (typeof cidr === "string") return;
      if (ex.family !== cidr.family) return c.error(ef, `${String(e)} is IPv${ex.family} but the network ${String(n.cidr)} is IPv${cidr.family}`);
      if (!cidrWithin(ex, cidr)) {
        c.error(ef, `${String(e)} is not inside ${String(n.cidr)}; an exception must narrow its network`);
      }
    });
  });
}

/**
 * An identity pattern: "*" alone, or DNS labels where a whole label may be "*" (one label).
 * Returns a message when malformed.
 */
export function checkIdentityPattern(id: unknown): string | undefined {
  if (typeof id !== "string" || id === "") return "must be a non-empty identity name";
  if (id === "*") return undefined;
  if (id.length > 253) return `${JSON.stringify(id)} is longer than 253 characters`;
  for (const label of id.split(".")) {
    if (label === "*") continue;
    if (label.includes("*")) {
      return `${JSON.stringify(id)} has a malformed wildcard: "*" must be a whole label (e.g. *.shop.serviceaccount.identity.tether.cluster.local)`;
    }
    if (!DNS1123_LABEL.test(label)) return `${JSON.stringify(id)} is not a DNS-style identity name (lowercase labels separated by dots)`;
  }
  return undefined;
}

function validateMeshTls(c: Collector, spec: Obj): void {
  const identities = c.array(spec, "identities", "spec.identities");
  const refs = c.array(spec, "identityRefs", "spec.identityRefs");
  if (identities.length === 0 && refs.length === 0) {
    c.error("spec.identities", "at least one identity or identityRef is required (an empty list would match nobody)");
  }
  identities.forEach((id, i) => {
    const bad = checkIdentityPattern(id);
    if (bad) c.error(`spec.identities[${i}]`, bad);
    else if (id === "*") c.warn(`spec.identities[${i}] "*" allows every authenticated client`);
  });
  refs.forEach((r, i) => {
    const f = `spec.identityRefs[${i}]`;
    if (!isObj(r)) return c.error(f, "must be an object with kind and name");
    const kind = c.string(r, "kind", `${f}.kind`, true);
    if (kind !== undefined && !(IDENTITY_REF_KINDS as readonly string[]).includes(kind)) {
      c.error(`${f}.kind`, `unknown kind ${JSON.stringify(kind)}; identityRefs may name a ServiceAccount or a Namespace`);
    }
    checkRefGroup(c, r, f);
    const name = c.string(r, "name", `${f}.name`, true);
    if (name !== undefined && !DNS1123_LABEL.test(name)) c.error(`${f}.name`, `${JSON.stringify(name)} is not a valid ${kind ?? "object"} name`);
    const ns = r.namespace;
    if (ns !== undefined && (typeof ns !== "string" || !DNS1123_LABEL.test(ns))) c.error(`${f}.namespace`, "must be a namespace name");
  });
}

function checkRefGroup(c: Collector, ref: Obj, field: string): void {
  const kind = ref.kind;
  const group = ref.group;
  if (typeof kind !== "string" || !(kind in KIND_GROUP) || group === undefined || group === null) return;
  const want = KIND_GROUP[kind]!;
  const ok = group === want || (want === "" && group === "core");
  if (!ok) c.error(`${field}.group`, `${kind} belongs to group ${JSON.stringify(want)}, not ${JSON.stringify(group)}`);
}

function validateAuthorizationPolicy(c: Collector, spec: Obj, namespace: string | undefined): void {
  const target = spec.targetRef;
  if (!isObj(target)) c.error("spec.targetRef", "is required: the Server, Namespace, HTTPRoute or GRPCRoute this policy applies to");
  else {
    const kind = c.string(target, "kind", "spec.targetRef.kind", true);
    if (kind !== undefined && !(TARGET_KINDS as readonly string[]).includes(kind)) {
      c.error("spec.targetRef.kind", `unknown kind ${JSON.stringify(kind)}; a policy may target ${TARGET_KINDS.join(", ")}`);
    }
    checkRefGroup(c, target, "spec.targetRef");
    const name = c.string(target, "name", "spec.targetRef.name", true);
    const tns = target.namespace;
    if (tns !== undefined && tns !== null && tns !== namespace) {
      c.error("spec.targetRef.namespace", "a policy can only target resources in its own namespace");
    }
    if (kind === "Namespace" && name !== undefined && namespace !== undefined && name !== namespace) {
      c.error("spec.targetRef.name", `a policy in namespace ${namespace} can only target Namespace ${namespace}`);
    }
  }
  const refs = c.array(spec, "requiredAuthenticationRefs", "spec.requiredAuthenticationRefs");
  if (refs.length === 0) {
    c.error(
      "spec.requiredAuthenticationRefs",
      "must list at least one MeshTLSAuthentication, NetworkAuthentication or ServiceAccount (to allow any client, reference a NetworkAuthentication of 0.0.0.0/0 and ::/0)",
    );
  }
  let networkRefs = 0;
  let identityRefs = 0;
  refs.forEach((r, i) => {
    const f = `spec.requiredAuthenticationRefs[${i}]`;
    if (!isObj(r)) return c.error(f, "must be an object with kind and name");
    const kind = c.string(r, "kind", `${f}.kind`, true);
    c.string(r, "name", `${f}.name`, true);
    checkRefGroup(c, r, f);
    if (kind === undefined) return;
    if (!(AUTHENTICATION_KINDS as readonly string[]).includes(kind)) {
      return c.error(`${f}.kind`, `unknown kind ${JSON.stringify(kind)}; use ${AUTHENTICATION_KINDS.join(", ")}`);
    }
    if (kind === "NetworkAuthentication") networkRefs++;
    else identityRefs++;
    const rns = r.namespace;
    if (kind !== "ServiceAccount" && rns !== undefined && rns !== null && rns !== namespace) {
      c.error(`${f}.namespace`, `a ${kind} must be in the policy's namespace`);
    }
  });
  // Every required ref must hold, so two of the same sort would demand a client be in two places
  // (or two identities) at once; list them in one resource instead.
  if (networkRefs > 1) c.error("spec.requiredAuthenticationRefs", "at most one NetworkAuthentication; list all networks in one");
  if (identityRefs > 1) {
    c.error("spec.requiredAuthenticationRefs", "at most one MeshTLSAuthentication or ServiceAccount; list several identities in one MeshTLSAuthentication");
  }
}

function validateServer(c: Collector, spec: Obj): void {
  validateSelector(c, spec.podSelector, "spec.podSelector");
  const port = spec.port;
  if (typeof port === "number") {
    if (!Number.isInteger(port) || port < 1 || port > 65535) c.error("spec.port", `${port} is not a port number (1-65535)`);
  } else if (typeof port === "string") {
    if (port.length > 15 || !IANA_SVC_NAME.test(port) || !/[a-z]/.test(port)) {
      c.error("spec.port", `${JSON.stringify(port)} is not a container port name (1-15 lowercase letters, digits and '-', with a letter)`);
    }
  } else c.error("spec.port", "is required: a container port number or name");
  const access = spec.accessPolicy;
  if (access !== undefined && access !== null && access !== "deny" && access !== "audit") c.error("spec.accessPolicy", 'must be "deny" or "audit"');
  else if (access === "audit") c.warn("spec.accessPolicy audit allows every request; denials are only logged and counted");
  const proto = spec.proxyProtocol;
  if (proto !== undefined && proto !== null && !(PROXY_PROTOCOLS as readonly string[]).includes(proto as string)) {
    c.error("spec.proxyProtocol", `must be one of ${PROXY_PROTOCOLS.join(", ")}`);
  }
}

function validateHeaders(c: Collector, m: Obj, field: string): void {
  c.array(m, "headers", `${field}.headers`).forEach((h, k) => {
    const hf = `${field}.headers[${k}]`;
    if (!isObj(h)) return c.error(hf, "must be an object with name and value");
    const name = c.string(h, "name", `${hf}.name`, true);
    if (name !== undefined && !HEADER_NAME.test(name)) c.error(`${hf}.name`, `${JSON.stringify(name)} is not an HTTP header name`);
    const value = c.string(h, "value", `${hf}.value`, true);
    const type = h.type ?? "Exact";
    if (type !== "Exact" && type !== "RegularExpression") c.error(`${hf}.type`, "must be Exact or RegularExpression");
    else if (type === "RegularExpression" && value !== undefined) c.regex(value, `${hf}.value`);
  });
}

function validateRoute(c: Collector, kind: "HTTPRoute" | "GRPCRoute", spec: Obj): void {
  const parents = c.array(spec, "parentRefs", "spec.parentRefs");
  parents.forEach((p, i) => {
    const f = `spec.parentRefs[${i}]`;
    if (!isObj(p)) return c.error(f, "must be an object with name");
    c.string(p, "name", `${f}.name`, true);
    c.string(p, "kind", `${f}.kind`, false);
    c.string(p, "group", `${f}.group`, false);
    const ns = c.string(p, "namespace", `${f}.namespace`, false);
    if (ns !== undefined && !DNS1123_LABEL.test(ns)) c.error(`${f}.namespace`, `${JSON.stringify(ns)} is not a namespace name`);
    const port = p.port;
    if (port !== undefined && port !== null && (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535)) {
      c.error(`${f}.port`, "must be a port number (1-65535)");
    }
  });
  const serverParents = parents.filter((p) => isObj(p) && p.kind === "Server" && (p.group === undefined || p.group === POLICY_GROUP));
  if (serverParents.length === 0) c.warn(`the ${kind} has no Server parentRef (kind: Server, group: ${POLICY_GROUP}); tether ignores it`);
  c.array(spec, "rules", "spec.rules").forEach((r, i) => {
    const rf = `spec.rules[${i}]`;
    if (!isObj(r)) return c.error(rf, "must be an object");
    c.array(r, "matches", `${rf}.matches`).forEach((m, j) => {
      const f = `${rf}.matches[${j}]`;
      if (!isObj(m)) return c.error(f, "must be an object");
      validateHeaders(c, m, f);
      if (kind === "HTTPRoute") validateHttpMatch(c, m, f);
      else validateGrpcMatch(c, m, f);
    });
  });
}

function validateHttpMatch(c: Collector, m: Obj, f: string): void {
  if (m.path !== undefined && m.path !== null) {
    if (!isObj(m.path)) c.error(`${f}.path`, "must be an object with type and value");
    else {
      const type = m.path.type ?? "PathPrefix";
      const value = c.string(m.path, "value", `${f}.path.value`, false) ?? "/";
      if (type !== "Exact" && type !== "PathPrefix" && type !== "RegularExpression") {
        c.error(`${f}.path.type`, "must be Exact, PathPrefix or RegularExpression");
      } else if (type === "RegularExpression") c.regex(value, `${f}.path.value`);
      else if (!value.startsWith("/")) c.error(`${f}.path.value`, "must start with /");
    }
  }
  if (m.method !== undefined && m.method !== null && !HTTP_METHODS.includes(m.method as string)) {
    c.error(`${f}.method`, `must be one of ${HTTP_METHODS.join(", ")}`);
  }
}

function validateGrpcMatch(c: Collector, m: Obj, f: string): void {
  if (m.method === undefined || m.method === null) return;
  if (!isObj(m.method)) return c.error(`${f}.method`, "must be an object with service and/or method");
  const type = m.method.type ?? "Exact";
  const service = c.string(m.method, "service", `${f}.method.service`, false);
  const method = c.string(m.method, "method", `${f}.method.method`, false);
  if (service === undefined && method === undefined) c.error(`${f}.method`, "must set service, method or both");
  if (type === "RegularExpression") {
    if (service !== undefined) c.regex(service, `${f}.method.service`);
    if (method !== undefined) c.regex(method, `${f}.method.method`);
  } else if (type === "Exact") {
    if (service !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/.test(service)) {
      c.error(`${f}.method.service`, `${JSON.stringify(service)} is not a gRPC service name (package.Service)`);
    }
    if (method !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(method)) {
      c.error(`${f}.method.method`, `${JSON.stringify(method)} is not a gRPC method name`);
    }
  } else c.error(`${f}.method.type`, "must be Exact or RegularExpression");
}

/** Validates one policy.tether.io resource or Gateway API route. Unknown kinds are an error. */
export function validatePolicyResource(obj: unknown): ValidationResult {
  const c = new Collector();
  if (!isObj(obj)) {
    c.error("", "must be an object");
    return c;
  }
  const meta = isObj(obj.metadata) ? obj.metadata : undefined;
  if (!meta) c.error("metadata", "is required");
  else {
    const name = c.string(meta, "name", "metadata.name", true);
    if (name !== undefined && (name.length > 253 || !DNS1123_SUBDOMAIN.test(name))) c.error("metadata.name", `${JSON.stringify(name)} is not a DNS subdomain name`);
  }
  const namespace = meta && typeof meta.namespace === "string" ? meta.namespace : undefined;
  const apiVersion = obj.apiVersion;
  if (apiVersion !== undefined && typeof obj.kind === "string" && obj.kind in KIND_GROUP) {
    const group = typeof apiVersion === "string" && apiVersion.includes("/") ? apiVersion.slice(0, apiVersion.indexOf("/")) : "";
    if (group !== KIND_GROUP[obj.kind]) c.error("apiVersion", `${obj.kind} belongs to group ${KIND_GROUP[obj.kind]}, not ${JSON.stringify(apiVersion)}`);
  }
  const spec = obj.spec;
  if (!isObj(spec)) {
    c.error("spec", "is required");
    return c;
  }
  switch (obj.kind) {
    case "Server":
      validateServer(c, spec);
      break;
    case "AuthorizationPolicy":
      validateAuthorizationPolicy(c, spec, namespace);
      break;
    case "MeshTLSAuthentication":
      validateMeshTls(c, spec);
      break;
    case "NetworkAuthentication":
      validateNetworks(c, spec);
      break;
    case "HTTPRoute":
    case "GRPCRoute":
      validateRoute(c, obj.kind, spec);
      break;
    default:
      c.error("kind", `unknown kind ${JSON.stringify(obj.kind)}; expected Server, AuthorizationPolicy, MeshTLSAuthentication, NetworkAuthentication, HTTPRoute or GRPCRoute`);
  }
  return { errors: c.errors, warnings: c.warnings };
}
