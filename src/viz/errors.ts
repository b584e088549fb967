import { TetherError, type CodeOf } from "../core/errors.js";

/** A problem with where visibility reads from (targets file, Kubernetes, Prometheus) or a flag. */
export class VizError extends TetherError<CodeOf<"VizError">> {}
