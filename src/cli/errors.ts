import { TetherError, type CodeOf, type ErrorCode } from "../core/errors.js";

/** A command that ran and failed: a remote refusal, or a demo whose check did not hold. */
export class CommandError extends TetherError<CodeOf<"CommandError">> {}

/** A refusal by a tether server, carrying the server's own code (read back from the gRPC details). */
export class RemoteRefusalError extends TetherError<ErrorCode> {}
