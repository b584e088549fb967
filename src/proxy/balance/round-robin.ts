/**
 * Round-robin: always the least recently picked ready endpoint. Kept beside peak-EWMA so the demo
 * and benchmarks can compare the two honestly (same backoff, same endpoint handling).
 */
import { BaseBalancer, type EndpointState } from "./endpoint-set.js";

export class RoundRobinBalancer<E> extends BaseBalancer<E> {
  readonly name = "round-robin";

  protected override choose(): EndpointState<E> {
    return this.leastRecent();
  }
}
