// dashboard.test.mjs — the dashboard in a real browser (issue 5 §6, §7):
// headless Debian Chromium driven by playwright-core, against the real
// front, API and broadcaster started by tests/integration/test_dashboard.sh,
// which passes what it made in the environment:
//
//   DASH_BASE           the front, e.g. http://127.0.0.1:8123
//   DASH_EMAIL/PASSWORD user A (the seller)
//   DASH_POOL_ID/SLUG   A's pool;  DASH_BOT_ID: one of A's bots
//   DASH_CLICKS         the people's clicks A's pool had today before the test
//   DASH_REVENUE_CENTS  A's revenue today before the test
//   DASH_OTHER_BOT_ID   user B's bot;  DASH_OTHER_POOL_ID: user B's pool
//   DASH_PURCHASE_CMD   a shell command that makes one purchase of
//                       DASH_PURCHASE_CENTS in A's pool (the payment event
//                       the bots node would send)
//   DASH_KILL_LIVE_CMD  a shell command that kills the broadcaster (its
//                       supervisor starts it again)
//   DASH_CHROMIUM       the browser (default /usr/bin/chromium)
//   DASH_SCREENSHOTS    a folder for screenshots (optional)
//
// Run: node dashboard.test.mjs  (node:test; exits non-zero on a failure).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execSync } from 'node:child_process';
import { chromium } from 'playwright-core';

const env = (k, d) => {
  const v = process.env[k] ?? d;
  if (v === undefined) throw new Error(`${k} is not set (run tests/integration/test_dashboard.sh)`);
  return v;
};
const BASE = env('DASH_BASE').replace(/\/$/, '');
const EMAIL = env('DASH_EMAIL');
const PASSWORD = env('DASH_PASSWORD');
const POOL_ID = Number(env('DASH_POOL_ID'));
const POOL_SLUG = env('DASH_POOL_SLUG');
const BOT_ID = Number(env('DASH_BOT_ID'));
const CLICKS0 = Number(env('DASH_CLICKS'));
const REVENUE0 = Number(env('DASH_REVENUE_CENTS'));
const OTHER_BOT_ID = Number(env('DASH_OTHER_BOT_ID'));
const OTHER_POOL_ID = Number(env('DASH_OTHER_POOL_ID'));
const PURCHASE_CMD = env('DASH_PURCHASE_CMD');
const PURCHASE_CENTS = Number(env('DASH_PURCHASE_CENTS'));
const KILL_LIVE_CMD = env('DASH_KILL_LIVE_CMD');
const HUMAN_UA = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148';
const pct = (r) => new Intl.NumberFormat('pt-BR', { style: 'percent', maximumFractionDigits: 1 }).format(r);

// A person's click on the pool's link (the front answers a redirect).
async function click(campaign) {
  const res = await fetch(`${BASE}/go/${POOL_SLUG}?utm_source=browser-test&utm_campaign=${campaign}`, {
    redirect: 'manual', headers: { 'User-Agent': HUMAN_UA } });
  assert.ok(res.status >= 300 && res.status < 400, `GET /go/${POOL_SLUG}: ${res.status}`);
}
// The API's answer to GET PATH with the browser's session.
const apiGet = (path) => page.evaluate(async (p) => {
  const r = await fetch('/api/v1' + p);
  return { status: r.status, body: await r.text() };
}, path);
const SHOTS = process.env.DASH_SCREENSHOTS || '';
const LIVE_TIMEOUT = 45000;   // a live number must show up within this (generous for ASan builds)

const brl = (cents) => new Intl.NumberFormat('pt-BR', { style: 'currency', currency: 'BRL' }).format(cents / 100);
// Intl puts a no-break space after "R$"; compare texts with plain spaces.
const norm = (s) => String(s ?? '').replace(/\s+/g, ' ').trim();

let browser, context, page;
const pageErrors = [];

async function shot(name) {
  if (SHOTS) await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}
