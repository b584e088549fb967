/**
 * Typed errors with stable codes. Every refusal in tether is one of these so tests assert on
 * `code` and users can search for it; `message` says what was wrong and what to do.
 */
export class TetherError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Input that does not name a valid identity (service account, namespace, SPIFFE ID, DNS name). */
export class IdentityNameError extends TetherError {}

/** A certificate, key or bundle that cannot be used (malformed, expired, not chaining, mismatched). */
export class CertificateError extends TetherError {}

export function errorCode(err: unknown): string {
  return err instanceof TetherError ? err.code : "INTERNAL";
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
