/** Errors of the cluster adapter (API server, kubeconfig, manifest folder), with stable codes. */
import { TetherError, type CodeOf } from "../core/errors.js";

export class ClusterError extends TetherError<CodeOf<"ClusterError">> {
  /** The HTTP status from the API server, when the error came from one. */
  readonly statusCode: number | undefined;

  constructor(code: CodeOf<"ClusterError">, message: string, options?: { cause?: unknown; statusCode?: number }) {
    super(code, message, options);
    this.statusCode = options?.statusCode;
  }
}