const metric = (key) => page.locator(`section[data-page] [data-test="m-${key}"]`);
async function metricText(key) { return norm(await metric(key).textContent()); }
// Waits until metric KEY reads WANT (formatted text).
async function waitMetric(key, want, timeout = LIVE_TIMEOUT) {
  want = norm(want);
  try {
    await page.waitForFunction(([k, w]) => {
      const el = document.querySelector(`section[data-page] [data-test="m-${k}"]`);
      return el && el.textContent.replace(/\s+/g, ' ').trim() === w;
    }, [key, want], { timeout, polling: 100 });
  } catch (e) {
    await shot(`fail-${key}`);
    assert.fail(`metric ${key}: expected "${want}", still "${await metricText(key).catch(() => '?')}" after ${timeout} ms`);
  }
}
async function goto(hash, pageName) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.waitForSelector(`section[data-page="${pageName}"]`, { timeout: 15000 });
}

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.DASH_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // playwright-core gives the browser a fresh user data dir of its own.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'pt-BR' });
  page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  // The front's Content-Security-Policy allows no inline script: a violation is a bug.
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) pageErrors.push(m.text());
  });
  page.setDefaultTimeout(15000);
});

after(async () => {
  if (browser) await browser.close();
});

test('the login page refuses a wrong password', async () => {
  await page.goto(BASE + '/');
  await page.waitForSelector('[data-test=login-form]');
  assert.match(await page.title(), /rastro/);
  await page.fill('#login-email', EMAIL);
  await page.fill('#login-password', PASSWORD + '-wrong');
  await page.click('[data-test=login-submit]');
  await page.waitForSelector('[data-test=login-error]:visible');
  assert.equal(norm(await page.textContent('[data-test=login-error]')), 'E-mail ou senha incorretos.');
  assert.match(page.url(), /#\/login$/);
});

test('logs in and sees today\'s numbers on the overview', async () => {
  await page.fill('#login-password', PASSWORD);
  await page.click('[data-test=login-submit]');
  await page.waitForSelector('section[data-page=overview] [data-test=metrics]', { timeout: 20000 });
  // Today's numbers: the API's answer, shown in BRL (pt-BR), live once the feed is up.
  await waitMetric('revenue_cents', brl(REVENUE0));
  await waitMetric('clicks', String(CLICKS0));
  assert.equal(await metricText('roi'), '—', 'no spend yet: ROI is "—"');
  const funnel = norm(await page.textContent('section[data-page=overview] [data-test=funnel]'));
  assert.match(funnel, /Clique/);
  assert.ok(await page.locator('[data-test=chart] canvas').count() > 0, 'the hourly chart is drawn');
  await page.waitForFunction(() => document.querySelector('[data-test=live-status]').textContent.includes('ao vivo'),
    null, { timeout: LIVE_TIMEOUT });
  await shot('overview');
});

test('a click and a purchase show up on the pool page without a reload', async () => {
  await goto(`#/pools/${POOL_ID}`, 'pool');
  await page.waitForSelector('section[data-page=pool] [data-test=title]');
  assert.equal(norm(await page.textContent('section[data-page=pool] [data-test=title]')), `Pool ${POOL_SLUG}`);
  await waitMetric('clicks', String(CLICKS0));
  await waitMetric('revenue_cents', brl(REVENUE0));
  // Marks this document: a reload would lose the mark. Records highlights.
  await page.evaluate(() => {
    window.__noReload = true;
    window.__flashed = new Set();
    new MutationObserver((list) => {
      for (const m of list) {
        if (m.target.classList && m.target.classList.contains('flash')) window.__flashed.add(m.target.dataset.test);
      }
    }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['class'] });
  });

  await click('live');
  await waitMetric('clicks', String(CLICKS0 + 1));

  // A purchase in the pool.
  execSync(PURCHASE_CMD, { stdio: 'inherit', shell: '/bin/bash' });
  await waitMetric('revenue_cents', brl(REVENUE0 + PURCHASE_CENTS));
  assert.equal(await page.evaluate(() => window.__noReload === true), true, 'the page was reloaded');
  const flashed = await page.evaluate(() => [...window.__flashed]);
  assert.ok(flashed.includes('m-clicks'), `clicks were not highlighted (${flashed})`);
  assert.ok(flashed.includes('m-revenue_cents'), `revenue was not highlighted (${flashed})`);
  await shot('pool-live');
});

test('manual spend on the pool page gives profit and ROI', async () => {
  const revenue = REVENUE0 + PURCHASE_CENTS;
  assert.equal(await metricText('roi'), '—', 'ROI before any spend');
  await page.fill('[data-test=spend-form] input[name=amount]', '50,00');
  await page.click('[data-test=spend-form] button[type=submit]');
  await waitMetric('spend_cents', brl(5000), 15000);
  await waitMetric('profit_cents', brl(revenue - 5000), 15000);
  await waitMetric('roi', pct(revenue / 5000 - 1), 15000);
  assert.equal(await page.evaluate(() => window.__noReload === true), true, 'the page was reloaded');
});

