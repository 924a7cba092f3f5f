'use strict';
// The demo softphone (web/phone/) in real headless Chromium, served by the real daemon with digest
// auth and the demo users: alice's page over ws://, bob's over https:// + wss:// with a test CA;
// a wrong password shows the 401; calls with fake camera and microphone, media checked with
// RTCPeerConnection.getStats. Screenshots go to build/browser-artifacts/.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startDaemon, ROOT } = require('../lib/daemon');
const { makeTestCA, launchBrowser, artifactPath, waitMedia } = require('../lib/browser');

const DOMAIN = 'sipedge.test';
const WAIT = 15000;

let daemon;
let ca;
let browser;
let wsBase;
let wssBase;
const pageErrors = [];

let usersDir;

test.before(async () => {
  ca = makeTestCA();
  // The demo users with their demo passwords, which the phone prefills; digest auth is on.
  usersDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipedge-users-'));
  const users = path.join(usersDir, 'users');
  fs.writeFileSync(users, 'alice:alice-password\nbob:bob-password\n', { mode: 0o600 });
  daemon = await startDaemon({
    listen: ['ws:127.0.0.1:0', 'wss:127.0.0.1:0'],
    domains: [DOMAIN],
    config: `http = { web_root = "${path.join(ROOT, 'web')}"; };\nauth = { disabled = false; };\n`,
    args: ['--users', users, '--tls-cert', ca.cert, '--tls-key', ca.key],
  });
  assert.doesNotMatch(daemon.log(), /authentication is OFF/);
  wsBase = `http://127.0.0.1:${daemon.ports.ws}`;
  wssBase = `https://127.0.0.1:${daemon.ports.wss}`;
  browser = await launchBrowser({ spki: [ca.spki] });
});

test.after(async () => {
  if (browser) await browser.close();
  if (ca) ca.remove();
  if (usersDir) fs.rmSync(usersDir, { recursive: true, force: true });
  // Rejects on an unclean exit or a sanitizer report.
  if (daemon) await daemon.stop();
});

// A page of its own (own context: own sessionStorage, own connection) at base/phone/.
async function openPhone(base, who, viewport = { width: 1100, height: 900 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${who}: ${e.message}`));
  await page.goto(`${base}/phone/`);
  page.who = who;
  return page;
}

// The daemon's log comes through a pipe: a line may arrive just after the SIP answer.
async function waitLog(re) {
  for (let i = 0; i < 50 && !re.test(daemon.log()); i++)
    await new Promise((r) => setTimeout(r, 100));
  assert.match(daemon.log(), re);
}

const bodyAttr = (page, name) => page.getAttribute('body', `data-${name}`);

function waitReg(page, state) {
  return page.waitForSelector(`body[data-reg-state="${state}"]`, { state: 'attached', timeout: WAIT });
}

function waitCall(page, state) {
  return page.waitForSelector(`body[data-call-state="${state}"]`, { state: 'attached', timeout: WAIT });
}

async function register(page, user, password = `${user}-password`, state = 'registered') {
  await page.fill('#user', user);
  await page.fill('#password', password);
  await page.fill('#domain', DOMAIN);
  await page.click('#register');
  await waitReg(page, state);
}

async function unregisterAndClose(page) {
  if (await bodyAttr(page, 'reg-state') === 'registered') {
    await page.click('#unregister');
    await waitReg(page, 'unregistered');
  }
  await page.context().close();
}

async function dial(page, target) {
  await page.fill('#target', target);
  await page.click('#call-button');
}

async function shot(page, name) {
  await page.screenshot({ path: artifactPath(`${name}-${page.who}`), fullPage: true });
}


// alice over ws, bob over wss, both registered.
async function pair(t) {
  const alice = await openPhone(wsBase, 'alice');
  const bob = await openPhone(wssBase, 'bob');
  t.after(async () => {
    await unregisterAndClose(alice);
    await unregisterAndClose(bob);
  });
  await Promise.all([register(alice, 'alice'), register(bob, 'bob')]);
  // Each page is the only device of its user.
  assert.equal(await bodyAttr(alice, 'bindings'), '1');
  assert.equal(await bodyAttr(bob, 'bindings'), '1');
  return { alice, bob };
}

test('/ leads to the phone, whose server URL follows the page: ws behind http, wss behind https', async () => {
  const plain = await openPhone(wsBase, 'plain');
  await plain.goto(`${wsBase}/`);
  const href = await plain.getAttribute('#as-bob', 'href');
  await plain.goto(new URL(href, `${wsBase}/`).href);
  assert.equal(new URL(plain.url()).pathname, '/phone/');
  assert.equal(await plain.inputValue('#user'), 'bob');
  assert.equal(await plain.inputValue('#password'), 'bob-password');
  assert.equal(await plain.inputValue('#server'), `ws://127.0.0.1:${daemon.ports.ws}/`);
  assert.equal(await bodyAttr(plain, 'reg-state'), 'unregistered');
  assert.equal(await plain.textContent('#notice'), '', 'a page on 127.0.0.1 is a secure context');
  await plain.context().close();

  const secure = await openPhone(wssBase, 'secure');
  assert.equal(await secure.inputValue('#server'), `wss://127.0.0.1:${daemon.ports.wss}/`);
  const style = await secure.evaluate(() => getComputedStyle(document.querySelector('header')).display);
  assert.equal(style, 'flex', 'style.css loaded');
  await secure.context().close();
});

