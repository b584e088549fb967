#!/usr/bin/env node
// Before `npm start`: the local mesh needs root and a few Debian tools (ip, iptables, nsenter,
// setpriv). Installs the missing ones with apt-get, or says plainly what to run.
import { spawnSync } from "node:child_process";

const needs = { ip: "iproute2", iptables: "iptables", nsenter: "util-linux", setpriv: "util-linux" };
const missing = [...new Set(Object.entries(needs).filter(([tool]) => spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0).map(([, pkg]) => pkg))];

if (process.getuid?.() !== 0) {
  console.error("tether local demo needs root (it creates network namespaces and iptables rules).\nRun: sudo npm start");
  process.exit(1);
}
if (missing.length > 0) {
  console.log(`installing ${missing.join(", ")} (needed by the local mesh)…`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const update = spawnSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
  const install = update.status === 0 && spawnSync("apt-get", ["install", "-y", "-qq", ...missing], { stdio: "inherit", env });
  if (!install || install.status !== 0) {
    console.error(`could not install ${missing.join(" ")}; install them with: apt-get install -y ${missing.join(" ")}`);
    process.exit(1);
  }
}
