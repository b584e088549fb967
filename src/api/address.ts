/**
 * `host:port` as every part writes and reads it: IPv6 hosts in brackets (`[::1]:4143`), so the last
 * colon always separates the port.
 */
import { isIP } from "node:net";

export function hostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Splits `host:port` or `[v6]:port`; undefined when there is no numeric port after the last colon. */
export function splitHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]*)\]|(.*)):(\d+)$/.exec(text);
  if (!m) return undefined;
  return { host: m[1] ?? m[2]!, port: Number(m[3]) };
}
