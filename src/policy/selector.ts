/**
 * Kubernetes label selector matching (matchLabels and matchExpressions), as Server.podSelector uses.
 * Callers pass only selectors that validation accepted; an operator it does not know matches nothing.
 */
import type { LabelSelector } from "kubernetes-types/meta/v1.js";

export function selectorMatches(selector: LabelSelector, labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (l[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(l, e.key);
    const values = e.values ?? [];
    switch (e.operator) {
      case "In":
        if (!has || !values.includes(l[e.key]!)) return false;
        break;
      case "NotIn":
        if (has && values.includes(l[e.key]!)) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}
