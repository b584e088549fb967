/** Why a forward failed, with whether another endpoint may be tried. */
import { TetherError, type CodeOf } from "../../core/errors.js";

/**
 * Codes: UPSTREAM_CONNECT_FAILED (retryable: no request byte was sent), UPSTREAM_NO_ENDPOINTS,
 * UPSTREAM_RESET (the upstream reset the stream), UPSTREAM_TIMEOUT (deadline or connect timeout),
 * UPSTREAM_PROTOCOL (the upstream broke HTTP).
 */
export class UpstreamError extends TetherError<CodeOf<"UpstreamError">> {
  constructor(
    code: CodeOf<"UpstreamError">,
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** HTTP status for a forward failure: 503 when there was nowhere to send it, 504 on timeout, else 502. */
export function httpStatusFor(err: unknown): number {
  const code = err instanceof UpstreamError ? err.code : "";
  if (code === "UPSTREAM_NO_ENDPOINTS") return 503;
  if (code === "UPSTREAM_TIMEOUT") return 504;
  return 502;
}

/** The `tether-error` header value: the stable code, so clients and operators can search for it. */
export function errorReason(err: unknown): string {
  return err instanceof TetherError ? err.code : "UPSTREAM_FAILED";
}
