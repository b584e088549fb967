/**
 * N pods (network namespaces) on a fresh bridge and subnet of their own, removed after the test
 * even when it fails. For e2e tests of anything that runs in pods (the proxy's too):
 *
 *   const h = await podsOnFreshBridge(t, ["client", "server"]);
 *   await h.substrate.exec(h.pod("server"), argv);
 *
 * Needs root; `netnsSkip` gives the reason to skip when it is missing.
 */
import type { TestContext } from "node:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { LocalSubstrate } from "../../src/local/substrate.js";
import { pickFreeSubnet } from "../../src/local/network.js";
import { errorCode } from "../../src/core/errors.js";
import type { Pod } from "../../src/local/pods.js";

/** Why netns tests cannot run here, or undefined when they can. */
export const netnsSkip: string | undefined = (() => {
  if (process.getuid?.() !== 0) return "needs root (network namespaces, iptables)";
  for (const tool of ["ip", "iptables", "nsenter", "setpriv"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) return `needs ${tool}`;
  }
  return undefined;
})();

export interface NetnsHarness {
  substrate: LocalSubstrate;
  instance: string;
  stateDir: string;
  pods: Pod[];
  pod(name: string): Pod;
}

/** A unique instance name (bridge name) for a test. */
export function testInstance(): string {
  return `t${randomBytes(4).toString("hex")}`;
}

/** Brings up a bridge on a free subnet (retrying on a clash with a parallel test). */
export async function freshSubstrate(t: TestContext, instance = testInstance()): Promise<{ substrate: LocalSubstrate; stateDir: string }> {
  const stateDir = mkdtempSync(join(tmpdir(), "tether-netns-"));
  let substrate: LocalSubstrate | undefined;
  // One hook, in this order: remove the mesh, then its state folder (even if removal failed).
  t.after(async () => {
    try {
      await substrate?.down(500);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
  for (let attempt = 0; ; attempt++) {
    try {
      substrate = await LocalSubstrate.up({ stateDir, instance, podSubnet: await pickFreeSubnet() });
      return { substrate, stateDir };
    } catch (err) {
      if (errorCode(err) !== "LOCAL_SUBNET_OVERLAP" || attempt >= 4) throw err;
    }
  }
}

export async function podsOnFreshBridge(t: TestContext, names: readonly string[]): Promise<NetnsHarness> {
  const instance = testInstance();
  const { substrate, stateDir } = await freshSubstrate(t, instance);
  const pods = await Promise.all(names.map((n) => substrate.createPod(n)));
  return {
    substrate,
    instance,
    stateDir,
    pods,
    pod(name) {
      const pod = pods.find((p) => p.name === name);
      if (!pod) throw new Error(`no pod ${name} in this harness`);
      return pod;
    },
  };
}

/** Resolves once the file (a process's log) contains `text`; fails after `timeoutMs`. */
export async function waitForLog(path: string, text: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    let content = "";
    try {
      content = readFileSync(path, "utf8");
    } catch {
      // not created yet
    }
    if (content.includes(text)) return;
    if (Date.now() > until) throw new Error(`"${text}" did not appear in ${path} within ${timeoutMs} ms: ${content.slice(-500)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
