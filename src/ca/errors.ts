/**
 * Refusals of the Certify API. `status` is the gRPC status class the refusal maps to; `code` is
 * the stable tether code that tests and users search for.
 */
import { TetherError } from "../core/errors.js";

export type RefusalStatus = "UNAUTHENTICATED" | "PERMISSION_DENIED" | "INVALID_ARGUMENT";

export class CertifyError extends TetherError {
  readonly status: RefusalStatus;

  constructor(status: RefusalStatus, code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.status = status;
  }
}

export const unauthenticated = (code: string, message: string): CertifyError => new CertifyError("UNAUTHENTICATED", code, message);
export const permissionDenied = (code: string, message: string): CertifyError => new CertifyError("PERMISSION_DENIED", code, message);
export const invalidArgument = (code: string, message: string): CertifyError => new CertifyError("INVALID_ARGUMENT", code, message);

/** An issuer folder or trust-anchor bundle that cannot be used; the message says what to fix. */
export class IssuerError extends TetherError {}
