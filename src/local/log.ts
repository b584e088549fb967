/** The substrate's logger: pino JSON on stderr with `component` bound; TETHER_LOG_LEVEL sets the level. */
import { pino, type Logger } from "pino";

export type { Logger };

export function localLogger(component = "local"): Logger {
  return pino({ level: process.env.TETHER_LOG_LEVEL ?? "info" }, pino.destination(2)).child({ component });
}

export const silentLogger: Logger = pino({ level: "silent" });
