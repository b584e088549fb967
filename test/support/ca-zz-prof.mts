import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bootstrapCa } from "../../src/ca/bootstrap.ts";
import { loadIssuerFolder } from "../../src/ca/issuer-folder.ts";
import { Certifier } from "../../src/ca/certify.ts";
import { checkCsr } from "../../src/ca/csr-policy.ts";
import { systemClock } from "../../src/identity/clock.ts";
import { workload } from "./ca-fixture.ts";
const dir = await mkdtemp(join(tmpdir(), "perf-"));
const b = await bootstrapCa({ dir, trustDomain: "cluster.local" });
const issuer = await loadIssuerFolder(b.issuerDir, undefined, Date.now());
const c = new Certifier({ trustDomain: "cluster.local", lifetimeMs: 86400000, clockSkewMs: 20000, tokenValidator: null as any, issuer: () => issuer, clock: systemClock });
const w = workload("web", "shop");
const want = { identity: w.identity, dnsName: w.dnsName, spiffeId: w.spiffeId };
const acc = checkCsr(w.csr, want);
const t = performance.now(); let n = 0;
while (performance.now() - t < 3000) { for (let i = 0; i < 100; i++) c.issue(w.identity, acc.spki, acc.keyBits); n += 100; }
console.log("issue/s", Math.round(n / 3));
