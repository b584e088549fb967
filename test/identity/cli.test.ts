import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { readFile, writeFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { verifyChain } from "../../src/identity/chain.js";
import { workloadIdentity } from "../../src/identity/names.js";
import { identityDemo } from "../../src/cli/identity.js";
import { startCaFixture, type CaFixture } from "../support/ca-fixture.js";

const run = promisify(execFile);
const bin = new URL("../../bin/tether.mjs", import.meta.url).pathname;
let f: CaFixture;
before(async () => {
  f = await startCaFixture();
});
after(async () => {
  await f?.close();
});

test("tether identity certify writes a key and a verifiable chain; inspect describes it", async () => {
  const tokenFile = join(f.dir, "token");
  await writeFile(tokenFile, await f.tokens.mint({ namespace: "shop", serviceAccount: "web" }));
  const out = join(f.dir, "out");
  const certify = await run(process.execPath, [bin, "identity", "certify", "--ca", f.ca.address, "--anchors", f.paths.anchorsPath, "--token", tokenFile, "--service-account", "web", "--namespace", "shop", "--out", out], { timeout: 30_000 });
  assert.match(certify.stdout, /identity\s+web\.shop\.serviceaccount\.identity\.tether\.cluster\.local/);
  assert.match(certify.stdout, /verified\s+yes/);
  assert.equal((await stat(join(out, "tls.key"))).mode & 0o777, 0o600);
  assert.deepEqual(verifyChain(await readFile(join(out, "tls.crt")), await readFile(join(out, "ca.crt")), Date.now()), workloadIdentity("web", "shop"));

  const inspect = await run(process.execPath, [bin, "identity", "inspect", join(out, "tls.crt")], { timeout: 30_000 });
  assert.match(inspect.stdout, /spiffe id\s+spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web/);
  assert.match(inspect.stdout, /issuer\s+O=tether, CN=identity\.tether\.cluster\.local/);
  assert.match(inspect.stdout, /time left\s+2[34]h/);
});

test("tether identity certify with another service account's token fails with the CA's reason", async () => {
  const tokenFile = join(f.dir, "token-api");
  await writeFile(tokenFile, await f.tokens.mint({ namespace: "shop", serviceAccount: "api" }));
  await assert.rejects(
    run(process.execPath, [bin, "identity", "certify", "--ca", f.ca.address, "--anchors", f.paths.anchorsPath, "--token", tokenFile, "--identity", "spiffe://cluster.local/ns/shop/sa/web", "--out", join(f.dir, "x")], { timeout: 30_000 }),
    (err: { code: number; stderr: string }) => err.code === 1 && /IDENTITY_MISMATCH/.test(err.stderr) && /CERTIFY_REFUSED/.test(err.stderr),
  );
});

test("the identity demo certifies two workloads and connects them with mTLS", async () => {
  const lines: string[] = [];
  await identityDemo((l) => lines.push(l));
  const text = lines.join("\n");
  assert.match(text, /client identity\s+web\.shop\.serviceaccount/);
  assert.match(text, /server identity\s+api\.shop\.serviceaccount/);
  assert.match(text, /TLSv1\.3/);
  assert.match(text, /identity demo: OK/);
});
