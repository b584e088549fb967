/**
 * Refusals of the local mesh substrate. Codes are stable so tests and users can match on them;
 * messages say what was wrong and what to run next.
 */
import { TetherError } from "../core/errors.js";

export type LocalErrorCode =
  | "LOCAL_NOT_ROOT"
  | "LOCAL_BAD_NAME"
  | "LOCAL_BAD_CIDR"
  | "LOCAL_SUBNET_OVERLAP"
  | "LOCAL_ADDRESSES_EXHAUSTED"
  | "LOCAL_COMMAND_FAILED"
  | "LOCAL_STATE_BUSY"
  | "LOCAL_STATE_STALE"
  | "LOCAL_STATE_CORRUPT"
  | "LOCAL_POD_EXISTS"
  | "LOCAL_BAD_SERVICE"
  | "LOCAL_DOWN_INCOMPLETE"
  | "LOCAL_TIMEOUT"
  | "LOCAL_CHECK_FAILED";

export class LocalMeshError extends TetherError {
  declare readonly code: LocalErrorCode;

  constructor(code: LocalErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
