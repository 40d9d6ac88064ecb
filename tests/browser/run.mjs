// keygate's real-browser tests: headless Debian chromium (playwright-core) against a real keygate and
// the local Keycloak (scripts/keycloak.sh). Run by scripts/test.sh after `cargo test`:
//
//   node tests/browser/run.mjs
//
// It builds nothing: it runs target/debug/keygate (built by `cargo test`/`cargo build`; override with
// KEYGATE_BIN), and for the scenarios marked `.app = 'notes'` the notes example
// target/debug/examples/notes (built by `cargo test`; KEYGATE_NOTES_BIN), on a free loopback port with a fresh SQLite file in a temp dir, and the Keycloak
// settings of `scripts/keycloak.sh env` (variables already in the environment win).
//
//   KEYGATE_BROWSER_ONLY=<substring>   run only the scenarios whose name contains it
//   KEYGATE_BROWSER_TIMEOUT=<ms>       per-scenario time limit (default 60000)
//   KEYGATE_ARTIFACTS_DIR=<dir>        where screenshots go (default <repo>/artifacts)
//
// Adding a scenario: write `async function name(t) { ... }` below and list it in SCENARIOS. Each one
// gets a fresh browser context (no cookies), and `t` offers:
//   t.base                      keygate's base URL, e.g. http://127.0.0.1:41234
//   t.newPage()                 a page in the scenario's own browser context
//   t.shot(page, label)         screenshot to artifacts/<scenario>-<label>.png
//   t.signIn(page, user, pw)    the whole Keycloak login, ending on keygate's home page
//   t.keycloakUserId(username)  the user's Keycloak id (sub), through the admin API
// and the helpers waitForText(locator, expected) and assert(cond, message) are in scope.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, keycloakLogin, artifactPath } from './lib.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = process.env.KEYGATE_BIN || join(ROOT, 'target', 'debug', 'keygate');
// The notes example (examples/notes), for the scenarios marked `.app = 'notes'`.
const NOTES_BIN = process.env.KEYGATE_NOTES_BIN || join(ROOT, 'target', 'debug', 'examples', 'notes');
const SCENARIO_TIMEOUT = Number(process.env.KEYGATE_BROWSER_TIMEOUT || 60000);

const USERS = {
  alice: { username: 'alice', password: 'alice-password' }, // role keygate-admin
  bob: { username: 'bob', password: 'bob-password' },
};

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

// Home -> "Sign in" -> login page -> "Sign in with Keycloak" -> Keycloak's form -> back home, signed in.
async function login_with_keycloak(t) {
  const page = await t.newPage();
  await page.goto(`${t.base}/`);
  await page.getByRole('link', { name: 'Sign in', exact: true }).first().click();
  await page.waitForURL((u) => u.origin === t.base && u.pathname === '/login');
  await page.locator('#keycloak-login').waitFor();
  await t.shot(page, '1-login-page');

  await page.click('#keycloak-login');
  await page.waitForSelector('#kc-login');
  assert(new URL(page.url()).origin !== t.base, `expected Keycloak's form, still on ${page.url()}`);
  await t.shot(page, '2-keycloak-form');

  await keycloakLogin(page, USERS.alice.username, USERS.alice.password);
  await page.waitForURL((u) => u.origin === t.base && u.pathname === '/');
  await waitForText(page.locator('#username'), 'alice');
  await t.shot(page, '3-home-signed-in');
}

// The token page shows the access token's preferred_username and sub (and a countdown, refresh).
async function token_page_shows_alice(t) {
  const page = await t.newPage();
  await t.signIn(page, USERS.alice);
  const expectedSub = await t.keycloakUserId('alice');

  await page.goto(`${t.base}/token`);
  await waitForText(page.locator('#token-username'), 'alice');
  await waitForText(page.locator('#token-subject'), expectedSub);
  await page.locator('#token-expiry').waitFor();
  await page.locator('#token-refresh').waitFor();
  await t.shot(page, 'token-page');
}

