// Headless Chromium (Debian's `chromium`, which build.mjs --install-deps installs) driven
// by playwright-core, for the tests of the web page.

import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

/** Screenshots and downloads the tests keep, for a person to look at: test-results/NAME/. */
export function testOutputDir(name: string): string {
  const dir = join(fileURLToPath(new URL("../..", import.meta.url)), "test-results", name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Why the browser tests cannot run here, or undefined. */
export function browserSkipReason(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `no ${CHROMIUM} (node build.mjs --install-deps installs it)`;
}

export function launchBrowser(): Promise<Browser> {
  // --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
  // --disable-dev-shm-usage: a container's /dev/shm is often 64 MB, too small for Chromium.
  return chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
}
