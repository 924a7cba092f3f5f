'use strict';
// The shipped configuration (etc/sipedge.conf, what `make run` starts): its demo domain and demo
// users, with the passwords the README gives, register and talk to each other with digest auth;
// a wrong password is refused; the log says where the demo phone is.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { startUa } = require('../lib/jssip');
const { startDaemon, ROOT, BIN } = require('../lib/daemon');

const CONF = path.join(ROOT, 'etc', 'sipedge.conf');
const DOMAIN = 'sipedge.test';
const DEMO = { alice: 'alice-password', bob: 'bob-password' };

test('the README states the demo domain, users and passwords of the shipped configuration', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  assert.match(readme, /sipedge\.test/);
  for (const [user, password] of Object.entries(DEMO))
    assert.match(readme, new RegExp(`^\\| \`${user}\` \\| \`${password}\` \\| \`sip:${user}@${DOMAIN}\``, 'm'));
  assert.match(fs.readFileSync(CONF, 'utf8'), /^\s*users_file = "etc\/demo-users";/m);
  assert.match(fs.readFileSync(CONF, 'utf8'), /^\s*disabled = false;/m);
});

test('--check-config accepts the shipped configuration and its users file', () => {
  const r = spawnSync(BIN, ['-c', CONF, '--check-config'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /configuration ok/);
});

test('make run\'s configuration: alice and bob register with the demo passwords, MESSAGE goes through', async (t) => {
  // The file's domain and users; only the port is moved so the test cannot collide with a demo.
  const d = await startDaemon({ configFile: CONF, domains: [], listen: ['ws:127.0.0.1:0'] });
  t.after(() => d.stop());
  // stderr comes through its own pipe: a line may arrive after "listening" on stdout.
  const phone = new RegExp(`demo phone: http://127\\.0\\.0\\.1:${d.ports.ws}/phone/`);
  for (let i = 0; i < 50 && !phone.test(d.log()); i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(d.log(), phone);
  assert.match(d.log(), /auth: 2 users loaded from etc\/demo-users/);
  assert.doesNotMatch(d.log(), /authentication is OFF/);

  const alice = startUa({ port: d.ports.ws, user: 'alice', domain: DOMAIN, password: DEMO.alice });
  const bob = startUa({ port: d.ports.ws, user: 'bob', domain: DOMAIN, password: DEMO.bob });
  const eve = startUa({ port: d.ports.ws, user: 'alice', domain: DOMAIN, password: 'bob-password' });
  t.after(() => { alice.ua.stop(); bob.ua.stop(); eve.ua.stop(); });
  assert.deepEqual(await alice.registration, { ok: true });
  assert.deepEqual(await bob.registration, { ok: true });
  assert.equal((await eve.registration).status, 401);

  const received = new Promise((resolve) => bob.ua.on('newMessage', (e) => {
    if (e.originator === 'remote') resolve(e.request);
  }));
  const status = await new Promise((resolve) => alice.ua.sendMessage(`sip:bob@${DOMAIN}`, 'hello bob', {
    eventHandlers: { succeeded: (e) => resolve(e.response.status_code), failed: (e) => resolve(e.cause) },
  }));
  assert.equal(status, 200);
  const req = await received;
  assert.equal(req.body, 'hello bob');
  assert.equal(req.from.uri.user, 'alice');
});
