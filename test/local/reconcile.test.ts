import { test } from "node:test";
import assert from "node:assert/strict";
import type { ManifestObject } from "../../src/cluster/manifests.js";
import { desiredPods } from "../../src/local/reconcile.js";

const deployment = {
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "web", namespace: "shop" },
  spec: {
    replicas: 2,
    template: {
      metadata: { labels: { app: "web" } },
      spec: {
        serviceAccountName: "web",
        containers: [
          {
            name: "app",
            command: ["python3", "-m", "http.server"],
            args: ["8080"],
            workingDir: "/srv/www",
            env: [{ name: "GREETING", value: "hello" }, { name: "FROM_FIELD", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } }],
            ports: [{ name: "http", containerPort: 8080 }],
          },
        ],
      },
    },
  },
} as unknown as ManifestObject;

test("a Deployment's container runs as written: command and args, env values, working directory", () => {
  const pods = desiredPods([deployment], new Set(["shop"]), ["node", "tether.mjs"]);
  assert.deepEqual(pods.map((p) => p.name), ["web-0", "web-1"]);
  const pod = pods[0]!;
  assert.deepEqual(pod.app, ["python3", "-m", "http.server", "8080"]);
  assert.deepEqual(pod.appEnv, { GREETING: "hello" });
  assert.equal(pod.workingDir, "/srv/www");
  assert.deepEqual(pod.ports, { http: 8080 });
  assert.equal(pod.meshed, true);
});

test("`tether` as the command runs this tether; no env or workingDir leaves them out", () => {
  const [pod] = desiredPods(
    [{ kind: "Pod", metadata: { name: "echo", namespace: "plain" }, spec: { containers: [{ name: "app", command: ["tether"], args: ["local", "app", "echo-server"] }] } } as unknown as ManifestObject],
    new Set(),
    ["node", "tether.mjs"],
  );
  assert.deepEqual(pod!.app, ["node", "tether.mjs", "local", "app", "echo-server"]);
  assert.equal(pod!.appEnv, undefined);
  assert.equal(pod!.workingDir, undefined);
  assert.equal(pod!.meshed, false);
});
