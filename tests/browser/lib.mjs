// Shared helpers of the browser tests: the environment run.sh sets, Debian's
// chromium through playwright-core (never a downloaded browser), direct API
// calls, psql and promo-publish.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the tests through tests/browser/run.sh`);
  return v;
}

export const env = {
  get base() { return need('UI_TEST_BASE_URL'); },
  get run() { return need('UI_TEST_RUN'); },
  token: (role) => need(`UI_TEST_${role.toUpperCase()}_TOKEN`),
};

// Short, unique per run, valid as a code: UI-<base36 time><pid>-<suffix>.
export function codeName(suffix) {
  const [t, pid] = env.run.split('-');
  return `UI-${Number(t).toString(36).toUpperCase()}${Number(pid).toString(36).toUpperCase()}-${suffix}`;
}

export async function launch() {
  return chromium.launch({
    executablePath: process.env.PROMO_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
}

// A fresh context (own sessionStorage) in a fixed zone and locale, so the
// preselected time zone and currency are known: Europe/Paris, en-US (USD).
export async function newPage(browser, { timezoneId = 'Europe/Paris', locale = 'en-US' } = {}) {
  const context = await browser.newContext({ timezoneId, locale, acceptDownloads: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.on('dialog', (d) => d.accept());
  return page;
}

export async function signIn(page, role) {
  await page.goto(env.base + '/');
  await page.getByLabel('API token').fill(env.token(role));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('role').filter({ hasText: role }).waitFor();
}

export async function api(method, path, { token = 'marketer', body } = {}) {
  const res = await fetch(env.base + path, {
    method,
    headers: { Authorization: `Bearer ${env.token(token)}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch (e) { json = null; }
  return { status: res.status, json, text, headers: res.headers };
}

export function psql(sql) {
  return execFileSync('psql', [need('PROMO_PG_DSN'), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-At', '-c', sql],
    { encoding: 'utf8' }).trim();
}

// One web order (the storefront webhook shape of tests/data/channels) to
// orders.raw through promo-publish: its line mode ("malformed", one message
// per line of a file, channel forced with --channel) sends any payload as is.
export function publishWebOrder(order) {
  const dir = mkdtempSync(join(tmpdir(), 'promo-ui-order-'));
  try {
    const file = join(dir, 'order.jsonl');
    writeFileSync(file, JSON.stringify(order) + '\n');
    return execFileSync(join(need('PROMO_BIN_DIR'), 'promo-publish'), ['malformed', '--file', file, '--channel', 'web'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// The UTC instant of a wall-clock time in a zone, computed independently of
// the UI and the server: the offset is the zone's at that instant (Intl).
export function zonedToUtc(local, timeZone) {
  const guess = new Date(local + 'Z');
  const parts = {};
  for (const p of new Intl.DateTimeFormat('en-US', {
    timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit',
  }).formatToParts(guess)) parts[p.type] = p.value;
  const asLocal = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  const offset = asLocal - guess.getTime();
  return new Date(guess.getTime() - offset).toISOString().replace('.000Z', 'Z');
}
