/**
 * The programs a benchmark runs besides node, checked before it starts, so a missing one is named
 * with the Debian package that brings it instead of failing half-way with an empty reason.
 */
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

export interface Tool {
  command: string;
  /** The Debian package that installs `command`. */
  debianPackage: string;
}

function onPath(command: string, path = process.env.PATH ?? ""): boolean {
  return path.split(delimiter).some((dir) => {
    try {
      accessSync(join(dir || ".", command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** What is missing, as one message naming the packages to install; undefined when nothing is. */
export function missingTools(bench: string, tools: readonly Tool[], path?: string): string | undefined {
  const missing = tools.filter((t) => !onPath(t.command, path));
  if (missing.length === 0) return undefined;
  const packages = [...new Set(missing.map((t) => t.debianPackage))].join(" ");
  return `bench ${bench} needs ${missing.map((t) => `${t.command} (Debian package ${t.debianPackage})`).join(" and ")}, not found on PATH: install with  sudo apt-get install ${packages}`;
}
