/**
 * Status conditions of policy resources, the Kubernetes way: each resource gets an `Accepted`
 * condition (True, or False with a reason and a message saying what to fix); Gateway API routes get
 * one entry per Server parent in status.parents. Pure: `desiredStatuses` says what the status
 * should be, `withTransitionTimes` keeps lastTransitionTime stable when a condition did not change.
 */
import type { Condition, ParentRef } from "../cluster/policy-resources.js";
import { POLICY_KINDS, type PolicyKind } from "../cluster/types.js";
import { invalidity, meshTlsIdentities, nameOf, namespaceOf, refsServer, resolvePolicy, resolveTarget, type PolicySnapshot, type Problem } from "./resolve.js";

export const CONTROLLER_NAME = "policy.tether.io/controller";

export type DesiredCondition = Omit<Condition, "lastTransitionTime">;

export interface ParentStatus {
  parentRef: ParentRef;
  controllerName: string;
  conditions: Condition[];
}

export interface DesiredStatus {
  kind: PolicyKind;
  namespace: string;
  name: string;
  generation?: number;
  /** CRDs: the Accepted condition. Routes: one per Server parentRef. */
  conditions?: DesiredCondition[];
  parents?: { parentRef: ParentRef; conditions: DesiredCondition[] }[];
  /** The status currently on the object (to keep others' route parents and transition times). */
  current: unknown;
}

function accepted(problem: Problem | undefined, generation: number | undefined): DesiredCondition {
  const base = problem
    ? { type: "Accepted", status: "False" as const, reason: problem.reason, message: problem.message }
    : { type: "Accepted", status: "True" as const, reason: "Accepted", message: "" };
  return generation === undefined ? base : { ...base, observedGeneration: generation };
}

export function desiredStatuses(snap: PolicySnapshot, trustDomain: string): DesiredStatus[] {
  const out: DesiredStatus[] = [];
  for (const kind of POLICY_KINDS) {
    for (const obj of snap.list(kind)) {
      const meta = obj as { metadata: { generation?: number } };
      const generation = meta.metadata.generation;
      const base = { kind, namespace: namespaceOf(obj), name: nameOf(obj), generation, current: (obj as { status?: unknown }).status };
      switch (obj.kind) {
        case "Server":
        case "NetworkAuthentication":
          out.push({ ...base, conditions: [accepted(invalidity(obj), generation)] });
          break;
        case "MeshTLSAuthentication":
          out.push({ ...base, conditions: [accepted(invalidity(obj) ?? meshTlsIdentities(obj, trustDomain).problem, generation)] });
          break;
        case "AuthorizationPolicy": {
          const problem = invalidity(obj) ?? resolveTarget(snap, obj).problem ?? resolvePolicy(snap, obj, trustDomain).problem;
          out.push({ ...base, conditions: [accepted(problem, generation)] });
          break;
        }
        case "HTTPRoute":
        case "GRPCRoute": {
          const ns = namespaceOf(obj);
          const bad = invalidity(obj);
          const parentRefs: unknown = (obj as { spec?: { parentRefs?: unknown } }).spec?.parentRefs;
          const parents = (Array.isArray(parentRefs) ? (parentRefs as ParentRef[]) : [])
            .filter((p) => typeof p === "object" && p !== null)
            // An invalid route may name its parent with anything: only names can be looked up.
            .filter((p) => p.kind === "Server" && typeof p.name === "string" && (p.namespace === undefined || typeof p.namespace === "string"))
            .map((parentRef) => {
              const server = snap.get("Server", parentRef.namespace ?? ns, parentRef.name);
              const problem: Problem | undefined =
                bad ??
                (!server || !refsServer(parentRef, ns, server)
                  ? { reason: "NoMatchingParent", message: `Server ${parentRef.namespace ?? ns}/${parentRef.name} does not exist` }
                  : invalidity(server)
                    ? { reason: "NoMatchingParent", message: `Server ${parentRef.namespace ?? ns}/${parentRef.name} is invalid` }
                    : undefined);
              return { parentRef, conditions: [accepted(problem, generation)] };
            });
          if (parents.length > 0) out.push({ ...base, parents });
          break;
        }
      }
    }
  }
  return out;
}

function timed(desired: DesiredCondition[], previous: Condition[] | undefined, now: string): Condition[] {
  return desired.map((d) => {
    const prev = previous?.find((p) => p.type === d.type);
    return { ...d, lastTransitionTime: prev && prev.status === d.status ? prev.lastTransitionTime : now };
  });
}

/**
 * The status object to write: transition times kept when unchanged, other controllers' route
 * parents kept. `lastWritten` (what this controller wrote last, which the cache may not show yet)
 * takes precedence over the object's status for this controller's own conditions.
 */
export function withTransitionTimes(d: DesiredStatus, now: string, lastWritten?: unknown): unknown {
  const current = (d.current ?? {}) as { conditions?: Condition[]; parents?: ParentStatus[] };
  const mine = (lastWritten ?? d.current ?? {}) as { conditions?: Condition[]; parents?: ParentStatus[] };
  if (d.conditions) return { conditions: timed(d.conditions, mine.conditions, now) };
  const ours = (mine.parents ?? []).filter((p) => p.controllerName === CONTROLLER_NAME);
  const others = (current.parents ?? []).filter((p) => p.controllerName !== CONTROLLER_NAME);
  return {
    parents: [
      ...others,
      ...(d.parents ?? []).map((p) => ({
        parentRef: p.parentRef,
        controllerName: CONTROLLER_NAME,
        conditions: timed(p.conditions, ours.find((o) => JSON.stringify(o.parentRef) === JSON.stringify(p.parentRef))?.conditions, now),
      })),
    ],
  };
}
