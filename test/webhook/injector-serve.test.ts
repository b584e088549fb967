import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { randomUUID } from "node:crypto";
import { createInterface } from "node:readline";
import { startKubeApiFixture, type KubeApiFixture } from "../support/kube-api-fixture.js";
import { componentConfig, defaultInstallSettings } from "../../src/cli/install/render.js";
import { defaultInjectionSettings } from "../../src/webhook/settings.js";
import { makeServingPair } from "./certs.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
let fx: KubeApiFixture;
let dir: string;
let child: ChildProcess;
let port: number;
let ca: string;

before(async () => {
  fx = await startKubeApiFixture();
  fx.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: "shop", labels: { "tether.io/inject": "enabled" }, annotations: { "config.tether.io/default-inbound-policy": "deny" } } });
  fx.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: "plain" } });
  fx.apply({ apiVersion: "v1", kind: "Pod", metadata: { name: "web-1", namespace: "shop", labels: { app: "web" } }, spec: { containers: [{ name: "app", ports: [{ name: "grpc", containerPort: 9000 }] }] } });
  fx.apply({ apiVersion: "v1", kind: "Pod", metadata: { name: "db-1", namespace: "shop", labels: { app: "db" } }, spec: { containers: [{ name: "db", ports: [{ containerPort: 5432 }] }] } });
  dir = mkdtempSync(join(tmpdir(), "tether-injector-"));
  const pair = makeServingPair(dir, "serving");
  ca = pair.cert;
  copyFileSync(pair.certFile, join(dir, "tls.crt"));
  copyFileSync(pair.keyFile, join(dir, "tls.key"));
  writeFileSync(join(dir, "config.json"), componentConfig(defaultInstallSettings(defaultInjectionSettings({ trustDomain: "example.org", image: "registry.example/tether:test" }))));
  child = spawn(
    process.execPath,
    ["bin/tether.mjs", "injector", "serve", "--config", join(dir, "config.json"), "--tls-dir", dir, "--port", "0", "--admin-port", "0", "--kubeconfig", await fx.kubeconfigPath()],
    { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, TETHER_CONFIG_POLL_MS: "200" } },
  );
  port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the injector did not start within 30 s")), 30_000);
    child.once("exit", (code) => reject(new Error(`the injector exited with ${code}`)));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const entry = JSON.parse(line) as { msg?: string; port?: number; component?: string };
      if (entry.msg === "injector serving") {
        assert.equal(entry.component, "injector");
        clearTimeout(timer);
        resolve(entry.port!);
      }
    });
  });
});

after(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode === null) child.kill("SIGKILL");
  }
  await fx?.close();
  rmSync(dir, { recursive: true, force: true });
});

function post(path: string, body: unknown): Promise<any> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method: "POST", ca, servername: "localhost", headers: { "content-type": "application/json" }, timeout: 10_000 }, (res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () => resolve(JSON.parse(text)));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

function review(kind: { group: string; version: string; kind: string }, namespace: string, object: unknown) {
  return { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: { uid: randomUUID(), kind, namespace, operation: "CREATE", object, userInfo: { username: "test" } } };
}

const pod = { apiVersion: "v1", kind: "Pod", metadata: { generateName: "web-" }, spec: { containers: [{ name: "app", image: "w:1" }] } };

describe("tether injector serve (the process, with the API fixture)", () => {
  it("injects with the namespace's settings read from the API server", async () => {
    const reply = await post("/inject", review({ group: "", version: "v1", kind: "Pod" }, "shop", pod));
    assert.equal(reply.response.allowed, true);
    const patch = JSON.parse(Buffer.from(reply.response.patch, "base64").toString()) as { path: string; value: any }[];
    const proxy = patch.find((op) => op.path === "/spec/containers/0")!.value;
    assert.equal(proxy.image, "registry.example/tether:test");
    const env = Object.fromEntries(proxy.env.filter((e: any) => e.value !== undefined).map((e: any) => [e.name, e.value]));
    assert.equal(env.TETHER_TRUST_DOMAIN, "example.org");
    assert.equal(env.TETHER_DEFAULT_INBOUND_POLICY, "deny");
  });

  it("picks up new settings from its config file without a restart, and refuses broken ones", async () => {
    writeFileSync(join(dir, "config.json"), "{ not json");
    await new Promise((r) => setTimeout(r, 500));
    const image = async () => {
      const reply = await post("/inject", review({ group: "", version: "v1", kind: "Pod" }, "shop", pod));
      const patch = JSON.parse(Buffer.from(reply.response.patch, "base64").toString()) as { path: string; value: any }[];
      return patch.find((op) => op.path === "/spec/containers/0")!.value.image as string;
    };
    assert.equal(await image(), "registry.example/tether:test");
    writeFileSync(join(dir, "config.json"), componentConfig(defaultInstallSettings(defaultInjectionSettings({ trustDomain: "example.org", image: "registry.example/tether:v2" }))));
    const deadline = Date.now() + 10_000;
    while ((await image()) !== "registry.example/tether:v2") {
      assert.ok(Date.now() < deadline, "the new settings were not picked up within 10 s");
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  it("does not inject in an unlabelled namespace", async () => {
    const reply = await post("/inject", review({ group: "", version: "v1", kind: "Pod" }, "plain", pod));
    assert.equal(reply.response.allowed, true);
    assert.equal(reply.response.patch, undefined);
  });

  it("warns about a Server port no selected pod has, using the pods from the API server", async () => {
    const server = { apiVersion: "policy.tether.io/v1alpha1", kind: "Server", metadata: { name: "web", namespace: "shop" }, spec: { podSelector: { matchLabels: { app: "web" } }, port: 5432 } };
    const reply = await post("/validate", review({ group: "policy.tether.io", version: "v1alpha1", kind: "Server" }, "shop", server));
    assert.equal(reply.response.allowed, true);
    assert.deepEqual(reply.response.warnings, ["spec.port 5432 is not a container port of 1 of the 1 selected pods (web-1)"]);
  });
});
