'use strict';
// GRUU (RFC 5627) with real JsSIP user agents on the shipped configuration (etc/sipedge.conf,
// only the port moved: digest authentication on, the demo users). JsSIP sends +sip.instance and
// Supported: gruu, keeps the pub-gruu and temp-gruu of the 200's Contact that is its own, and
// puts them in its Contacts. Two JsSIP instances register as bob: a MESSAGE to the pub-gruu or
// the temp-gruu of one reaches that one only; after it unregisters its temp-gruu names nobody
// (404) and its pub-gruu is offline (480); a forged temp-gruu is 404.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { startUa } = require('../lib/jssip');
const { startDaemon, ROOT } = require('../lib/daemon');

const CONF = path.join(ROOT, 'etc', 'sipedge.conf');
const DOMAIN = 'sipedge.test';
const PASSWORDS = { alice: 'alice-password', bob: 'bob-password' };

function phone(d, user) {
  const p = startUa({ port: d.ports.ws, user, domain: DOMAIN, password: PASSWORDS[user] });
  p.messages = [];
  p.ua.on('newMessage', (e) => { if (e.originator === 'remote') p.messages.push(e.request); });
  p.response = new Promise((resolve) => p.ua.once('registered', (e) => resolve(e.response)));
  return p;
}

// The 200's Contact that is this UA's own (JsSIP reads the same one), as text.
function ownContact(p, response) {
  const mine = p.ua.contact.uri.user;
  return response.getHeaders('contact').flatMap((h) => h.split(/,(?=\s*<)/))
    .find((c) => c.includes(`<sip:${mine}@`));
}

// alice sends a MESSAGE to target: the final status (JsSIP answers the 407 itself).
function send(alice, target, body) {
  return new Promise((resolve) => {
    alice.ua.sendMessage(target, body, {
      eventHandlers: {
        succeeded: (e) => resolve(e.response.status_code),
        failed: (e) => resolve(e.response ? e.response.status_code : e.cause),
      },
    });
  });
}

