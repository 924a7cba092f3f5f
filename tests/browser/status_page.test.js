'use strict';
// The console's status page (web/admin/) in real headless Chromium, served on the admin
// listener: the login form refuses a wrong token and keeps the right one for the tab; the
// numbers, charts and registration table follow the daemon live as JsSIP phones come and go;
// the search box filters; the last warnings are listed. Screenshots go to build/browser-artifacts/.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const fs = require('node:fs');
const { startDaemon, ROOT } = require('../lib/daemon');
const { launchBrowser, artifactPath } = require('../lib/browser');
const { startUa } = require('../lib/jssip');
const { adminSetup } = require('../lib/admin');

const DOMAIN = 'example.com';
const WAIT = 15000;

test('status page: login, live numbers, charts, registrations with search, warnings', async (t) => {
  assert.ok(fs.existsSync(path.join(ROOT, 'web', 'admin', 'admin.js')), 'make web has built the page');
  const a = await adminSetup({ webRoot: path.join(ROOT, 'web', 'admin') });
  const d = await startDaemon({ admin: true, listen: ['ws:127.0.0.1:0'], domains: [DOMAIN], args: ['--no-auth'],
    config: a.config });
  t.after(() => d.stop());
  const phones = [];
  t.after(() => phones.forEach((p) => p.ua.stop()));
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const page = await (await browser.newContext()).newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));

  await page.goto(`${a.url}/`);
  assert.equal(await page.getAttribute('body', 'data-state'), 'login');
  // A wrong token: back to the form, with the reason.
  await page.fill('#token', 'not-the-token-at-all');
  await page.click('button[type=submit]');
  await page.waitForFunction(() => document.getElementById('login-error').textContent === 'wrong token', null, { timeout: WAIT });
  assert.equal(await page.getAttribute('body', 'data-state'), 'login');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('sipedge-admin-token')), null, 'a refused token is not kept');

  await page.fill('#token', a.token);
  await page.click('button[type=submit]');
  await page.waitForSelector('body[data-state="live"][data-updates]', { timeout: WAIT });
  assert.equal(await page.textContent('#n-bindings'), '0');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('sipedge-admin-token')), a.token, 'kept for the tab');

  // Three phones register; the page follows without a reload.
  for (const user of ['alice', 'bob', 'carol']) {
    const p = startUa({ port: d.ports.ws, user, domain: DOMAIN });
    phones.push(p);
    assert.deepEqual(await p.registration, { ok: true });
  }
  await page.waitForFunction(() => document.getElementById('n-bindings').textContent === '3', null, { timeout: WAIT });
  assert.equal(await page.textContent('#n-ws'), '3');
  assert.equal(await page.getAttribute('body', 'data-registrations'), '3');
  const rows = await page.$$eval('#registrations tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  assert.deepEqual(rows.map((r) => r[0]), ['alice', 'bob', 'carol'].map((u) => `sip:${u}@${DOMAIN}`));
  for (const r of rows) {
    assert.equal(r[1], 'ws');
    assert.match(r[2], /^127\.0\.0\.1:\d+$/);
    assert.match(r[5], /JsSIP/);
  }
  // Search.
  await page.fill('#search', 'bob');
  assert.equal(await page.getAttribute('body', 'data-registrations'), '1');
  assert.deepEqual(await page.$$eval('#registrations tr td:first-child', (tds) => tds.map((td) => td.textContent)),
    [`sip:bob@${DOMAIN}`]);
  await page.fill('#search', '');
  // The charts are drawn (uPlot canvases), their last points the live numbers, after the
  // daemon's own samples of the last hour.
  assert.equal(await page.locator('.uplot canvas').count(), 3);
  assert.equal(await page.getAttribute('body', 'data-chart-bindings'), '3');
  assert.equal(await page.getAttribute('body', 'data-chart-connections'), '3');
  assert.equal(await page.getAttribute('body', 'data-chart-calls'), '0');
  const history = await page.evaluate(async () => (await fetch('/api/v1/history', {
    headers: { authorization: `Bearer ${sessionStorage.getItem('sipedge-admin-token')}` } })).json());
  assert.equal(history.interval_seconds, 10);
  assert.ok(history.samples.length >= 1 && history.samples[0].t > 0, 'sampled since start');
  // The warnings list shows the daemon's own (authentication is off).
  await page.waitForFunction(() => /authentication is OFF/.test(document.getElementById('warnings').textContent), null,
    { timeout: WAIT });
  await page.screenshot({ path: artifactPath('status-page-live'), fullPage: true });

  // One phone leaves: the numbers go down.
  phones.shift().ua.stop();
  await page.waitForFunction(() => document.getElementById('n-bindings').textContent === '2', null, { timeout: WAIT });
  await page.screenshot({ path: artifactPath('status-page-after'), fullPage: true });

  // A new tab of the same session needs no token again; a new browser context does.
  const again = await (await browser.newContext()).newPage();
  await again.goto(`${a.url}/`);
  assert.equal(await again.getAttribute('body', 'data-state'), 'login');
  assert.deepEqual(errors, [], 'no script errors');
});
