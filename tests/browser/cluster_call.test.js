'use strict';
// The demo softphone in real headless Chromium across two nodes of a cluster (a real
// redis-server, digest auth): alice's page is served by and registered at node A, bob's at node B;
// alice calls bob, the INVITE goes from A to B and on to bob's page, media flows both ways, bob
// hangs up and the BYE finds its way back through both nodes.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startDaemon, ROOT } = require('../lib/daemon');
const { freePort, freeUdpPort } = require('../lib/ports');
const { startRedis } = require('../lib/redis');
const { launchBrowser, artifactPath, inboundRtp } = require('../lib/browser');

const DOMAIN = 'sipedge.test';
const WAIT = 15000;

async function startNode(name, redis, users) {
  const ws = await freePort();
  const udp = await freeUdpPort();
  const d = await startDaemon({
    listen: [`ws:127.0.0.1:${ws}`, `udp:127.0.0.1:${udp}`], domains: [DOMAIN], args: ['--users', users],
    config: `http = { web_root = "${path.join(ROOT, 'web')}"; };\n` +
      `registrar = { store = "redis"; store_path = "${redis.url}"; };\n` +
      `cluster = { node_id = "${name}"; advertise = "sip:127.0.0.1:${udp};transport=udp"; secret = "the cluster's shared secret"; };\n` +
      'proxy = { flow_token_secret = "0123456789abcdef0123456789abcdef"; };\n' +
      'auth = { disabled = false; nonce_secret = "one nonce secret for all"; };\n',
  });
  d.name = name;
  return d;
}

async function until(what, pred, ms = WAIT) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out: ${what}`);
}

const waitState = (page, kind, state) =>
  page.waitForSelector(`body[data-${kind}-state="${state}"]`, { state: 'attached', timeout: WAIT });

test('alice on node A calls bob on node B from the demo phone; media flows; the BYE goes back', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipedge-users-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const users = path.join(dir, 'users');
  fs.writeFileSync(users, 'alice:alice-password\nbob:bob-password\n', { mode: 0o600 });
  const redis = await startRedis();
  t.after(() => redis.destroy());
  const a = await startNode('A', redis, users);
  t.after(() => a.stop());
  const b = await startNode('B', redis, users);
  t.after(() => b.stop());
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const errors = [];

  const pages = {};
  for (const [who, node] of [['alice', a], ['bob', b]]) {
    const page = await (await browser.newContext()).newPage();
    page.on('pageerror', (e) => errors.push(`${who}: ${e.message}`));
    await page.goto(`http://127.0.0.1:${node.ports.ws}/phone/`);
    await page.waitForFunction(() => document.querySelector('#server').value !== '', null, { timeout: WAIT });
    assert.equal(await page.inputValue('#server'), `ws://127.0.0.1:${node.ports.ws}/`, `${who} talks to node ${node.name}`);
    await page.fill('#user', who);
    await page.fill('#password', `${who}-password`);
    await page.fill('#domain', DOMAIN);
    await page.click('#register');
    await waitState(page, 'reg', 'registered');
    pages[who] = page;
  }
  const { alice, bob } = pages;
  await until('A knows bob and B', async () => {
    const m = await a.metrics();
    return m.sipedge_cluster_remote_bindings === 1 && m.sipedge_cluster_nodes_alive === 1;
  });

  await alice.fill('#target', 'bob');
  await alice.click('#call-button');
  await waitState(bob, 'call', 'incoming');
  assert.match(await bob.textContent('#peer'), /alice@sipedge\.test/);
  await bob.click('#answer');
  await Promise.all([waitState(alice, 'call', 'confirmed'), waitState(bob, 'call', 'confirmed')]);
  assert.equal((await a.metrics()).sipedge_cluster_forwarded_total, 1, 'A forwarded the INVITE to B');

  let got = {};
  await until('media both ways', async () => {
    got = { alice: await inboundRtp(alice), bob: await inboundRtp(bob) };
    return got.alice.audio > 0 && got.alice.video > 0 && got.bob.audio > 0 && got.bob.video > 0;
  });
  t.diagnostic(`received: ${JSON.stringify(got)}`);
  await alice.screenshot({ path: artifactPath('cluster-in-call-alice'), fullPage: true });
  await bob.screenshot({ path: artifactPath('cluster-in-call-bob'), fullPage: true });

  // bob's BYE goes B → A → alice along the route set both nodes recorded.
  await bob.click('#hangup');
  await Promise.all([waitState(alice, 'call', 'ended'), waitState(bob, 'call', 'ended')]);
  assert.match(await alice.textContent('#peer'), /by remote/);
  for (const page of [alice, bob]) {
    await page.click('#unregister');
    await waitState(page, 'reg', 'unregistered');
  }
  assert.deepEqual(errors, []);
});
