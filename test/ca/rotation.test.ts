import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { once } from "node:events";
import * as tls from "node:tls";
import { readFile, readlink, readdir } from "node:fs/promises";
import { join } from "node:path";
import { createIssuer, createTrustAnchor, DAY_MS, rotateIssuer, writeIssuerSecret, type KeyAndCert } from "../../src/ca/bootstrap.js";
import { verifyChain } from "../../src/identity/chain.js";
import { pemEncode } from "../../src/identity/pkix.js";
import { startCaFixture, workload, type CaFixture } from "../support/ca-fixture.js";
import { waitFor } from "../support/ca-wait.js";

let f: CaFixture;
before(async () => {
  f = await startCaFixture({ pollMs: 100 });
});
after(async () => {
  await f?.close();
});

const web = workload("web", "shop");

async function certifyOnce(): Promise<{ leafDer: Buffer; chainDer: Buffer[] }> {
  const token = Buffer.from(await f.tokens.mint({ namespace: "shop", serviceAccount: "web" }));
  return f.client.certify({ identity: web.dnsName, token, csrDer: web.csr });
}

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${f.ca.adminPort}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(" ").pop()) : 0;
}

test("swapping ..data to a new issuer under load: zero failed requests, later leaves chain to the new issuer", async () => {
  const oldIssuer = f.ca.issuer();
  let stop = false;
  let ok = 0;
  const failures: unknown[] = [];
  const worker = async (): Promise<void> => {
    while (!stop) {
      try {
        await certifyOnce();
        ok++;
      } catch (err) {
        failures.push(err);
      }
    }
  };
  const workers = Array.from({ length: 6 }, worker);
  await waitFor("some issuances before the swap", () => ok >= 20);
  const before = (await readdir(f.paths.issuerDir)).filter((e) => e.startsWith("..2"));
  const next = await rotateIssuer({ dir: f.dir, commonName: "identity-2.tether.cluster.local" });
  // The swap is the Kubernetes one: a new timestamped folder and ..data renamed onto it.
  const after = (await readdir(f.paths.issuerDir)).filter((e) => e.startsWith("..2"));
  assert.equal(after.length, 1);
  assert.notDeepEqual(after, before);
  assert.equal(await readlink(join(f.paths.issuerDir, "..data")), after[0]);
  await waitFor("the CA to pick up the new issuer", () => f.ca.issuer().fingerprint !== oldIssuer.fingerprint);
  const atSwap = ok;
  await waitFor("issuances after the swap", () => ok >= atSwap + 20);
  stop = true;
  await Promise.all(workers);
  assert.deepEqual(failures, []);

  const res = await certifyOnce();
  const newIssuerCert = new X509Certificate(next.certPem);
  assert.deepEqual(res.chainDer[0], newIssuerCert.raw);
  assert.ok(new X509Certificate(res.leafDer).verify(newIssuerCert.publicKey));
  assert.ok(!new X509Certificate(res.leafDer).verify(oldIssuer.cert.publicKey));
  const chainPem = [res.leafDer, ...res.chainDer].map((d) => pemEncode("CERTIFICATE", d)).join("");
  assert.deepEqual(verifyChain(chainPem, f.anchorsPem, Date.now()), web.identity);
  assert.equal(await metric("tether_identity_issuer_reloads_total", 'result="success",reason=""'), 1);

  // The CA's own serving certificate now comes from the new issuer too.
  const socket = tls.connect({ host: "127.0.0.1", port: f.ca.port, ca: f.anchorsPem, servername: f.ca.serverName, ALPNProtocols: ["h2"] });
  await once(socket, "secureConnect");
  const served = socket.getPeerX509Certificate()!;
  socket.destroy();
  assert.ok(served.verify(newIssuerCert.publicKey));
  assert.match(served.subjectAltName ?? "", /DNS:tether-identity\.tether\.serviceaccount\.identity\.tether\.cluster\.local/);
});

const anchorMaterial = async (): Promise<KeyAndCert> => ({ certPem: f.anchorsPem, keyPem: await readFile(f.paths.anchorKeyPath, "utf8") });

const broken: { name: string; code: string; make: () => Promise<KeyAndCert> }[] = [
  {
    name: "key does not match",
    code: "ISSUER_KEY_MISMATCH",
    make: async () => {
      const a = createIssuer({ anchor: await anchorMaterial(), lifetimeMs: DAY_MS, now: Date.now() });
      const b = createIssuer({ anchor: await anchorMaterial(), lifetimeMs: DAY_MS, now: Date.now() });
      return { certPem: a.certPem, keyPem: b.keyPem };
    },
  },
  { name: "expired", code: "ISSUER_EXPIRED", make: async () => createIssuer({ anchor: await anchorMaterial(), lifetimeMs: DAY_MS, now: Date.now() - 3 * DAY_MS }) },
  {
    name: "signed by a foreign anchor",
    code: "ISSUER_UNTRUSTED",
    make: async () => createIssuer({ anchor: createTrustAnchor({ trustDomain: "cluster.local", lifetimeMs: DAY_MS, now: Date.now() }), lifetimeMs: DAY_MS, now: Date.now() }),
  },
  {
    name: "not a CA",
    code: "ISSUER_NOT_CA",
    make: async () => {
      // A workload leaf (CA:FALSE) with its own key, as if the wrong Secret was mounted.
      const res = await certifyOnce();
      return { certPem: pemEncode("CERTIFICATE", res.leafDer), keyPem: web.privateKey.export({ format: "pem", type: "pkcs8" }).toString() };
    },
  },
  { name: "garbage key", code: "ISSUER_BAD_KEY", make: async () => ({ certPem: (await anchorMaterial()).certPem, keyPem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n" }) },
];

for (const b of broken) {
  test(`a broken issuer (${b.name}) is refused with ${b.code}; the old issuer serves on`, async () => {
    const serving = f.ca.issuer();
    const errorsBefore = await metric("tether_identity_issuer_reloads_total", `result="error",reason="${b.code}"`);
    await writeIssuerSecret(f.paths.issuerDir, await b.make(), f.anchorsPem);
    await waitFor(`reload error ${b.code}`, async () => (await metric("tether_identity_issuer_reloads_total", `result="error",reason="${b.code}"`)) > errorsBefore);
    assert.equal(f.ca.issuer().fingerprint, serving.fingerprint);
    const line = f.logs.find((l) => l.code === b.code && l.msg === "new issuer refused; the previous issuer stays in service");
    assert.ok(line, `a log line names ${b.code}`);
    assert.ok(String(line.reason).length > 30, "the log line says why");
    const res = await certifyOnce();
    assert.deepEqual(res.chainDer[0], serving.cert.raw);
  });
}
