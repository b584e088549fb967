/** The policy controller: compiles policy resources per pod port and serves InboundPolicies/WatchPort. */
export { compileInboundServer, effectiveDefault, probePaths, serversFor, DEFAULT_SETTINGS, isDefaultPolicy, type PolicySettings, type EffectiveDefault } from "./compile.js";
export { startPolicyServer, parseWorkload, type PolicyServer, type PolicyServerOptions } from "./server.js";
export { PolicyWatcher } from "./watcher.js";
export { desiredStatuses, withTransitionTimes, CONTROLLER_NAME } from "./status.js";
export { PolicyMetrics } from "./metrics.js";
export type { PolicySnapshot } from "./resolve.js";