test('the live feed comes back after the broadcaster restarts', async () => {
  const before = await page.evaluate(() => window.Alpine.store('live').connects);
  assert.ok(before >= 1, 'the live feed never connected');
  execSync(KILL_LIVE_CMD, { stdio: 'inherit', shell: '/bin/bash' });
  await page.waitForFunction((n) => window.Alpine.store('live').connects > n && window.Alpine.store('live').status === 'open',
    before, { timeout: LIVE_TIMEOUT, polling: 100 });
  // Subscribed again: a click made now still shows up on this page.
  await click('after-restart');
  await waitMetric('clicks', String(CLICKS0 + 2));
  assert.equal(await page.evaluate(() => window.__noReload === true), true, 'the page was reloaded');
});

test('the overview and the bot page show the new numbers', async () => {
  await goto('#/', 'overview');
  await waitMetric('clicks', String(CLICKS0 + 2));
  await waitMetric('revenue_cents', brl(REVENUE0 + PURCHASE_CENTS));
  await goto(`#/bots/${BOT_ID}`, 'bot');
  await page.waitForSelector('section[data-page=bot] [data-test=title]');
  assert.match(norm(await page.textContent('section[data-page=bot] [data-test=title]')), /^@\w+$/);
  assert.equal(await page.locator('section[data-page=bot] [data-test=not-found]').isVisible(), false);
});

test('a custom range over 31 days shows the totals and a daily chart', async () => {
  await goto('#/', 'overview');
  const today = JSON.parse((await apiGet('/summary?range=today')).body).range.to;
  const d = new Date(today + 'T12:00:00Z');
  d.setUTCDate(d.getUTCDate() - 60);
  const from = d.toISOString().slice(0, 10);
  const want = JSON.parse((await apiGet(`/summary?range=custom&from=${from}&to=${today}`)).body).metrics;
  await page.click('section[data-page=overview] [data-range=custom]');
  const form = page.locator('section[data-page=overview] form:visible');
  await form.locator('input[type=date]').nth(0).fill(from);
  await form.locator('input[type=date]').nth(1).fill(today);
  const daily = page.waitForResponse((r) => r.url().includes('/api/v1/daily?') && r.status() === 200);
  await form.locator('button[type=submit]').click();
  await daily;
  await waitMetric('revenue_cents', brl(want.revenue_cents));
  await waitMetric('clicks', String(want.clicks));
  assert.ok(await page.locator('[data-test=chart] canvas').count() > 0, 'the daily chart is drawn');
  await page.click('section[data-page=overview] [data-range=today]');
});

test('another user\'s bot and pool are not found', async () => {
  for (const [hash, name] of [[`#/bots/${OTHER_BOT_ID}`, 'bot'], [`#/pools/${OTHER_POOL_ID}`, 'pool']]) {
    await goto(hash, name);
    const nf = page.locator(`section[data-page=${name}] [data-test=not-found]`);
    await nf.waitFor({ state: 'visible' });
    assert.match(norm(await nf.textContent()).toLowerCase(), /não encontrado \/ not found/);
    assert.equal(await page.locator(`section[data-page=${name}] [data-test=title]`).count(), 0);
  }
  // Typed straight into the address bar (a fresh load), too.
  await page.goto(`${BASE}/#/bots/${OTHER_BOT_ID}`);
  await page.locator('section[data-page=bot] [data-test=not-found]').waitFor({ state: 'visible' });
  await shot('not-found');
});

test('the English switch is remembered', async () => {
  await goto('#/', 'overview');
  await page.click('[data-test=lang-switch]');
  await page.waitForFunction(() => document.querySelector('[data-test=nav]').textContent.includes('Overview'));
  await page.reload();
  await page.waitForSelector('section[data-page=overview]');
  assert.match(norm(await page.textContent('[data-test=nav]')), /Overview/);
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
  await page.click('[data-test=lang-switch]');
  await page.waitForFunction(() => document.querySelector('[data-test=nav]').textContent.includes('Visão geral'));
});

