/**
 * Headless Debian chromium for browser tests, with the flags this machine needs (no network
 * beyond loopback) and a fresh profile that is removed afterwards.
 */
import type { TestContext } from "node:test";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

/** Why browser tests cannot run here, or undefined when they can. */
export const chromiumSkip: string | undefined = existsSync(CHROMIUM)
  ? undefined
  : `${CHROMIUM} is missing: install it with \`apt-get install -y chromium\` to run the browser test`;

export async function openBrowserPage(t: TestContext): Promise<Page> {
  const profile = await mkdtemp(join(tmpdir(), "tether-chromium-"));
  let browser: BrowserContext | undefined;
  // Close the browser before removing its profile (it writes there until it exits).
  t.after(async () => {
    await browser?.close();
    await rm(profile, { recursive: true, force: true });
  });
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    timeout: 30_000,
    viewport: { width: 1440, height: 1100 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  return browser.pages()[0] ?? (await browser.newPage());
}
