/**
 * Balancers registered by name (like grpc-js load-balancing policies), so configuration selects
 * one with a string and new policies plug in without touching their callers.
 */
import { UsageError } from "../../core/errors.js";
import type { Balancer, BalancerOptions } from "./types.js";

export type BalancerFactory = <E>(options: BalancerOptions<E>) => Balancer<E>;

const factories = new Map<string, BalancerFactory>();

export function registerBalancer(name: string, factory: BalancerFactory): void {
  factories.set(name, factory);
}

export function balancerNames(): string[] {
  return [...factories.keys()].sort();
}

export function createBalancer<E>(name: string, options: BalancerOptions<E>): Balancer<E> {
  const factory = factories.get(name);
  if (!factory) {
    throw new UsageError(
      "BALANCER_UNKNOWN",
      `unknown balancer "${name}": use one of ${balancerNames().join(", ")}`,
    );
  }
  return factory(options);
}
