/**
 * Refusals of the Certify API. `status` is the gRPC status class the refusal maps to; `code` is
 * the stable tether code that tests and users search for.
 */
import { TetherError, type CodeOf } from "../core/errors.js";

type CertifyCode = CodeOf<"CertifyError">;

export type RefusalStatus = "UNAUTHENTICATED" | "PERMISSION_DENIED" | "INVALID_ARGUMENT";

export class CertifyError extends TetherError<CertifyCode> {
  readonly status: RefusalStatus;

  constructor(status: RefusalStatus, code: CertifyCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.status = status;
  }
}

export const unauthenticated = (code: CertifyCode, message: string): CertifyError => new CertifyError("UNAUTHENTICATED", code, message);
export const permissionDenied = (code: CertifyCode, message: string): CertifyError => new CertifyError("PERMISSION_DENIED", code, message);
export const invalidArgument = (code: CertifyCode, message: string): CertifyError => new CertifyError("INVALID_ARGUMENT", code, message);

/** An issuer folder or trust-anchor bundle that cannot be used; the message says what to fix. */
export class IssuerError extends TetherError<CodeOf<"IssuerError">> {}