// A new person registers on keygate's page, is sent to Keycloak with the username filled in,
// signs in with the new password and lands home as the new user.
async function register_and_sign_in(t) {
  const page = await t.newPage();
  const username = `web-${Date.now().toString(36)}`;
  const password = 'browser-pass-123';
  await page.goto(`${t.base}/register`);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=email]', `${username}@example.com`);
  await page.fill('input[name=first_name]', 'Web');
  await page.fill('input[name=last_name]', 'Tester');
  await page.fill('input[name=password]', password);
  await page.fill('input[name=password2]', password);
  await t.shot(page, '1-form');
  await page.click('#register-submit');
  await page.waitForSelector('#kc-login');
  const prefilled = await page.inputValue('#username');
  assert(prefilled === username, `Keycloak's username field holds ${prefilled}`);
  await page.fill('#password', password);
  await page.click('#kc-login');
  await page.waitForURL((u) => u.origin === t.base && u.pathname === '/');
  await waitForText(page.locator('#username'), username);
  await t.shot(page, '2-signed-in');
}

// Alice (keygate-admin) opens the dashboard and the users page; screenshots are kept.
async function admin_pages_as_alice(t) {
  const page = await t.newPage();
  await t.signIn(page, USERS.alice);
  await page.goto(`${t.base}/admin`);
  await page.locator('#logins-chart').waitFor();
  const users = Number(await page.locator('#stat-users').innerText());
  assert(users >= 1, `dashboard counts users: ${users}`);
  await t.shot(page, 'dashboard');
  await page.goto(`${t.base}/admin/users`);
  await page.locator('#users-table').waitFor();
  const table = await page.locator('#users-table').innerText();
  assert(table.includes('alice'), `users table lists alice: ${table}`);
  await t.shot(page, 'users');
  await page.getByRole('link', { name: 'alice', exact: true }).click();
  await page.locator('#status').waitFor();
  await t.shot(page, 'user-detail');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${t.base}/admin/users`);
  await t.shot(page, 'users-phone');
}

// Sign out through the confirm page and Keycloak's end-session endpoint, back to "signed out".
async function sign_out(t) {
  const page = await t.newPage();
  await t.signIn(page, USERS.bob);
  await page.getByRole('link', { name: 'Sign out' }).click();
  await page.click('#logout-submit');
  await page.waitForURL((u) => u.origin === t.base && u.pathname === '/');
  await waitForText(page.locator('.notice'), 'You have been signed out.');
  await t.shot(page, 'signed-out');
}

// The notes example: its page sends an anonymous visitor to sign in and back, keeps a note added
// through its form (CSRF-checked), and the layout's sign-out form ends the session.
async function notes_example(t) {
  const page = await t.newPage();
  await page.goto(`${t.base}/notes`);
  await page.waitForURL((u) => u.origin === t.base && u.pathname === '/login');
  await page.click('#keycloak-login');
  await keycloakLogin(page, USERS.bob.username, USERS.bob.password);
  await page.waitForURL((u) => u.origin === t.base && u.pathname === '/notes');
  await waitForText(page.locator('#nav-user'), USERS.bob.username);
  await page.locator('#no-notes').waitFor();

  await page.fill('input[name=title]', 'Buy milk');
  await page.fill('input[name=body]', 'two litres');
  await page.click('#add-note-submit');
  await page.waitForURL((u) => u.origin === t.base && u.pathname === '/notes');
  await waitForText(page.locator('#notes .note-title'), 'Buy milk');
  await t.shot(page, 'notes');

  await page.click('#nav-sign-out');
  await page.waitForURL((u) => u.origin === t.base && u.pathname === '/');
  await waitForText(page.locator('.notice'), 'You have been signed out.');
  await page.goto(`${t.base}/notes`);
  await page.waitForURL((u) => u.origin === t.base && u.pathname === '/login');
}
notes_example.app = 'notes';

// Run in this order.
const SCENARIOS = [
  login_with_keycloak,
  token_page_shows_alice,
  register_and_sign_in,
  admin_pages_as_alice,
  sign_out,
  notes_example,
];

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

// Waits until the element exists and its trimmed text equals `expected` (the page may fill it late).
async function waitForText(locator, expected, { timeout = 15000 } = {}) {
  const deadline = Date.now() + timeout;
  let last = '<element not found>';
  while (Date.now() < deadline) {
    if (await locator.count()) {
      last = ((await locator.first().textContent().catch(() => null)) ?? '').trim();
      if (last === expected) return;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${locator}: expected text ${JSON.stringify(expected)}, got ${JSON.stringify(last)}`);
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Keycloak settings: defaults, then `scripts/keycloak.sh env`, then the caller's environment.
function keycloakEnv() {
  const env = {
    KEYGATE_ISSUER_URL: 'http://127.0.0.1:8180/realms/keygate',
    KEYGATE_CLIENT_ID: 'keygate',
    KEYGATE_CLIENT_SECRET: 'keygate-dev-secret',
    KEYCLOAK_ADMIN_URL: 'http://127.0.0.1:8180',
    KEYCLOAK_ADMIN_USER: 'admin',
    KEYCLOAK_ADMIN_PASSWORD: 'admin',
  };
  try {
    const out = execFileSync(join(ROOT, 'scripts', 'keycloak.sh'), ['env'], { encoding: 'utf8' });
    for (const m of out.matchAll(/^export ([A-Z_]+)=(.*)$/gm)) env[m[1]] = m[2];
  } catch (e) {
    console.error(`# scripts/keycloak.sh env failed (${e.message.split('\n')[0]}); using defaults`);
  }
  for (const name of Object.keys(env)) {
    if (process.env[name]) env[name] = process.env[name];
  }
  return env;
}

