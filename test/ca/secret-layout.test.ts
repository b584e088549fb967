import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, readlink, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeSecretFolder } from "../../src/ca/secret-layout.js";

test("writes kubelet's layout and swaps ..data atomically on update", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "tether-secret-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const first = await writeSecretFolder(dir, { "tls.crt": "one", "tls.key": "k1", "extra.txt": "x" }, Date.UTC(2026, 10, 23, 21, 5, 9, 123));
  assert.match(first, /^\.\.2026_11_23_21_05_09\.123\d{6}$/);
  assert.equal(await readlink(join(dir, "..data")), first);
  assert.equal(await readlink(join(dir, "tls.crt")), "..data/tls.crt");
  assert.equal(await readFile(join(dir, "tls.crt"), "utf8"), "one");

  const second = await writeSecretFolder(dir, { "tls.crt": "two", "tls.key": "k2" });
  assert.notEqual(second, first);
  assert.equal(await readlink(join(dir, "..data")), second);
  assert.equal(await readFile(join(dir, "tls.crt"), "utf8"), "two");
  const entries = (await readdir(dir)).sort();
  // The old version and the file it alone had are gone; no temporary link is left behind.
  assert.deepEqual(entries, [second, "..data", "tls.crt", "tls.key"].sort());
});

test("refuses file names that would escape the folder", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "tether-secret-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await assert.rejects(writeSecretFolder(dir, { "../evil": "x" }), /not a plain file name/);
  assert.deepEqual(await readdir(dir), []);
});
