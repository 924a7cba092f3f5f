'use strict';
// MESSAGE between two real JsSIP user agents through sipedge.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startUa } = require('../lib/jssip');
const { startDaemon } = require('../lib/daemon');

const DOMAIN = 'example.com';

test('MESSAGE from one JsSIP UA reaches another and the sender sees 200', async (t) => {
  const d = await startDaemon({ listen: ['ws:127.0.0.1:0'], domains: [DOMAIN], args: ['--no-auth'] });
  t.after(() => d.stop());
  const alice = startUa({ port: d.ports.ws, user: 'alice', domain: DOMAIN, password: 'alice-password' });
  const bob = startUa({ port: d.ports.ws, user: 'bob', domain: DOMAIN, password: 'bob-password' });
  t.after(() => { alice.ua.stop(); bob.ua.stop(); });
  assert.deepEqual(await Promise.all([alice.registration, bob.registration]), [{ ok: true }, { ok: true }]);

  const received = new Promise((resolve) => bob.ua.on('newMessage', (e) => {
    if (e.originator === 'remote') resolve(e);
  }));
  const sent = new Promise((resolve, reject) => {
    alice.ua.sendMessage(`sip:bob@${DOMAIN}`, 'hello bob', {
      eventHandlers: { succeeded: (e) => resolve(e.response), failed: (e) => reject(new Error(`MESSAGE failed: ${e.cause}`)) },
    });
  });
  const [e, response] = await Promise.all([received, sent]);
  assert.equal(e.request.body, 'hello bob');
  assert.equal(e.request.from.uri.user, 'alice');
  assert.equal(response.status_code, 200);

  // And back the other way.
  const back = new Promise((resolve) => alice.ua.on('newMessage', (ev) => {
    if (ev.originator === 'remote') resolve(ev.request.body);
  }));
  bob.ua.sendMessage(`sip:alice@${DOMAIN}`, 'hi alice');
  assert.equal(await back, 'hi alice');
});

test('MESSAGE to a user who is not registered fails with 404', async (t) => {
  const d = await startDaemon({ listen: ['ws:127.0.0.1:0'], domains: [DOMAIN], args: ['--no-auth'] });
  t.after(() => d.stop());
  const alice = startUa({ port: d.ports.ws, user: 'alice', domain: DOMAIN, password: 'alice-password' });
  t.after(() => alice.ua.stop());
  assert.deepEqual(await alice.registration, { ok: true });
  const status = await new Promise((resolve) => {
    alice.ua.sendMessage(`sip:carol@${DOMAIN}`, 'anyone?', {
      eventHandlers: { succeeded: () => resolve(200), failed: (e) => resolve(e.response ? e.response.status_code : e.cause) },
    });
  });
  assert.equal(status, 404);
});