// A port that was free a moment ago: bind port 0, read it, release it.
function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

async function startKeygate(kcEnv, bin = BIN) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'keygate-browser-'));
  const env = {
    ...process.env,
    ...kcEnv,
    KEYGATE_BIND: `127.0.0.1:${port}`,
    KEYGATE_DATABASE_URL: join(dir, 'keygate.db'),
    RUST_LOG: process.env.RUST_LOG || 'info',
  };
  delete env.KEYGATE_PUBLIC_URL;
  const child = spawn(bin, [], { env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const keygate = { child, dir, base: `http://127.0.0.1:${port}`, log: '', exited: null };
  const append = (chunk) => {
    keygate.log += chunk;
  };
  child.stdout.setEncoding('utf8').on('data', append);
  child.stderr.setEncoding('utf8').on('data', append);
  child.on('exit', (code, signal) => {
    keygate.exited = signal ? `signal ${signal}` : `exit code ${code}`;
  });
  child.on('error', (e) => {
    keygate.exited = `spawn error: ${e.message}`;
  });

  const deadline = Date.now() + 30000;
  for (;;) {
    if (keygate.exited) throw new Error(`keygate stopped during start-up (${keygate.exited})`);
    try {
      const res = await fetch(`${keygate.base}/healthz`, { signal: AbortSignal.timeout(2000) });
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`GET ${keygate.base}/healthz did not answer 200 within 30 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return keygate;
}

async function stopKeygate(keygate) {
  if (!keygate) return;
  const { child } = keygate;
  if (!keygate.exited && child.exitCode === null && child.signalCode === null) {
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const done = await Promise.race([gone.then(() => true), new Promise((r) => setTimeout(r, 5000, false))]);
    if (!done) {
      child.kill('SIGKILL');
      await gone;
    }
  }
  rmSync(keygate.dir, { recursive: true, force: true });
}

async function keycloakUserId(kcEnv, username) {
  const admin = kcEnv.KEYCLOAK_ADMIN_URL;
  const tokenRes = await fetch(`${admin}/realms/master/protocol/openid-connect/token`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'password',
      client_id: 'admin-cli',
      username: kcEnv.KEYCLOAK_ADMIN_USER,
      password: kcEnv.KEYCLOAK_ADMIN_PASSWORD,
    }),
  });
  if (tokenRes.status !== 200) {
    throw new Error(`Keycloak admin token: HTTP ${tokenRes.status} ${await tokenRes.text()}`);
  }
  const { access_token } = await tokenRes.json();
  const realm = new URL(kcEnv.KEYGATE_ISSUER_URL).pathname.split('/').pop();
  const url = `${admin}/admin/realms/${realm}/users?username=${encodeURIComponent(username)}&exact=true`;
  const res = await fetch(url, { headers: { Authorization: `Bearer ${access_token}` } });
  if (res.status !== 200) throw new Error(`GET ${url}: HTTP ${res.status} ${await res.text()}`);
  const users = await res.json();
  assert(users.length === 1 && users[0].id, `exactly one Keycloak user ${username}, got ${JSON.stringify(users)}`);
  return users[0].id;
}

// The whole Keycloak login from keygate's login page; ends on keygate's home page, signed in.
async function signIn(base, page, { username, password }) {
  await page.goto(`${base}/login`);
  await page.click('#keycloak-login');
  await keycloakLogin(page, username, password);
  await page.waitForURL((u) => u.origin === base && u.pathname === '/');
  await waitForText(page.locator('#username'), username);
}

// ---------------------------------------------------------------------------------------------
// Runner
// ---------------------------------------------------------------------------------------------

async function main() {
  const only = process.env.KEYGATE_BROWSER_ONLY || '';
  const selected = SCENARIOS.filter((fn) => fn.name.includes(only));
  if (selected.length === 0) {
    console.error(`run.mjs: no scenario matches KEYGATE_BROWSER_ONLY=${only}`);
    return 2;
  }
  const needed = [BIN, ...(selected.some((s) => s.app === 'notes') ? [NOTES_BIN] : [])];
  for (const bin of needed) {
    if (!existsSync(bin)) {
      console.error(
        `run.mjs: ${bin} does not exist. Build it first (cargo test builds both binaries); ` +
          'this script builds nothing.',
      );
      return 2;
    }
  }

  const kcEnv = keycloakEnv();
  let keygate;
  let notes;
  let browser;
  let passed = 0;
  let failed = 0;
  let fatal = null;
  const stopAll = async () => {
    if (browser) await browser.close().catch(() => {});
    browser = null;
    await stopKeygate(keygate).catch(() => {});
    keygate = null;
    await stopKeygate(notes).catch(() => {});
    notes = null;
  };
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => {
      console.error(`run.mjs: ${sig}: stopping keygate and the browser`);
      stopAll().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
    });
  }

  try {
    keygate = await startKeygate(kcEnv);
    console.log(`# keygate ${keygate.base} (pid ${keygate.child.pid}, ${BIN})`);
    browser = await launch();

    for (const scenario of selected) {
      const name = scenario.name;
      let server = keygate;
      if (scenario.app === 'notes') {
        if (!notes) {
          notes = await startKeygate(kcEnv, NOTES_BIN);
          console.log(`# notes example ${notes.base} (pid ${notes.child.pid}, ${NOTES_BIN})`);
        }
        server = notes;
      }
      const context = await browser.newContext();
      context.setDefaultTimeout(15000);
      const pages = [];
      const cspViolations = [];
      const t = {
        base: server.base,
        newPage: async () => {
          const page = await context.newPage();
          // keygate serves a CSP without 'unsafe-inline': any violation means a page broke it.
          page.on('console', (msg) => {
            if (/Content Security Policy/i.test(msg.text()) && page.url().startsWith(server.base)) {
              cspViolations.push(`${page.url()}: ${msg.text()}`);
            }
          });
          pages.push(page);
          return page;
        },
        shot: (page, label) => page.screenshot({ path: artifactPath(`${name}-${label}.png`), fullPage: true }),
        signIn: (page, user) => signIn(server.base, page, user),
        keycloakUserId: (username) => keycloakUserId(kcEnv, username),
      };
      try {
        await withTimeout(scenario(t), SCENARIO_TIMEOUT, name);
        assert(cspViolations.length === 0, `CSP violations: ${cspViolations.join('; ')}`);
        passed += 1;
        console.log(`ok - ${name}`);
      } catch (e) {
        failed += 1;
        console.log(`not ok - ${name}`);
        console.log(indent(e && e.stack ? e.stack : String(e)));
        for (const [i, page] of pages.entries()) {
          if (page.isClosed()) continue;
          const path = artifactPath(`${name}-FAILED-${i}.png`);
          await page.screenshot({ path, fullPage: true, timeout: 5000 }).catch(() => {});
          console.log(indent(`page ${i} was at ${page.url()} (screenshot ${path})`));
        }
      } finally {
        await context.close().catch(() => {});
      }
      if (server.exited) {
        fatal = new Error(`${server === notes ? 'the notes example' : 'keygate'} stopped (${server.exited})`);
        break;
      }
    }
  } catch (e) {
    fatal = e;
  } finally {
    const log = [keygate, notes]
      .filter(Boolean)
      .map((s) => s.log)
      .join('\n# --- the notes example ---\n');
    await stopAll();
    if (fatal) {
      console.log(`not ok - harness`);
      console.log(indent(fatal && fatal.stack ? fatal.stack : String(fatal)));
      failed += 1;
    }
    if (failed > 0 && log) {
      console.log('# keygate log:');
      console.log(indent(log.trimEnd()));
    }
    console.log(`${passed} passed, ${failed} failed`);
  }
  return failed > 0 ? 1 : 0;
}

function indent(text) {
  return String(text)
    .split('\n')
    .map((line) => `    ${line}`)
    .join('\n');
}

process.exitCode = await main();