test('the UTM table sorts by a clicked header', async () => {
  await goto('#/utm', 'utm');
  const firstKey = () => page.evaluate(() => document.querySelector('[data-test=utm-table] tbody tr td')?.textContent.trim());
  const keys = () => page.evaluate(() => [...document.querySelectorAll('[data-test=utm-table] tbody tr')]
    .map((tr) => tr.querySelector('td').textContent.trim()));
  await page.waitForFunction(() => document.querySelectorAll('[data-test=utm-table] tbody tr').length >= 3);
  assert.ok((await keys()).includes('before') && (await keys()).includes('live'), `campaigns: ${await keys()}`);
  await page.click('[data-test=utm-table] th[data-sort=clicks]');     // most clicks first
  await page.waitForFunction(() => document.querySelector('[data-test=utm-table] th[data-sort=clicks]').textContent.includes('▼'));
  await page.waitForFunction(() => document.querySelector('[data-test=utm-table] tbody tr td')?.textContent.trim() === 'before');
  await page.click('[data-test=utm-table] th[data-sort=clicks]');     // fewest first
  await page.waitForFunction(() => document.querySelector('[data-test=utm-table] th[data-sort=clicks]').textContent.includes('▲'));
  await page.waitForFunction(() => document.querySelector('[data-test=utm-table] tbody tr td')?.textContent.trim() !== 'before');
  assert.notEqual(await firstKey(), 'before');
});

test('management: a bot is disabled and enabled again; a pixel is added, its token never shown', async () => {
  await goto(`#/bots/${BOT_ID}`, 'bot');
  const toggle = page.locator('[data-test=bot-toggle]');
  await toggle.waitFor();
  assert.equal(norm(await toggle.textContent()), 'Desativar');
  await toggle.click();
  await page.waitForFunction(() => document.querySelector('[data-test=bot-toggle]').textContent.trim() === 'Ativar');
  assert.equal(JSON.parse((await apiGet(`/bots/${BOT_ID}`)).body).bot.enabled, false);
  await toggle.click();
  await page.waitForFunction(() => document.querySelector('[data-test=bot-toggle]').textContent.trim() === 'Desativar');
  assert.equal(JSON.parse((await apiGet(`/bots/${BOT_ID}`)).body).bot.enabled, true);

  const token = 'EAAB-browser-test-token-not-real';
  await goto('#/pixels', 'pixels');
  await page.click('section[data-page=pixels] button.btn');
  await page.fill('[data-test=pixel-add-form] input[name=pixel_id]', '300000000000003');
  await page.fill('[data-test=pixel-add-form] input[name=token]', token);
  assert.equal(await page.getAttribute('[data-test=pixel-add-form] input[name=token]', 'type'), 'password');
  await page.click('[data-test=pixel-add-form] button[type=submit]');
  await page.waitForFunction(() => document.querySelector('[data-test=pixels-table]').textContent.includes('300000000000003'));
  assert.equal(await page.locator('[data-test=pixel-add-form]').count(), 0, 'the form (and the token) is gone');
  assert.ok(!(await page.content()).includes(token), 'the token is on the page');
  assert.ok(!(await apiGet('/pixels')).body.includes(token), 'the API answered the token');
});

test('management: a pool and an offer are added through their forms', async () => {
  await goto('#/pools', 'pools');
  await page.click('section[data-page=pools] button.btn');
  const form = page.locator('[data-test=pool-add-form]');
  await form.waitFor();
  await form.locator('input[name=slug]').fill('browser-pool');
  await form.locator('select').first().selectOption({ label: '300000000000003' });
  await form.locator('input[type=checkbox]').first().check();
  await form.locator('button[type=submit]').click();
  await page.waitForFunction(() => [...document.querySelectorAll('section[data-page=pools] tbody a')]
    .some((a) => a.textContent.trim() === 'browser-pool'));
  const pools = JSON.parse((await apiGet('/pools')).body).rows;
  const made = pools.find((p) => p.slug === 'browser-pool');
  assert.ok(made, 'the pool is not in GET /pools');
  assert.equal(made.pixel_id, '300000000000003');
  assert.equal(made.bots.length, 1);

  await goto(`#/bots/${BOT_ID}`, 'bot');
  await page.click('[data-test=offer-new]');
  const offer = page.locator('[data-test=offer-form]');
  await offer.locator('input[name=name]').fill('Mentoria Browser');
  await offer.locator('input[name=price]').fill('1.234,50');
  await offer.locator('input[placeholder="-1001234567890"]').fill('-1001234567890');
  await offer.locator('button[type=submit]').click();
  await page.waitForFunction(() => document.querySelector('section[data-page=bot]').textContent.includes('Mentoria Browser'));
  const offers = JSON.parse((await apiGet(`/bots/${BOT_ID}/offers`)).body).rows;
  const o = offers.find((x) => x.name === 'Mentoria Browser');
  assert.ok(o, 'the offer is not in GET /bots/:id/offers');
  assert.equal(o.price_cents, 123450);
  assert.equal(String(o.deliver_chat_id), '-1001234567890');
});

