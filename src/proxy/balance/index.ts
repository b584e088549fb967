/** Entry point of the balancers: registers the built-in policies and re-exports the contract. */
import { PeakEwmaBalancer } from "./peak-ewma.js";
import { RoundRobinBalancer } from "./round-robin.js";
import { registerBalancer } from "./registry.js";

registerBalancer("peak-ewma", (options) => new PeakEwmaBalancer(options));
registerBalancer("round-robin", (options) => new RoundRobinBalancer(options));

export { PeakEwmaBalancer, RoundRobinBalancer };
export { balancerNames, createBalancer, registerBalancer, type BalancerFactory } from "./registry.js";
export * from "./types.js";
