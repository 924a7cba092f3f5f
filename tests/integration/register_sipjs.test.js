'use strict';
// SIP.js (npm `sip.js`, its own UserAgent, Registerer and Messager) in Node against the shipped
// configuration (etc/sipedge.conf, only the port moved): digest authentication on, the demo users.
// SIP.js answers the first WWW-Authenticate header and speaks MD5 only; it registers, sends a
// MESSAGE (answering the 407) that the other user receives, and unregisters.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { startDaemon, ROOT } = require('../lib/daemon');

// SIP.js opens its connection with the platform's WebSocket; Node 20 has none.
globalThis.WebSocket ||= require('ws');

const CONF = path.join(ROOT, 'etc', 'sipedge.conf');
const DOMAIN = 'sipedge.test';

function waitFor(pred, what, ms = 10000) {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const tick = () => {
      if (pred()) return resolve();
      if (Date.now() - start > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 20);
    };
    tick();
  });
}

async function sipjsUser(t, SIP, d, user, password, delegate = {}) {
  const ua = new SIP.UserAgent({
    uri: SIP.UserAgent.makeURI(`sip:${user}@${DOMAIN}`),
    authorizationUsername: user,
    authorizationPassword: password,
    transportOptions: { server: `ws://127.0.0.1:${d.ports.ws}` },
    logLevel: 'error',
    delegate,
  });
  await ua.start();
  t.after(() => ua.stop());
  const registerer = new SIP.Registerer(ua);
  const states = [];
  registerer.stateChange.addListener((s) => states.push(s));
  return { ua, registerer, states };
}

test('SIP.js registers, sends a MESSAGE and unregisters with the shipped defaults', async (t) => {
  const SIP = await import('sip.js');
  const d = await startDaemon({ configFile: CONF, domains: [], listen: ['ws:127.0.0.1:0'] });
  t.after(() => d.stop());

  const received = [];
  const alice = await sipjsUser(t, SIP, d, 'alice', 'alice-password');
  const bob = await sipjsUser(t, SIP, d, 'bob', 'bob-password', {
    onMessage: (m) => { received.push(m.request); m.accept(); },
  });
  const answers = [];
  await alice.registerer.register({ requestDelegate: { onAccept: (r) => answers.push(r.message.statusCode) } });
  await bob.registerer.register();
  await waitFor(() => alice.registerer.state === SIP.RegistererState.Registered &&
    bob.registerer.state === SIP.RegistererState.Registered, 'both registered');
  assert.deepEqual(answers, [200]);

  const metricsBefore = await d.metrics();
  assert.equal(metricsBefore.sipedge_registrar_bindings, 2);
  assert.equal(metricsBefore.sipedge_auth_failures_total, 0);

  const status = await new Promise((resolve, reject) => {
    const messager = new SIP.Messager(alice.ua, SIP.UserAgent.makeURI(`sip:bob@${DOMAIN}`), 'hello from SIP.js');
    messager.message({ requestDelegate: {
      onAccept: (r) => resolve(r.message.statusCode),
      onReject: (r) => resolve(r.message.statusCode),
    } }).catch(reject);
  });
  assert.equal(status, 200);
  await waitFor(() => received.length === 1, 'the MESSAGE at bob');
  assert.equal(received[0].body, 'hello from SIP.js');
  assert.equal(received[0].from.uri.user, 'alice');
  assert.equal(received[0].getHeader('proxy-authorization'), undefined);

  // SIP.js sends its un-REGISTER with the Authorization of the REGISTER before, nc unchanged:
  // challenged again (401, stale=true), then answered with the new nonce; no failure.
  const unregAnswers = [];
  await alice.registerer.unregister({ requestDelegate: { onAccept: (r) => unregAnswers.push(r.message.statusCode) } });
  await waitFor(() => alice.registerer.state === SIP.RegistererState.Unregistered, 'alice unregistered');
  assert.deepEqual(unregAnswers, [200]);
  const m = await d.metrics();
  assert.equal(m.sipedge_registrar_bindings, 1);
  assert.equal(m.sipedge_auth_failures_total, 0, 'a resent nc is not a failed login');
  assert.ok(m.sipedge_auth_nc_replays_total <= 1, 'at most the one resent nc');
  assert.ok(m.sipedge_auth_success_total >= 4, 'REGISTER, MESSAGE and the un-REGISTER authenticated');
  assert.match(d.log(), /MESSAGE sip:bob@sipedge\.test .*authenticated \(proxy\)/);
});
