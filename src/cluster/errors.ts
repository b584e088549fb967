/**
 * Errors of the cluster adapter, with stable codes (the cluster folder imports nothing of the
 * project, so it has its own small class rather than identity's TetherError; the shape is the same).
 */
export class ClusterError extends Error {
  readonly code: string;
  /** The HTTP status from the API server, when the error came from one. */
  readonly statusCode: number | undefined;

  constructor(code: string, message: string, options?: { cause?: unknown; statusCode?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.statusCode = options?.statusCode;
    this.name = new.target.name;
  }
}
