/** Certified workloads for TLS tests: real agents against a real CA fixture. */
import { once } from "node:events";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CertificateAgent } from "../../src/identity/agent.js";
import { systemClock } from "../../src/core/clock.js";
import { workloadIdentity } from "../../src/identity/names.js";
import type { Credentials } from "../../src/identity/tls.js";
import type { CaFixture } from "./ca-fixture.js";

export async function certifiedAgent(f: CaFixture, sa: string, ns: string): Promise<{ agent: CertificateAgent; creds: Credentials }> {
  const tokenFile = join(f.dir, `token-${ns}-${sa}`);
  await writeFile(tokenFile, await f.tokens.mint({ namespace: ns, serviceAccount: sa }));
  const agent = new CertificateAgent({ identity: workloadIdentity(sa, ns), tokenFile, certify: (req) => f.client.certify(req), clock: systemClock });
  const got = once(agent, "certificate") as Promise<[Credentials]>;
  agent.start();
  const [creds] = await got;
  return { agent, creds };
}
