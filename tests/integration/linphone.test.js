'use strict';
// SHA-256 digest authentication (RFC 7616, RFC 8760) with a real softphone: Debian's linphone
// (belle-sip computes the digests, not this test). Two phones register over UDP to a daemon
// that offers only SHA-256, call each other through the proxy (INVITE answered 407 first), and
// a wrong password is refused. On the shipped etc/sipedge.conf (MD5, SHA-256, MD5 on the network
// side) linphone registers and calls too, answering the first challenge. SIPp 3.6 (Debian 12) has no SHA-256: tests/sipp/auth.sh covers
// MD5 with SIPp and checks that SIPp declines a SHA-256-only challenge.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startDaemon, ROOT } = require('../lib/daemon');
const { startLinphone } = require('../lib/linphone');

const DOMAIN = 'example.com';
const CONF = path.join(ROOT, 'etc', 'sipedge.conf');

function usersFile() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipedge-users-'));
  const file = path.join(dir, 'users');
  fs.writeFileSync(file, 'alice:alice-pw\nbob:bob-pw\n', { mode: 0o600 });
  return file;
}

// The credentials headers the daemon received (its debug log prints every message).
const credentials = (log, header) => [...log.matchAll(new RegExp(`^${header}:.*$`, 'gmi'))].map((m) => m[0]);

async function sha256Daemon(t) {
  const d = await startDaemon({
    listen: ['udp:127.0.0.1:0', 'ws:127.0.0.1:0'],
    domains: [DOMAIN],
    args: ['--log-level', 'debug'],
    config: `http = { web_root = ""; };\nauth = { disabled = false; users_file = "${usersFile()}"; algorithms = [ "SHA-256" ]; };\n`,
  });
  t.after(() => d.stop());
  return d;
}

