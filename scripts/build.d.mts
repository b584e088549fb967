// Types of scripts/build.mjs for the TypeScript that imports it (the local mesh, the bench, tests).
import type { BuildOptions, Metafile } from "esbuild";

export declare const ROOT: string;
export declare const DIST: string;
/** Output name (without .mjs) -> source file, relative to ROOT. */
export type EntryPoints = Record<string, string>;
export declare const PRODUCT_ENTRIES: EntryPoints;
export interface BuildTarget {
  /** Absolute; inside ROOT. */
  outdir?: string;
  entryPoints?: EntryPoints;
}
export declare function buildOptions(target: Required<BuildTarget>): BuildOptions;
export declare function build(target?: BuildTarget & { clean?: boolean }): Promise<{ outdir: string; entries: Record<string, string>; metafile: Metafile }>;
export declare function staleReason(target?: BuildTarget): Promise<string | undefined>;
export declare function ensureBuilt(target?: BuildTarget): Promise<Record<string, string>>;
