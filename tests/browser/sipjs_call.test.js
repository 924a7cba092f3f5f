'use strict';
// SIP.js (npm `sip.js`, its Web.SimpleUser with default settings) in headless Chromium calls the
// JsSIP demo phone (web/phone/) through the daemon on the shipped etc/sipedge.conf (only the port
// moved: digest auth on, the demo users of etc/demo-users), and the phone calls it back. Media
// flows both ways on each call (getStats: inbound-rtp packetsReceived > 0, audio and video, on
// both pages); the first call is hung up by SIP.js, the second by the phone.
//
// The SIP.js page (tests/browser/sipjs-page/) is bundled here with esbuild (web-src's, which
// `make web` installs) and served by a small HTTP server of the test on 127.0.0.1, as an
// application served from its own web server would be; the demo phone comes from the daemon.
const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { startDaemon, ROOT } = require('../lib/daemon');
const { launchBrowser, artifactPath, waitMedia } = require('../lib/browser');

const CONF = path.join(ROOT, 'etc', 'sipedge.conf');
const DOMAIN = 'sipedge.test';
const PAGE_SRC = path.join(__dirname, 'sipjs-page');
const ESBUILD = path.join(ROOT, 'web-src', 'node_modules', '.bin', 'esbuild');
const WAIT = 15000;

let daemon;
let browser;
let server;
let pageDir;
let sipjsBase;
let phoneBase;
const pageErrors = [];