// Every input of a form lies inside its card (the section around it), with the card's padding to
// spare: at these widths the fields once ran past the Account panel's right edge.
test('the forms fit their cards at every window width', async () => {
  for (const width of [1200, 1100, 900, 600, 360]) {
    const page = await openPhone(wsBase, `layout-${width}`, { width, height: 900 });
    await shot(page, 'layout');
    const boxes = await page.evaluate(() => [...document.querySelectorAll('section input:not([type=checkbox])')].map((input) => {
      const card = input.closest('section').getBoundingClientRect();
      const box = input.getBoundingClientRect();
      return { id: input.id, card: { left: card.left, right: card.right }, box: { left: box.left, right: box.right, width: box.width } };
    }));
    assert.ok(boxes.length >= 5, `the inputs are there at ${width} px`);
    for (const { id, card, box } of boxes) {
      assert.ok(box.width > 0, `#${id} is shown at ${width} px`);
      assert.ok(box.left >= card.left && box.right <= card.right - 8,
        `#${id} at ${width} px: ${box.left}..${box.right} is not inside its card ${card.left}..${card.right}`);
    }
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.equal(overflow, 0, `no horizontal scrolling at ${width} px`);
    await page.context().close();
  }
});

test('a wrong password: the page shows the 401 and stays unregistered; the right one registers', async () => {
  const page = await openPhone(wsBase, 'wrong-password');
  await register(page, 'alice', 'not-alices-password', 'failed');
  assert.equal(await bodyAttr(page, 'error'), 'registration failed: 401 Unauthorized');
  assert.match(await page.textContent('#reg-state'), /failed: 401 Unauthorized/);
  assert.equal(await page.isDisabled('#call-button'), true);
  await shot(page, 'wrong-password');
  await waitLog(/auth: REGISTER .*\(user 'alice', To sip:alice@sipedge\.test\): wrong password/);
  // The same page with the right password registers, and the error goes.
  await register(page, 'alice');
  assert.equal(await bodyAttr(page, 'error'), null);
  await unregisterAndClose(page);

  // An unknown user gets the same answer (names cannot be probed).
  const stranger = await openPhone(wsBase, 'unknown-user');
  await register(stranger, 'mallory', 'mallory-password', 'failed');
  assert.equal(await bodyAttr(stranger, 'error'), 'registration failed: 401 Unauthorized');
  await waitLog(/auth: REGISTER .*\(user 'mallory', To sip:mallory@sipedge\.test\): unknown user/);
  await stranger.context().close();
});