test('dead letters: details and replay', async () => {
  await goto('#/dlq', 'dlq');
  const table = page.locator('[data-test=dlq-table]');
  await page.waitForFunction(() => document.querySelector('[data-test=dlq-table]').textContent.includes('browser test'));
  assert.ok(!norm(await table.textContent()).includes('OtherSellerDeadLetter'), "another seller's dead letter is listed");
  assert.equal(await table.locator('tbody tr').count(), 1);
  await table.locator('tbody tr button', { hasText: 'Detalhes' }).click();
  await page.waitForFunction(() => document.querySelector('[data-test=dlq-table] pre')?.textContent.includes('AbCdTracedash-dlq-a'));
  const replay = table.locator('[data-test=replay]');
  assert.equal(await replay.isEnabled(), true);
  await replay.click();
  await page.waitForFunction(() => document.querySelector('[data-test=dlq-table] [data-test=replay]').disabled);
  await page.locator('section[data-page=dlq] .ok').waitFor({ state: 'visible' });
});

test('the leads list pages with "load more"', async () => {
  await goto('#/leads', 'leads');
  const rows = () => page.locator('[data-test=leads-table] tbody tr').count();
  await page.waitForFunction(() => document.querySelectorAll('[data-test=leads-table] tbody tr').length > 0);
  assert.equal(await rows(), 50, 'first page');
  assert.match(norm(await page.textContent('[data-test=leads-table] tbody tr')), /Lead 1\b/, 'newest first');
  await page.click('section[data-page=leads] [data-test=load-more]');
  await page.waitForFunction(() => document.querySelectorAll('[data-test=leads-table] tbody tr').length === 60);
  await page.locator('section[data-page=leads] [data-test=load-more]').waitFor({ state: 'hidden' });
  assert.ok(!norm(await page.textContent('[data-test=leads-table]')).includes('OtherSellerLead'), "another seller's lead is listed");
});

test('on a phone the menu collapses', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await goto('#/utm', 'utm');
  assert.equal(await page.locator('[data-test=nav]').isVisible(), false, 'the menu is open on a phone');
  await page.click('[data-test=menu-button]');
  await page.locator('[data-test=nav]').waitFor({ state: 'visible' });
  await page.click('[data-test=nav] a[href="#/leads"]');
  await page.waitForSelector('section[data-page=leads]');
  assert.equal(await page.locator('[data-test=nav]').isVisible(), false, 'the menu stays open after choosing');
  // The table is usable at this width (it scrolls inside its card).
  await goto('#/utm', 'utm');
  await page.waitForFunction(() => document.querySelector('[data-test=utm-table]')?.textContent.includes('after-restart'));
  await shot('phone-utm');
  await page.setViewportSize({ width: 1280, height: 900 });
});

test('logs out', async () => {
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.click('[data-test=logout]');
  await page.waitForSelector('[data-test=login-form]');
  const me = await page.evaluate(async () => (await fetch('/api/v1/me')).status);
  assert.equal(me, 401);
  await page.goto(`${BASE}/#/pools/${POOL_ID}`);
  await page.waitForSelector('[data-test=login-form]');
});

test('a session ended elsewhere closes the live page: back to the login form, no reconnect loop', async () => {
  await page.fill('#login-email', EMAIL);
  await page.fill('#login-password', PASSWORD);
  await page.click('[data-test=login-submit]');
  await page.waitForSelector('section[data-page=overview]', { timeout: 20000 });
  await goto(`#/pools/${POOL_ID}`, 'pool');
  await page.waitForFunction(() => window.Alpine.store('live').status === 'open', null, { timeout: LIVE_TIMEOUT });
  // The session ends behind the app's back (as a logout in another tab would):
  // the broadcaster closes the feed with 4001 and the page must notice alone.
  const st = await page.evaluate(async () => (await fetch('/api/v1/logout', {
    method: 'POST', headers: { 'X-CSRF-Token': window.Alpine.store('session').csrf } })).status);
  assert.equal(st, 204);
  await page.waitForSelector('[data-test=login-form]', { timeout: LIVE_TIMEOUT });
  const connects = await page.evaluate(() => window.Alpine.store('live').connects);
  await page.waitForTimeout(3000);
  assert.equal(await page.evaluate(() => window.Alpine.store('live').connects), connects,
    'the live feed kept reconnecting after its session ended');
});

test('no script error or CSP violation on any page', () => {
  assert.deepEqual(pageErrors, []);
});