test('linphone registers and calls with SHA-256 digests through a SHA-256-only daemon', async (t) => {
  const d = await sha256Daemon(t);
  const alice = await startLinphone({ user: 'alice', password: 'alice-pw', domain: DOMAIN, proxyPort: d.ports.udp });
  t.after(() => alice.stop());
  const bob = await startLinphone({ user: 'bob', password: 'bob-pw', domain: DOMAIN, proxyPort: d.ports.udp });
  t.after(() => bob.stop());

  assert.ok(await alice.registered(), 'alice registers');
  assert.ok(await bob.registered(), 'bob registers');
  const afterRegister = await d.metrics();
  assert.equal(afterRegister.sipedge_registrar_bindings, 2);
  assert.ok(afterRegister.sipedge_auth_success_total >= 2);
  const auths = credentials(d.log(), 'Authorization');
  assert.ok(auths.length >= 2, 'REGISTERs carried credentials');
  for (const a of auths) assert.match(a, /algorithm=SHA-256/i);
  for (const a of auths) assert.match(a, /response="[0-9a-f]{64}"/, 'a SHA-256 response is 64 hex digits');

  bob.command('autoanswer enable');
  await bob.expect(/Auto answer enabled/);
  const ringing = bob.expect(/Receiving new incoming call from sip:alice@example\.com/, 15000);
  const bobConnected = bob.expect(/Call \d+ with sip:alice@example\.com connected/, 15000);
  const aliceConnected = alice.expect(/Call \d+ with sip:bob@example\.com connected/, 15000);
  alice.command(`call sip:bob@${DOMAIN}`);
  await ringing;
  await aliceConnected;
  await bobConnected;
  const proxyAuths = credentials(d.log(), 'Proxy-Authorization');
  assert.ok(proxyAuths.length >= 1, 'the INVITE was challenged and answered');
  for (const a of proxyAuths) assert.match(a, /algorithm=SHA-256/i);
  assert.match(d.log(), /INVITE sip:bob@example\.com from [^\n]*\(user 'alice'[^\n]*authenticated \(proxy\)/);

  const aliceEnded = alice.expect(/Call \d+ with sip:bob@example\.com ended/, 10000);
  const bobEnded = bob.expect(/Call \d+ with sip:alice@example\.com ended/, 10000);
  alice.command('terminate');
  await aliceEnded;
  await bobEnded;
  const afterCall = await d.metrics();
  assert.ok(afterCall.sipedge_proxy_requests_forwarded_total >= 2, 'INVITE and BYE went through the proxy');
});

test('linphone with a wrong password is refused and not registered', async (t) => {
  const d = await sha256Daemon(t);
  const mallory = await startLinphone({ user: 'alice', password: 'not-alices', domain: DOMAIN, proxyPort: d.ports.udp });
  t.after(() => mallory.stop());
  assert.equal(await mallory.registered(4000), false);
  assert.match(d.log(), /REGISTER sip:example\.com from [^\n]*\(user 'alice'[^\n]*wrong password/);
  for (const a of credentials(d.log(), 'Authorization')) assert.match(a, /algorithm=SHA-256/i);
  const m = await d.metrics();
  assert.ok(m.sipedge_auth_failures_total >= 1, 'the failure is counted');
  assert.equal(m.sipedge_registrar_bindings, 0);
});

// The shipped etc/sipedge.conf (only the ports moved): its demo users, and on the network side
// the challenges MD5, SHA-256, MD5 (auth.algorithms with repeat_first_challenge). What linphone
// answers with is asserted as it is: belle-sip answers the topmost challenge of the realm, MD5
// here, although it computes SHA-256 (the tests above; with SHA-256 listed first it uses that).
test('linphone registers and calls over UDP on the shipped defaults, answering the first challenge: MD5', async (t) => {
  const d = await startDaemon({
    configFile: CONF, domains: [], listen: ['udp:127.0.0.1:0', 'ws:127.0.0.1:0'], args: ['--log-level', 'debug'],
  });
  t.after(() => d.stop());
  assert.match(d.log(), /auth: 2 users loaded from etc\/demo-users/);
  const demo = 'sipedge.test';
  const alice = await startLinphone({ user: 'alice', password: 'alice-password', domain: demo, proxyPort: d.ports.udp });
  t.after(() => alice.stop());
  const bob = await startLinphone({ user: 'bob', password: 'bob-password', domain: demo, proxyPort: d.ports.udp });
  t.after(() => bob.stop());

  assert.ok(await alice.registered(), 'alice registers');
  assert.ok(await bob.registered(), 'bob registers');
  // The first 401 carried the three challenges of the shipped defaults, in this order.
  const lines = d.log().split('\n');
  const at = lines.findIndex((l) => /^SIP\/2\.0 401 /.test(l));
  assert.ok(at >= 0, 'REGISTER was challenged');
  const end = lines.findIndex((l, i) => i > at && /^\d{4}-\d\d-\d\dT/.test(l));
  const offered = lines.slice(at, end).map((l) => /^WWW-Authenticate: Digest .*algorithm=([\w-]+)/i.exec(l))
    .filter(Boolean).map((m) => m[1]);
  assert.deepEqual(offered, ['MD5', 'SHA-256', 'MD5']);
  const auths = credentials(d.log(), 'Authorization');
  assert.ok(auths.length >= 2, 'REGISTERs carried credentials');
  for (const a of auths) assert.match(a, /algorithm=MD5,/i, 'linphone answers the first challenge, MD5');
  for (const a of auths) assert.match(a, /response="[0-9a-f]{32}"/, 'an MD5 response is 32 hex digits');
  const m = await d.metrics();
  assert.equal(m.sipedge_registrar_bindings, 2);
  assert.equal(m.sipedge_auth_failures_total, 0);

  bob.command('autoanswer enable');
  await bob.expect(/Auto answer enabled/);
  const bobConnected = bob.expect(/Call \d+ with sip:alice@sipedge\.test connected/, 15000);
  const aliceConnected = alice.expect(/Call \d+ with sip:bob@sipedge\.test connected/, 15000);
  alice.command(`call sip:bob@${demo}`);
  await aliceConnected;
  await bobConnected;
  const proxyAuths = credentials(d.log(), 'Proxy-Authorization');
  assert.ok(proxyAuths.length >= 1, 'the INVITE was challenged and answered');
  for (const a of proxyAuths) assert.match(a, /algorithm=MD5,/i);
  assert.match(d.log(), /INVITE sip:bob@sipedge\.test from [^\n]*\(user 'alice'[^\n]*authenticated \(proxy\)/);

  const aliceEnded = alice.expect(/Call \d+ with sip:bob@sipedge\.test ended/, 10000);
  const bobEnded = bob.expect(/Call \d+ with sip:alice@sipedge\.test ended/, 10000);
  alice.command('terminate');
  await aliceEnded;
  await bobEnded;
  assert.equal((await d.metrics()).sipedge_auth_failures_total, 0);
});