test('alice (ws) calls bob (wss), bob answers, media flows both ways, alice hangs up', async (t) => {
  const { alice, bob } = await pair(t);
  await shot(alice, 'registered');
  await shot(bob, 'registered');

  await dial(alice, 'bob');
  await waitCall(bob, 'incoming');
  assert.match(await bob.textContent('#peer'), /alice@sipedge\.test/);
  await waitCall(alice, 'ringing');
  await shot(bob, 'incoming');
  await bob.click('#answer');
  await Promise.all([waitCall(alice, 'confirmed'), waitCall(bob, 'confirmed')]);

  const [a, b] = await Promise.all([waitMedia(alice), waitMedia(bob)]);
  t.diagnostic(`alice received ${JSON.stringify(a)}, bob received ${JSON.stringify(b)}`);
  // The remote video element shows the other side's fake camera.
  for (const page of [alice, bob]) {
    await page.waitForFunction(() => document.getElementById('remote-video').videoWidth > 0,
      null, { timeout: WAIT });
  }
  await shot(alice, 'in-call');
  await shot(bob, 'in-call');

  await alice.click('#hangup');
  await Promise.all([waitCall(alice, 'ended'), waitCall(bob, 'ended')]);
  assert.match(await bob.textContent('#peer'), /by remote/);
  assert.equal(await bob.evaluate(() => window.phone.pc), null);
  assert.equal(await bodyAttr(alice, 'error'), null);
  assert.equal(await bodyAttr(bob, 'error'), null);
  await shot(bob, 'ended');
});

test('alice cancels before bob answers: both pages see the call end, none rings on', async (t) => {
  const { alice, bob } = await pair(t);
  await dial(alice, 'bob');
  await waitCall(bob, 'incoming');
  await waitCall(alice, 'ringing');
  await alice.click('#hangup');
  await Promise.all([waitCall(alice, 'failed'), waitCall(bob, 'failed')]);
  assert.match(await alice.textContent('#call-state'), /failed/);
  assert.match(await bob.textContent('#peer'), /Canceled/);
  assert.equal(await bob.isDisabled('#answer'), true);
  await shot(bob, 'canceled');

  // The dialog state is clean: the next call goes through.
  await dial(alice, 'bob');
  await waitCall(bob, 'incoming');
  await bob.click('#answer');
  await Promise.all([waitCall(alice, 'confirmed'), waitCall(bob, 'confirmed')]);
  await bob.click('#hangup');
  await Promise.all([waitCall(alice, 'ended'), waitCall(bob, 'ended')]);
});

test('calling a user who never registered shows 404; one who unregistered shows 480', async (t) => {
  const { alice, bob } = await pair(t);
  await dial(alice, 'carol');
  await waitCall(alice, 'failed');
  assert.equal(await bodyAttr(alice, 'error'), '404 Not Found');
  assert.match(await alice.textContent('#error'), /404 Not Found/);
  await shot(alice, 'not-found');

  await bob.click('#unregister');
  await waitReg(bob, 'unregistered');
  await dial(alice, 'bob');
  await waitCall(alice, 'failed');
  assert.equal(await bodyAttr(alice, 'error'), '480 Temporarily Unavailable');
  await shot(alice, 'unavailable');
});

test('a reload registers again and leaves no stale binding: the next call reaches the new page', async (t) => {
  const { alice, bob } = await pair(t);
  await bob.reload();
  await waitReg(bob, 'registered');
  assert.equal(await bodyAttr(bob, 'bindings'), '1', 'one binding for bob after the reload');
  assert.equal(await bob.inputValue('#user'), 'bob');

  await dial(alice, 'bob');
  await waitCall(bob, 'incoming');
  await bob.click('#answer');
  await Promise.all([waitCall(alice, 'confirmed'), waitCall(bob, 'confirmed')]);
  await Promise.all([waitMedia(alice), waitMedia(bob)]);
  await shot(bob, 'after-reload');
  await alice.click('#hangup');
  await Promise.all([waitCall(alice, 'ended'), waitCall(bob, 'ended')]);

  // And a second device for bob is a second binding, so the count is a real measure.
  const bob2 = await openPhone(wsBase, 'bob2');
  t.after(() => unregisterAndClose(bob2));
  await register(bob2, 'bob');
  assert.equal(await bodyAttr(bob2, 'bindings'), '2');
});

test('no script errors on any page', () => {
  assert.deepEqual(pageErrors, []);
});
