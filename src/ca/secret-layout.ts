/**
 * Kubernetes' layout for mounted Secrets (kubelet's AtomicWriter): the files live in a
 * timestamped folder `..2026_11_23_21_45_00.123456789`, `..data` is a symlink to it, and each
 * visible file is a symlink `tls.crt -> ..data/tls.crt`. An update writes a new timestamped
 * folder and renames a temporary symlink over `..data`, so readers see either all old or all
 * new files. `tether ca bootstrap`, issuer rotation and the local mesh all write through here.
 */
import { mkdir, readdir, readlink, rename, rm, symlink, writeFile, lstat } from "node:fs/promises";
import { join } from "node:path";

const DATA = "..data";
const DATA_TMP = "..data_tmp";

function timestampName(ms: number, seq: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2): string => String(n).padStart(w, "0");
  const stamp = `${d.getUTCFullYear()}_${p(d.getUTCMonth() + 1)}_${p(d.getUTCDate())}_${p(d.getUTCHours())}_${p(d.getUTCMinutes())}_${p(d.getUTCSeconds())}`;
  return `..${stamp}.${p(d.getUTCMilliseconds(), 3)}${p(seq, 6)}`;
}

let sequence = 0;

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Atomically replaces the contents of a Secret-style folder with `files` (name -> content).
 * Returns the new timestamped folder's name.
 */
export async function writeSecretFolder(dir: string, files: Record<string, string | Buffer>, now = Date.now()): Promise<string> {
  for (const name of Object.keys(files)) {
    if (name.includes("/") || name.startsWith(".")) throw new Error(`secret key ${JSON.stringify(name)} is not a plain file name`);
  }
  await mkdir(dir, { recursive: true });
  const previous = (await exists(join(dir, DATA))) ? await readlink(join(dir, DATA)) : undefined;
  const folder = timestampName(now, sequence++ % 1_000_000);
  await mkdir(join(dir, folder), { mode: 0o755 });
  for (const [name, content] of Object.entries(files)) {
    await writeFile(join(dir, folder, name), content, { mode: name.endsWith(".key") ? 0o600 : 0o644 });
  }
  await rm(join(dir, DATA_TMP), { force: true });
  await symlink(folder, join(dir, DATA_TMP));
  await rename(join(dir, DATA_TMP), join(dir, DATA));
  for (const name of Object.keys(files)) {
    if (!(await exists(join(dir, name)))) await symlink(join(DATA, name), join(dir, name));
  }
  if (previous && previous !== folder) {
    // Files that the new version no longer has disappear, as with kubelet.
    for (const entry of await readdir(dir)) {
      if (!entry.startsWith(".") && !(entry in files)) {
        const target = await readlink(join(dir, entry)).catch(() => undefined);
        if (target === join(DATA, entry)) await rm(join(dir, entry), { force: true });
      }
    }
    await rm(join(dir, previous), { recursive: true, force: true });
  }
  return folder;
}
