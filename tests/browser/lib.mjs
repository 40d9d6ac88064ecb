// Shared helpers for keygate's browser tests: Debian's chromium driven by playwright-core.
// playwright-core never downloads a browser; we point it at the system chromium.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CHROMIUM_PATH = process.env.KEYGATE_CHROMIUM || '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// Repo root `artifacts/` (gitignored): screenshots and traces of browser tests go there.
export const ARTIFACTS_DIR = resolve(
  process.env.KEYGATE_ARTIFACTS_DIR || join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'artifacts'),
);

export function artifactPath(name) {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  return join(ARTIFACTS_DIR, name);
}

// Starts headless chromium. Options are passed through to chromium.launch().
export async function launch(options = {}) {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    ...options,
    args: [...CHROMIUM_ARGS, ...(options.args || [])],
  });
}

// Fills Keycloak 26's login form (#username, #password, #kc-login) on `page` and submits it.
// Waits for the form first, and for the navigation the submit causes. Throws when Keycloak shows the
// login page again with an error (wrong password, ...), with Keycloak's message in the error.
export async function keycloakLogin(page, username, password, { timeout = 15000 } = {}) {
  await page.waitForSelector('#username', { timeout });
  await page.fill('#username', username);
  await page.fill('#password', password);
  await Promise.all([
    page.waitForNavigation({ timeout, waitUntil: 'load' }),
    page.click('#kc-login'),
  ]);
  // Still on Keycloak's login form: the login failed.
  if (await page.locator('#kc-login').count()) {
    const message = await page
      .locator('#input-error, .kc-feedback-text, .pf-v5-c-alert__title, [id^="input-error"]')
      .first()
      .textContent({ timeout: 1000 })
      .catch(() => null);
    throw new Error(`Keycloak login as ${username} failed: ${(message || 'login form shown again').trim()}`);
  }
}
