'use strict';
// SHA-256 digest authentication (RFC 7616, RFC 8760) with a real softphone: Debian's linphone
// (belle-sip computes the digests, not this test). Two phones register over UDP to a daemon
// that offers only SHA-256, call each other through the proxy (INVITE answered 407 first), and
// a wrong password is refused. SIPp 3.6 (Debian 12) has no SHA-256: tests/sipp/auth.sh covers
// MD5 with SIPp and checks that SIPp declines a SHA-256-only challenge.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startDaemon } = require('../lib/daemon');
const { startLinphone } = require('../lib/linphone');

const DOMAIN = 'example.com';

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
