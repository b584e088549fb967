/**
 * Refusals of the local mesh (substrate and runner). Codes are stable (src/core/errors.ts lists
 * them) so tests and users can match on them; messages say what was wrong and what to run next.
 */
import { TetherError, type CodeOf } from "../core/errors.js";

export type LocalErrorCode = CodeOf<"LocalMeshError">;

export class LocalMeshError extends TetherError<LocalErrorCode> {}