const settle = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test('JsSIP gets a pub-gruu and a temp-gruu; each reaches that instance only, until it unregisters', async (t) => {
  const d = await startDaemon({ configFile: CONF, domains: [], listen: ['ws:127.0.0.1:0'] });
  t.after(() => d.stop());
  const alice = phone(d, 'alice');
  const bob1 = phone(d, 'bob');
  const bob2 = phone(d, 'bob');
  t.after(() => { alice.ua.stop(); bob1.ua.stop(); bob2.ua.stop(); });
  assert.deepEqual(await Promise.all([alice.registration, bob1.registration, bob2.registration]),
    [{ ok: true }, { ok: true }, { ok: true }]);

  // The 200: pub-gruu is the AOR with the instance, temp-gruu an opaque URI of our domain.
  const [r1, r2] = await Promise.all([bob1.response, bob2.response]);
  const c1 = ownContact(bob1, r1);
  assert.ok(c1, 'the 200 lists bob1\'s own Contact');
  const instance1 = /\+sip\.instance="<([^>]+)>"/.exec(c1)[1];
  assert.match(c1, new RegExp(`pub-gruu="sip:bob@${DOMAIN};gr=${instance1}"`));
  const temp1 = /temp-gruu="([^"]+)"/.exec(c1)[1];
  assert.match(temp1, new RegExp(`^sip:[A-Za-z0-9_-]+@${DOMAIN};gr$`));
  assert.ok(!temp1.includes('bob') && !temp1.includes(instance1.slice(9)), 'the temp-gruu hides AOR and instance');
  assert.ok(ownContact(bob2, r2).includes('temp-gruu="'), 'bob2 has its own');
  // JsSIP keeps what it was given.
  assert.equal(bob1.ua.contact.temp_gruu, temp1);
  assert.equal(bob1.ua.contact.pub_gruu, `sip:bob@${DOMAIN};gr=${instance1}`);
  const pub2 = bob2.ua.contact.pub_gruu;
  const temp2 = bob2.ua.contact.temp_gruu;
  assert.notEqual(temp2, temp1);
  assert.notEqual(pub2, bob1.ua.contact.pub_gruu);

  // To bob1's pub-gruu and to its temp-gruu: bob1 gets them, bob2 does not.
  assert.equal(await send(alice, bob1.ua.contact.pub_gruu, 'pub to bob1'), 200);
  assert.equal(await send(alice, temp1, 'temp to bob1'), 200);
  // And bob2's temp-gruu reaches bob2.
  assert.equal(await send(alice, temp2, 'temp to bob2'), 200);
  await settle(300);
  assert.deepEqual(bob1.messages.map((m) => m.body), ['pub to bob1', 'temp to bob1']);
  assert.deepEqual(bob2.messages.map((m) => m.body), ['temp to bob2']);
  // Each was retargeted to the instance's registered Contact (JsSIP accepts nothing else).
  assert.equal(bob1.messages[1].ruri.user, bob1.ua.contact.uri.user);

  // A forged temp-gruu and a gr URI for nobody: 404, delivered to no one.
  const token = /^sip:([^@]+)@/.exec(temp1)[1];
  const forged = `sip:${token.slice(0, -2)}${token.slice(-2) === 'AA' ? 'BB' : 'AA'}@${DOMAIN};gr`;
  assert.equal(await send(alice, forged, 'forged'), 404);
  assert.equal(await send(alice, `sip:nobody@${DOMAIN};gr`, 'nobody'), 404);
  assert.equal(await send(alice, `sip:carol@${DOMAIN};gr=${instance1}`, 'carol'), 404);

  // bob1 unregisters: its temp-gruu names nobody now, its pub-gruu is offline; bob2 is not
  // reached in its place. bob2's own GRUUs still work.
  const pub1 = bob1.ua.contact.pub_gruu;
  const gone = new Promise((resolve) => bob1.ua.once('unregistered', resolve));
  bob1.ua.unregister();
  await gone;
  assert.equal(await send(alice, temp1, 'after unregister'), 404);
  assert.equal(await send(alice, pub1, 'after unregister'), 480);
  assert.equal(await send(alice, temp2, 'still bob2'), 200);
  await settle(300);
  assert.equal(bob1.messages.length, 2);
  assert.deepEqual(bob2.messages.map((m) => m.body), ['temp to bob2', 'still bob2']);

  const m = await d.metrics();
  assert.equal(m.sipedge_proxy_gruu_routed_total, 4);
  assert.equal(m.sipedge_proxy_gruu_refused_total, 5);
  assert.ok(m.sipedge_registrar_temp_gruus_total >= 3);
});

test('JsSIP registered again with the same Call-ID: the temp-gruu of its earlier registration stays dead', async (t) => {
  const d = await startDaemon({ configFile: CONF, domains: [], listen: ['ws:127.0.0.1:0'] });
  t.after(() => d.stop());
  const alice = phone(d, 'alice');
  const bob = phone(d, 'bob');
  t.after(() => { alice.ua.stop(); bob.ua.stop(); });
  assert.deepEqual(await Promise.all([alice.registration, bob.registration]), [{ ok: true }, { ok: true }]);
  const old = bob.ua.contact.temp_gruu;
  assert.ok(old);
  const gone = new Promise((resolve) => bob.ua.once('unregistered', resolve));
  bob.ua.unregister();
  await gone;
  const again = new Promise((resolve) => bob.ua.once('registered', (e) => resolve(e.response)));
  bob.ua.register(); // JsSIP keeps its Call-ID across unregister and register
  await again;
  const fresh = bob.ua.contact.temp_gruu;
  assert.notEqual(fresh, old);
  assert.equal(await send(alice, old, 'old'), 404);
  assert.equal(await send(alice, fresh, 'new'), 200);
  await settle(200);
  assert.deepEqual(bob.messages.map((m) => m.body), ['new']);
});
