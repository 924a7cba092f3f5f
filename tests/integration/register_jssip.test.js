'use strict';
// The registrar (RFC 3261 §10.3, RFC 5626) driven by real JsSIP user agents, checked against
// what a scripted client and the registrar's answers show.
global.WebSocket = global.WebSocket || require('ws');
const test = require('node:test');
const assert = require('node:assert/strict');
const JsSIP = require('jssip');
const { startDaemon } = require('../lib/daemon');
const { SipWs } = require('../lib/sipws');

JsSIP.debug.disable('JsSIP:*');
const DOMAIN = 'example.com';

async function ua(port, user, extra = {}) {
  const socket = new JsSIP.WebSocketInterface(`ws://127.0.0.1:${port}`);
  const u = new JsSIP.UA({
    sockets: [socket], uri: `sip:${user}@${DOMAIN}`, password: 'unused', register: false,
    session_timers: false, connection_recovery_min_interval: 1, ...extra,
  });
  const connected = new Promise((resolve) => u.once('connected', resolve));
  u.start();
  await connected;
  return u;
}

function once(u, ok, fail) {
  return new Promise((resolve, reject) => {
    u.once(ok, resolve);
    if (fail) u.once(fail, (e) => reject(new Error(`${fail}: ${e.cause} ${e.response ? e.response.status_code : ''}`)));
  });
}

// Contacts the registrar lists for an AOR, read with a query REGISTER (no Contact).
async function bindings(port, user) {
  const q = await SipWs.connect(`ws://127.0.0.1:${port}`, { user, domain: DOMAIN });
  const { text } = q.request({ method: 'REGISTER', ruri: `sip:${DOMAIN}`, to: q.aor });
  q.send(text.replace(/^Contact: .*\r\n/m, ''));
  const r = await q.expectResponse('REGISTER');
  await q.close();
  assert.equal(r.status_code, 200);
  return r.getHeaders('contact').flatMap((h) => h.split(/,(?=\s*<)/)).map((s) => s.trim());
}

test('JsSIP registers, the 200 lists its binding with the time left, and refreshes', async (t) => {
  const d = await startDaemon({ domains: [DOMAIN], args: ['--no-auth'] });
  t.after(() => d.stop());
  const alice = await ua(d.ports.ws, 'alice', { register_expires: 120 });
  t.after(() => alice.stop());
  const first = once(alice, 'registered', 'registrationFailed');
  alice.register();
  const e = await first;
  const contacts = e.response.getHeaders('contact');
  assert.equal(contacts.length, 1);
  assert.match(contacts[0], /expires=(11\d|120)/);
  assert.match(contacts[0], /\+sip\.instance/);
  assert.equal(e.response.getHeader('require'), 'outbound', 'Require: outbound when +sip.instance/reg-id are used');

  // A refresh (same Call-ID, higher CSeq) keeps one binding. JsSIP emits no event for a
  // refresh, so the registrar's log says when it has been handled.
  alice.register();
  for (let i = 0; i < 50 && !/binding refreshed: aor sip:alice@/.test(d.log()); i++)
    await new Promise((res) => setTimeout(res, 50));
  assert.match(d.log(), /binding refreshed: aor sip:alice@/);
  assert.equal((await bindings(d.ports.ws, 'alice')).length, 1);
});

test('two JsSIP UAs on one AOR both get the call-less MESSAGE; unregistering one leaves the other', async (t) => {
  const d = await startDaemon({ domains: [DOMAIN], args: ['--no-auth'] });
  t.after(() => d.stop());
  const tab1 = await ua(d.ports.ws, 'bob');
  const tab2 = await ua(d.ports.ws, 'bob');
  t.after(() => { tab1.stop(); tab2.stop(); });
  const r1 = once(tab1, 'registered', 'registrationFailed');
  tab1.register();
  await r1;
  const r2 = once(tab2, 'registered', 'registrationFailed');
  tab2.register();
  const e = await r2;
  assert.equal(e.response.getHeaders('contact').flatMap((h) => h.split(/,(?=\s*<)/)).length, 2, '200 lists both bindings');

  const got1 = new Promise((resolve) => tab1.once('newMessage', (m) => resolve(m.request.body)));
  const got2 = new Promise((resolve) => tab2.once('newMessage', (m) => resolve(m.request.body)));
  const alice = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}`, { user: 'alice', domain: DOMAIN });
  t.after(() => alice.close());
  assert.equal((await alice.register()).status_code, 200);
  const msg = alice.request({ method: 'MESSAGE', ruri: `sip:bob@${DOMAIN}`, body: 'to both' });
  alice.send(msg.text.replace('Content-Type: application/sdp', 'Content-Type: text/plain'));
  assert.deepEqual(await Promise.all([got1, got2]), ['to both', 'to both']);

  const gone = once(tab1, 'unregistered');
  tab1.unregister();
  await gone;
  const left = await bindings(d.ports.ws, 'bob');
  assert.equal(left.length, 1);
});

test('Contact: * with Expires: 0 removes every binding of the AOR', async (t) => {
  const d = await startDaemon({ domains: [DOMAIN], args: ['--no-auth'] });
  t.after(() => d.stop());
  const a = await ua(d.ports.ws, 'carol');
  const b = await ua(d.ports.ws, 'carol');
  t.after(() => { a.stop(); b.stop(); });
  for (const u of [a, b]) {
    const r = once(u, 'registered', 'registrationFailed');
    u.register();
    await r;
  }
  assert.equal((await bindings(d.ports.ws, 'carol')).length, 2);
  const gone = once(a, 'unregistered');
  a.unregister({ all: true });
  await gone;
  assert.equal((await bindings(d.ports.ws, 'carol')).length, 0);
  assert.match(d.log(), /Contact: \*|all bindings|removed/);
});

test('an expiry below the minimum gets 423 with Min-Expires, and JsSIP retries and succeeds', async (t) => {
  const d = await startDaemon({
    domains: [DOMAIN], args: ['--no-auth'], config: 'http = { web_root = ""; };\nregistrar = { min_expires = 90; };\n',
  });
  t.after(() => d.stop());
  // What the registrar says to a short REGISTER:
  const raw = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}`, { user: 'dave', domain: DOMAIN });
  const r = await raw.register({ expires: 30 });
  assert.equal(r.status_code, 423);
  assert.equal(r.getHeader('min-expires'), '90');
  await raw.close();

  // JsSIP follows the 423 (RFC 3261 §10.2.8) with the minimum.
  const dave = await ua(d.ports.ws, 'dave', { register_expires: 30 });
  t.after(() => dave.stop());
  const ok = once(dave, 'registered', 'registrationFailed');
  dave.register();
  const e = await ok;
  assert.match(e.response.getHeaders('contact')[0], /expires=(8\d|90)\b/);
});

test('closing the WebSocket drops the bindings only reachable through it', async (t) => {
  const d = await startDaemon({ domains: [DOMAIN], args: ['--no-auth'] });
  t.after(() => d.stop());
  const erin = await ua(d.ports.ws, 'erin');
  const r = once(erin, 'registered', 'registrationFailed');
  erin.register();
  await r;
  assert.equal((await bindings(d.ports.ws, 'erin')).length, 1);
  const stopped = once(erin, 'disconnected');
  erin.stop();
  await stopped;
  await new Promise((res) => setTimeout(res, 200));
  assert.equal((await bindings(d.ports.ws, 'erin')).length, 0);
});