// The page and its bundle in a directory of their own; sip.js resolves from tests/node_modules.
function buildPage() {
  assert.ok(fs.existsSync(ESBUILD), `${ESBUILD} is missing: run make web`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipedge-sipjs-page-'));
  execFileSync(ESBUILD, [path.join(PAGE_SRC, 'page.js'), '--bundle', '--sourcemap',
    '--target=chrome100', '--log-level=warning', `--outfile=${path.join(dir, 'page.js')}`],
  { stdio: ['ignore', 'inherit', 'inherit'] });
  fs.copyFileSync(path.join(PAGE_SRC, 'index.html'), path.join(dir, 'index.html'));
  return dir;
}

function servePage(dir) {
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.map': 'application/json' };
  const srv = http.createServer((req, res) => {
    const name = new URL(req.url, 'http://x').pathname.replace(/^\/$/, '/index.html');
    const file = path.join(dir, path.basename(name));
    if (!fs.existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': types[path.extname(file)] || 'application/octet-stream' });
    res.end(fs.readFileSync(file));
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

test.before(async () => {
  pageDir = buildPage();
  server = await servePage(pageDir);
  sipjsBase = `http://127.0.0.1:${server.address().port}`;
  // The shipped configuration as it is: its users file, its web root (the demo phone), its auth.
  daemon = await startDaemon({ configFile: CONF, domains: [], listen: ['ws:127.0.0.1:0'], args: ['--log-level', 'debug'] });
  assert.match(daemon.log(), /auth: 2 users loaded from etc\/demo-users/);
  phoneBase = `http://127.0.0.1:${daemon.ports.ws}`;
  browser = await launchBrowser();
});

test.after(async () => {
  if (browser) await browser.close();
  if (server) server.close();
  if (pageDir) fs.rmSync(pageDir, { recursive: true, force: true });
  if (daemon) await daemon.stop();
});

async function openPage(url, who) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${who}: ${e.message}`));
  page.on('console', (m) => {
    if (process.env.SIPEDGE_TEST_VERBOSE) process.stderr.write(`[${who}] ${m.text()}\n`);
  });
  await page.goto(url);
  page.who = who;
  return page;
}

// Each page publishes its state as attributes of <body> (the demo phone and the SIP.js page alike).
const bodyAttr = (page, name) => page.getAttribute('body', `data-${name}`);
const waitAttr = (page, name, value) =>
  page.waitForSelector(`body[data-${name}="${value}"]`, { state: 'attached', timeout: WAIT });

async function shot(page, name) {
  await page.screenshot({ path: artifactPath(`sipjs-${name}-${page.who}`), fullPage: true });
}


test('SIP.js calls the JsSIP demo phone and is called back; media both ways; each side hangs up once', async (t) => {
  // alice: SIP.js, from its own origin, to the daemon's ws listener. bob: the demo phone.
  const query = new URLSearchParams({
    server: `ws://127.0.0.1:${daemon.ports.ws}`, user: 'alice', password: 'alice-password', domain: DOMAIN,
    target: `sip:bob@${DOMAIN}`,
  });
  const alice = await openPage(`${sipjsBase}/?${query}`, 'sipjs-alice');
  const bob = await openPage(`${phoneBase}/phone/`, 'phone-bob');
  t.after(async () => {
    await alice.context().close();
    await bob.context().close();
  });

  await bob.fill('#user', 'bob');
  await bob.fill('#password', 'bob-password');
  await bob.fill('#domain', DOMAIN);
  await bob.click('#register');
  await alice.click('#register');
  await Promise.all([waitAttr(alice, 'reg-state', 'registered'), waitAttr(bob, 'reg-state', 'registered')]);
  assert.equal(await bodyAttr(alice, 'error'), null);
  let m = await daemon.metrics();
  assert.equal(m.sipedge_registrar_bindings, 2);
  assert.equal(m.sipedge_auth_failures_total, 0);
  assert.match(daemon.log(), /REGISTER sip:sipedge\.test [^\n]*\(user 'alice'[^\n]*authenticated/);

  // 1. SIP.js calls the phone; the phone answers; SIP.js hangs up.
  let started = Date.now();
  await alice.click('#call-button');
  await waitAttr(bob, 'call-state', 'incoming');
  t.diagnostic(`SIP.js's INVITE reached the phone ${Date.now() - started} ms after Call`);
  assert.match(await bob.textContent('#peer'), /alice@sipedge\.test/);
  await bob.click('#answer');
  await Promise.all([waitAttr(alice, 'call-state', 'confirmed'), waitAttr(bob, 'call-state', 'confirmed')]);
  let [a, b] = await Promise.all([waitMedia(alice), waitMedia(bob)]);
  t.diagnostic(`call 1: SIP.js received ${JSON.stringify(a)}, the phone received ${JSON.stringify(b)}`);
  await shot(alice, 'call1');
  await shot(bob, 'call1');
  assert.match(daemon.log(), /INVITE sip:bob@sipedge\.test [^\n]*\(user 'alice'[^\n]*authenticated \(proxy\)/);
  await alice.click('#hangup');
  await Promise.all([waitAttr(alice, 'call-state', 'ended'), waitAttr(bob, 'call-state', 'ended')]);
  assert.match(await bob.textContent('#peer'), /by remote/);
  assert.equal(await bob.evaluate(() => window.phone.pc), null);

  // 2. The phone calls SIP.js back; SIP.js answers; the phone hangs up.
  await bob.fill('#target', 'alice');
  started = Date.now();
  await bob.click('#call-button');
  await waitAttr(alice, 'call-state', 'incoming');
  t.diagnostic(`the phone's INVITE reached SIP.js ${Date.now() - started} ms after Call`);
  assert.match(await alice.textContent('#peer'), /bob@sipedge\.test/);
  await waitAttr(bob, 'call-state', 'ringing');
  started = Date.now();
  await alice.click('#answer');
  await Promise.all([waitAttr(alice, 'call-state', 'confirmed'), waitAttr(bob, 'call-state', 'confirmed')]);
  t.diagnostic(`SIP.js's 200 reached the phone ${Date.now() - started} ms after Answer`);
  [a, b] = await Promise.all([waitMedia(alice), waitMedia(bob)]);
  t.diagnostic(`call 2: SIP.js received ${JSON.stringify(a)}, the phone received ${JSON.stringify(b)}`);
  await shot(alice, 'call2');
  await shot(bob, 'call2');
  assert.match(daemon.log(), /INVITE sip:alice@sipedge\.test [^\n]*\(user 'bob'[^\n]*authenticated \(proxy\)/);
  await bob.click('#hangup');
  await Promise.all([waitAttr(alice, 'call-state', 'ended'), waitAttr(bob, 'call-state', 'ended')]);
  assert.match(await bob.textContent('#peer'), /by local/);
  assert.equal(await alice.evaluate(() => window.sipjs.pc), null);

  for (const page of [alice, bob]) assert.equal(await bodyAttr(page, 'error'), null, `${page.who} shows no error`);
  m = await daemon.metrics();
  assert.equal(m.sipedge_auth_failures_total, 0, 'every credential was right the first time');

  // ws listeners challenge with MD5 alone (auth.websocket_algorithms); both clients answer it.
  assert.match(daemon.log(), /auth: on; algorithms MD5, SHA-256 \(ws, wss: MD5\)/);
  const answered = [...daemon.log().matchAll(/^(?:Proxy-)?Authorization: Digest .*$/gmi)].map((x) => x[0]);
  assert.ok(answered.length >= 4, 'two REGISTERs and two INVITEs carried credentials');
  for (const c of answered) assert.match(c, /algorithm=MD5/);

  // SIP.js unregisters; the phone's binding stays. SIP.js sends its un-REGISTER with the
  // credentials of its last REGISTER, nc unchanged: a replayed nc, challenged again and then
  // answered (as in Node, tests/integration/register_sipjs.test.js).
  await alice.click('#unregister');
  await waitAttr(alice, 'reg-state', 'unregistered');
  m = await daemon.metrics();
  assert.equal(m.sipedge_registrar_bindings, 1);
  assert.ok(m.sipedge_auth_failures_total <= 1, 'at most the one replayed nc');
  t.diagnostic(`auth failures after SIP.js's un-REGISTER: ${m.sipedge_auth_failures_total}`);
  assert.deepEqual(pageErrors, []);
});
