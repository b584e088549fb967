/**
 * Kubernetes label selectors: the query-string form the API takes, and matching (the API
 * server's selector is applied again locally so a server that ignores it cannot widen a result).
 */
import type { LabelSelector } from "kubernetes-types/meta/v1.js";

export function selectorToQuery(selector: LabelSelector): string {
  const parts = Object.entries(selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of selector.matchExpressions ?? []) {
    const values = (e.values ?? []).join(",");
    if (e.operator === "In") parts.push(`${e.key} in (${values})`);
    else if (e.operator === "NotIn") parts.push(`${e.key} notin (${values})`);
    else if (e.operator === "Exists") parts.push(e.key);
    else if (e.operator === "DoesNotExist") parts.push(`!${e.key}`);
  }
  return parts.join(",");
}

export function selectorMatches(selector: LabelSelector, labels: Record<string, string> = {}): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const value = labels[e.key];
    const ok =
      e.operator === "In" ? has && (e.values ?? []).includes(value!) :
      e.operator === "NotIn" ? !has || !(e.values ?? []).includes(value!) :
      e.operator === "Exists" ? has :
      e.operator === "DoesNotExist" ? !has :
      false;
    if (!ok) return false;
  }
  return true;
}
