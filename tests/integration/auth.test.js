'use strict';
// Digest authentication and the relay policy against the real daemon: real JsSIP clients with
// right and wrong passwords, hand-computed MD5/SHA-256 digests over a scripted WebSocket UA,
// stale nonces, replayed nonce counts, identity mismatch, relaying, SIGHUP reload of users.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { startUa, JsSIP } = require('../lib/jssip');
const { startDaemon, BIN } = require('../lib/daemon');
const { freeUdpPort } = require('../lib/ports');
const { SipWs, rand, sdp, tagOf } = require('../lib/sipws');
const { SipUdp } = require('../lib/sipudp');

const DOMAIN = 'example.com';

function usersFile(text) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipedge-users-'));
  const file = path.join(dir, 'users');
  fs.writeFileSync(file, text, { mode: 0o600 });
  return file;
}

async function start(t, { users = 'alice:alice-pw\nbob:bob-pw\n', config = '', more = '', args = [],
  listen = ['ws:127.0.0.1:0'] } = {}) {
  const file = usersFile(users);
  const d = await startDaemon({
    listen, domains: [DOMAIN],
    config: `http = { web_root = ""; };\nauth = { disabled = false; ${config} };\n${more}`,
    args: ['--users', file, ...args],
  });
  t.after(() => d.stop());
  d.usersFile = file;
  return d;
}

// The daemon's log is read from a pipe: a line may arrive just after the SIP answer.
async function waitLog(d, re, from = 0) {
  for (let i = 0; i < 50 && !re.test(d.log().slice(from)); i++)
    await new Promise((r) => setTimeout(r, 100));
  assert.match(d.log().slice(from), re);
}

async function connect(t, d, user, domain = DOMAIN) {
  const ua = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}`, { user, domain });
  t.after(() => ua.close());
  return ua;
}

// The parameters of each challenge header of a response, in order. Read from the raw text:
// JsSIP's parser keeps only the last WWW-Authenticate/Proxy-Authenticate line.
function challenges(msg, name = 'www-authenticate') {
  const re = new RegExp(`^${name}:\\s*(.*)$`, 'gim');
  return [...msg.text.matchAll(re)].map((m) => m[1].trim()).map((h) => {
    assert.match(h, /^Digest /);
    const params = {};
    for (const m of h.slice(7).matchAll(/([\w-]+)=(?:"([^"]*)"|([^,\s]*))/g))
      params[m[1].toLowerCase()] = m[2] ?? m[3];
    return params;
  });
}

const H = (alg, s) => crypto.createHash(alg === 'MD5' ? 'md5' : 'sha256').update(s).digest('hex');

// A credentials header value computed here, independently of the daemon's code.
function digest({ alg = 'MD5', user, password, realm = DOMAIN, nonce, method, uri, nc = 1, cnonce = rand(6) }) {
  const ncs = nc.toString(16).padStart(8, '0');
  const ha1 = H(alg, `${user}:${realm}:${password}`);
  const ha2 = H(alg, `${method}:${uri}`);
  const response = H(alg, `${ha1}:${nonce}:${ncs}:${cnonce}:auth:${ha2}`);
  return `Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", ` +
    `response="${response}", algorithm=${alg}, cnonce="${cnonce}", qop=auth, nc=${ncs}`;
}

// REGISTER from ua for the AOR of toUser (default: its own), with an Authorization value or none.
async function register(ua, { authorization, toUser } = {}) {
  const to = `sip:${toUser || ua.user}@${ua.domain}`;
  const { text } = ua.request({
    method: 'REGISTER', ruri: `sip:${ua.domain}`, to, callId: ua.regCallId ||= rand(10),
    cseq: ua.regCseq = (ua.regCseq || 0) + 1, contactParams: ';expires=600',
    headers: authorization ? [`Authorization: ${authorization}`] : [],
  });
  ua.send(text);
  return ua.expectResponse('REGISTER');
}

test('JsSIP registers with the right password and is refused with a wrong one', async (t) => {
  const d = await start(t);
  const good = startUa({ port: d.ports.ws, user: 'alice', domain: DOMAIN, password: 'alice-pw' });
  const bad = startUa({ port: d.ports.ws, user: 'bob', domain: DOMAIN, password: 'not-bobs-password' });
  t.after(() => { good.ua.stop(); bad.ua.stop(); });
  assert.deepEqual(await good.registration, { ok: true });
  const r = await bad.registration;
  assert.equal(r.ok, false);
  assert.equal(r.status, 401);
  assert.equal(r.cause, JsSIP.C.causes.AUTHENTICATION_ERROR);
  await waitLog(d, /auth: REGISTER sip:example.com from .* \(user 'bob', To sip:bob@example.com\): wrong password/);
});

test('JsSIP MESSAGE between authenticated users: 407 answered, delivered', async (t) => {
  const d = await start(t);
  const alice = startUa({ port: d.ports.ws, user: 'alice', domain: DOMAIN, password: 'alice-pw' });
  const bob = startUa({ port: d.ports.ws, user: 'bob', domain: DOMAIN, password: 'bob-pw' });
  t.after(() => { alice.ua.stop(); bob.ua.stop(); });
  assert.deepEqual(await alice.registration, { ok: true });
  assert.deepEqual(await bob.registration, { ok: true });
  const received = new Promise((resolve) => bob.ua.on('newMessage', (e) => {
    if (e.originator === 'remote') resolve(e.request);
  }));
  const status = await new Promise((resolve) => alice.ua.sendMessage(`sip:bob@${DOMAIN}`, 'hello', {
    eventHandlers: { succeeded: (e) => resolve(e.response.status_code), failed: (e) => resolve(e.cause) },
  }));
  assert.equal(status, 200);
  const req = await received;
  assert.equal(req.body, 'hello');
  // Our realm's credentials were consumed, not forwarded to bob.
  assert.equal(req.getHeader('proxy-authorization'), undefined);
  await waitLog(d, /MESSAGE sip:bob@example.com .*authenticated \(proxy\)/);
});

test('INVITE from our user: 407, its ACK absorbed, then with credentials it reaches the callee', async (t) => {
  const d = await start(t);
  const bob = await connect(t, d, 'bob');
  const nb = challenges(await register(bob))[0].nonce;
  const reg = await register(bob, {
    authorization: digest({ user: 'bob', password: 'bob-pw', nonce: nb, method: 'REGISTER', uri: `sip:${DOMAIN}` }),
  });
  assert.equal(reg.status_code, 200);

  const alice = await connect(t, d, 'alice');
  const ruri = `sip:bob@${DOMAIN}`;
  const callId = rand(8);
  const fromTag = rand(4);
  const inv1 = alice.request({ method: 'INVITE', ruri, callId, fromTag, cseq: 1, body: sdp('alice') });
  alice.send(inv1.text);
  const c = await alice.expectResponse('INVITE', 407);
  alice.send(alice.request({ method: 'ACK', ruri, callId, fromTag, cseq: 1, toTag: tagOf(c.getHeader('to')),
    branch: inv1.branch }).text);
  await bob.expectNothing((m) => m.method === 'INVITE' || m.method === 'ACK', 300);

  const nonce = challenges(c, 'proxy-authenticate')[0].nonce;
  const inv2 = alice.request({ method: 'INVITE', ruri, callId, fromTag, cseq: 2, body: sdp('alice'), headers: [
    `Proxy-Authorization: ${digest({ user: 'alice', password: 'alice-pw', nonce, method: 'INVITE', uri: ruri })}`] });
  alice.send(inv2.text);
  const inv = await bob.expectRequest('INVITE');
  assert.equal(inv.getHeader('proxy-authorization'), undefined);
  assert.equal(inv.from.uri.user, 'alice');
  bob.respond(inv, 486, 'Busy Here');
  const busy = await alice.expectResponse('INVITE', 486);
  alice.send(alice.request({ method: 'ACK', ruri, callId, fromTag, cseq: 2, toTag: tagOf(busy.getHeader('to')),
    branch: inv2.branch }).text);
  await alice.expectNothing((m) => m.status_code === 407, 300);
});

test('defaults: over WebSocket one MD5 challenge; on the network side MD5, SHA-256, MD5', async (t) => {
  const d = await start(t, { listen: ['ws:127.0.0.1:0', 'udp:127.0.0.1:0'] });
  // Browser clients speak MD5 only, and sipML5 gives up on several challenges for one realm.
  const alice = await connect(t, d, 'alice');
  const c = await register(alice);
  assert.equal(c.status_code, 401);
  assert.deepEqual(challenges(c).map((x) => x.algorithm), ['MD5']);
  // SHA-256 was not offered there: not taken.
  const sha = await register(alice, {
    authorization: digest({ alg: 'SHA-256', user: 'alice', password: 'alice-pw', nonce: challenges(c)[0].nonce,
      method: 'REGISTER', uri: `sip:${DOMAIN}` }),
  });
  assert.equal(sha.status_code, 401);
  await waitLog(d, /algorithm not offered/);

  // UDP: SHA-256 too, MD5 first (RFC 8760 clients answer the first they support) and last.
  const p = await SipUdp.open({ port: d.ports.udp, domain: DOMAIN });
  t.after(() => p.close());
  const reg = (headers = [], cseq = 1) => {
    const r = p.request({ method: 'REGISTER', to: `sip:bob@${DOMAIN}`, user: 'bob', callId: 'udp-reg', cseq,
      headers: [`Contact: <sip:bob@${p.local.address}:${p.local.port}>`, 'Expires: 60', ...headers] });
    p.send(r.text);
    return p.final(r.callId);
  };
  const u = await reg();
  assert.equal(u.status_code, 401);
  const ch = challenges(u);
  assert.deepEqual(ch.map((x) => x.algorithm), ['MD5', 'SHA-256', 'MD5']);
  assert.equal(new Set(ch.map((x) => x.nonce)).size, 1);
  for (const x of ch) {
    assert.equal(x.realm, DOMAIN);
    assert.equal(x.qop, 'auth');
    assert.equal(x.stale, undefined);
    assert.match(x.nonce, /^[0-9a-f]{64}$/);
  }
  const ok = await reg([`Authorization: ${digest({ alg: 'SHA-256', user: 'bob', password: 'bob-pw',
    nonce: ch[1].nonce, method: 'REGISTER', uri: `sip:${DOMAIN}` })}`], 2);
  assert.equal(ok.status_code, 200);
  // MD5 with the same nonce, next count: fine too.
  const ok2 = await reg([`Authorization: ${digest({ alg: 'MD5', user: 'bob', password: 'bob-pw', nc: 2,
    nonce: ch[0].nonce, method: 'REGISTER', uri: `sip:${DOMAIN}` })}`], 3);
  assert.equal(ok2.status_code, 200);
});

test('websocket_algorithms offers SHA-256 over WebSocket too; a hand-computed SHA-256 digest registers', async (t) => {
  const d = await start(t, { config: 'websocket_algorithms = [ "MD5", "SHA-256" ];' });
  const alice = await connect(t, d, 'alice');
  const c = await register(alice);
  const ch = challenges(c);
  assert.deepEqual(ch.map((x) => x.algorithm), ['MD5', 'SHA-256', 'MD5']);
  const ok = await register(alice, {
    authorization: digest({ alg: 'SHA-256', user: 'alice', password: 'alice-pw', nonce: ch[1].nonce,
      method: 'REGISTER', uri: `sip:${DOMAIN}` }),
  });
  assert.equal(ok.status_code, 200);
  assert.equal(ok.getHeaders('contact').length, 1);
});

test('a wrong SHA-256 password and an unknown user get the same fresh challenge', async (t) => {
  const d = await start(t, { config: 'websocket_algorithms = [ "MD5", "SHA-256" ];' });
  const alice = await connect(t, d, 'alice');
  const mallory = await connect(t, d, 'mallory');
  for (const [ua, password] of [[alice, 'guess'], [mallory, 'guess']]) {
    const c = await register(ua);
    const nonce = challenges(c)[1].nonce;
    const r = await register(ua, {
      authorization: digest({ alg: 'SHA-256', user: ua.user, password, nonce, method: 'REGISTER', uri: `sip:${DOMAIN}` }),
    });
    assert.equal(r.status_code, 401);
    assert.notEqual(challenges(r)[0].nonce, nonce);
  }
});

test('an expired nonce is challenged again with stale=true, then the new one works', async (t) => {
  const d = await start(t, { config: 'nonce_ttl = 1;' });
  const alice = await connect(t, d, 'alice');
  const nonce = challenges(await register(alice))[0].nonce;
  await new Promise((r) => setTimeout(r, 2500));
  const creds = (n) => digest({ user: 'alice', password: 'alice-pw', nonce: n, method: 'REGISTER', uri: `sip:${DOMAIN}` });
  const stale = await register(alice, { authorization: creds(nonce) });
  assert.equal(stale.status_code, 401);
  const ch = challenges(stale);
  assert.deepEqual(ch.map((x) => x.stale), ['true']);
  assert.notEqual(ch[0].nonce, nonce);
  const ok = await register(alice, { authorization: creds(ch[0].nonce) });
  assert.equal(ok.status_code, 200);
  await waitLog(d, /nonce expired/);
});

test('a replayed nonce count is refused with a fresh nonce (stale, not a failure); a higher one is accepted', async (t) => {
  const d = await start(t);
  const alice = await connect(t, d, 'alice');
  const nonce = challenges(await register(alice))[0].nonce;
  const creds = digest({ user: 'alice', password: 'alice-pw', nonce, nc: 1, method: 'REGISTER', uri: `sip:${DOMAIN}` });
  assert.equal((await register(alice, { authorization: creds })).status_code, 200);
  // The very same credentials in a new REGISTER (as an eavesdropper would send them).
  const replay = await register(alice, { authorization: creds });
  assert.equal(replay.status_code, 401);
  // The digest was right: a new nonce (stale=true) that an honest client answering again can
  // use, and no failed login on record; the replayer learns nothing it did not know.
  assert.equal(challenges(replay)[0].stale, 'true');
  await waitLog(d, /nonce count did not increase \(resent or replayed\)/);
  const m = await d.metrics();
  assert.equal(m.sipedge_auth_nc_replays_total, 1);
  assert.equal(m.sipedge_auth_failures_total, 0);
  const next = digest({ user: 'alice', password: 'alice-pw', nonce, nc: 2, method: 'REGISTER', uri: `sip:${DOMAIN}` });
  assert.equal((await register(alice, { authorization: next })).status_code, 200);
});

test('digest uri: the Request-URI or a URI naming us is taken, one naming another server gets 400', async (t) => {
  const d = await start(t);
  const alice = await connect(t, d, 'alice');
  const nonce = challenges(await register(alice))[0].nonce;
  const tryUri = async (uri, nc) => register(alice, {
    authorization: digest({ user: 'alice', password: 'alice-pw', nonce, nc, method: 'REGISTER', uri }),
  });
  const r = await tryUri('sip:elsewhere.example', 1);
  assert.equal(r.status_code, 400);
  assert.equal(r.reason_phrase, 'Digest URI Names Another Server');
  await waitLog(d, /digest uri names neither the Request-URI nor us/);
  assert.equal((await tryUri('sip:127.0.0.1:1', 2)).status_code, 400);
  // Our listener's address with its port (what SIPp signs), without it, our domain with a user.
  assert.equal((await tryUri(`sip:127.0.0.1:${d.ports.ws}`, 3)).status_code, 200);
  assert.equal((await tryUri('sip:127.0.0.1', 4)).status_code, 200);
  assert.equal((await tryUri(`sip:alice@${DOMAIN}`, 5)).status_code, 200);
});

test('auth.strict_digest_uri: only the Request-URI', async (t) => {
  const d = await start(t, { config: 'strict_digest_uri = true;' });
  const alice = await connect(t, d, 'alice');
  const nonce = challenges(await register(alice))[0].nonce;
  const r = await register(alice, {
    authorization: digest({ user: 'alice', password: 'alice-pw', nonce, method: 'REGISTER', uri: `sip:127.0.0.1:${d.ports.ws}` }),
  });
  assert.equal(r.status_code, 400);
  assert.equal(r.reason_phrase, 'Digest URI Does Not Match Request-URI');
  const ok = await register(alice, {
    authorization: digest({ user: 'alice', password: 'alice-pw', nonce, nc: 2, method: 'REGISTER', uri: `sip:${DOMAIN}` }),
  });
  assert.equal(ok.status_code, 200);
});

test("identity mismatch: alice's credentials cannot register bob, nor send as bob", async (t) => {
  const d = await start(t);
  const alice = await connect(t, d, 'alice');
  const nonce = challenges(await register(alice, { toUser: 'bob' }))[0].nonce;
  const r = await register(alice, {
    toUser: 'bob',
    authorization: digest({ user: 'alice', password: 'alice-pw', nonce, method: 'REGISTER', uri: `sip:${DOMAIN}` }),
  });
  assert.equal(r.status_code, 403);
  await waitLog(d, /authenticated, but the user does not own the AOR/);

  // A MESSAGE whose From is bob, with alice's credentials: 403 too.
  const bob = await connect(t, d, 'bob'); // builds From: bob
  const msg = (headers = []) => bob.request({ method: 'MESSAGE', ruri: `sip:alice@${DOMAIN}`, headers, body: '' });
  bob.send(msg().text);
  const c = await bob.expectResponse('MESSAGE', 407);
  const pch = challenges(c, 'proxy-authenticate');
  assert.equal(pch[0].algorithm, 'MD5');
  bob.send(msg([`Proxy-Authorization: ${digest({ user: 'alice', password: 'alice-pw', nonce: pch[0].nonce,
    method: 'MESSAGE', uri: `sip:alice@${DOMAIN}` })}`]).text);
  assert.equal((await bob.expectResponse('MESSAGE')).status_code, 403);
});

// Without upstreams other domains are looked up in DNS: a server that is not there keeps the
// lookups on loopback and quick (every question meets an ICMP error). A config line to add.
async function deadResolver(t) {
  const dead = await freeUdpPort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipedge-dns-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'resolv.conf'), `nameserver 127.0.0.1\nport ${dead}\n`);
  return `routing = { resolv_conf = "${path.join(dir, 'resolv.conf')}"; };\n`;
}

test('no open relay: strangers get 403, our users must authenticate, trusted peers pass', async (t) => {
  const d = await start(t, { more: await deadResolver(t) });
  const eve = await connect(t, d, 'eve', 'evil.example');
  eve.send(eve.request({ method: 'MESSAGE', ruri: 'sip:victim@carrier.example', body: '' }).text);
  const r = await eve.expectResponse('MESSAGE');
  assert.equal(r.status_code, 403);
  assert.equal(r.reason_phrase, 'Relaying Denied');
  assert.equal(r.getHeaders('proxy-authenticate').length, 0);
  // Into our users from outside our domains: refused as well.
  eve.send(eve.request({ method: 'MESSAGE', ruri: `sip:alice@${DOMAIN}`, body: '' }).text);
  assert.equal((await eve.expectResponse('MESSAGE')).status_code, 403);
  await waitLog(d, /relaying denied: not our user and not a trusted peer/);

  // Our user: challenged; once authenticated the policy lets it through, to a domain DNS does
  // not know here: 404.
  const alice = await connect(t, d, 'alice');
  const uri = 'sip:friend@other.example';
  alice.send(alice.request({ method: 'MESSAGE', ruri: uri, body: '' }).text);
  const c = await alice.expectResponse('MESSAGE', 407);
  const nonce = challenges(c, 'proxy-authenticate')[0].nonce;
  alice.send(alice.request({ method: 'MESSAGE', ruri: uri, body: '', headers: [
    `Proxy-Authorization: ${digest({ alg: 'MD5', user: 'alice', password: 'alice-pw', nonce, method: 'MESSAGE', uri })}`] }).text);
  const passed = await alice.expectResponse('MESSAGE', undefined, 10000);
  assert.equal(`${passed.status_code} ${passed.reason_phrase}`, '404 No Route To Domain');

  // Every step was counted.
  const metrics = await (await fetch(`http://127.0.0.1:${d.ports.ws}/metrics`)).text();
  assert.match(metrics, /^sipedge_relay_denied_total 1$/m);
  assert.match(metrics, /^sipedge_auth_forbidden_total 1$/m);
  assert.match(metrics, /^sipedge_auth_challenges_total 1$/m);
  assert.match(metrics, /^sipedge_auth_success_total 1$/m);
  assert.match(metrics, /^sipedge_auth_users 2$/m);
});

test('a trusted peer relays without credentials', async (t) => {
  const d = await start(t, { config: 'trusted_peers = [ "127.0.0.0/8", "::1" ];', more: await deadResolver(t) });
  const pbx = await connect(t, d, 'pbx', 'pbx.example');
  pbx.send(pbx.request({ method: 'MESSAGE', ruri: 'sip:someone@carrier.example', body: '' }).text);
  const r = await pbx.expectResponse('MESSAGE', undefined, 10000);
  assert.equal(`${r.status_code} ${r.reason_phrase}`, '404 No Route To Domain', 'past the policy, into DNS');
});

test('--no-auth registers anyone but still never relays for strangers', async (t) => {
  const d = await startDaemon({ listen: ['ws:127.0.0.1:0'], domains: [DOMAIN], args: ['--no-auth'] });
  t.after(() => d.stop());
  await waitLog(d, /authentication is OFF/);
  const x = await connect(t, d, 'anyone');
  assert.equal((await register(x)).status_code, 200);
  x.send(x.request({ method: 'MESSAGE', ruri: 'sip:victim@carrier.example', body: '' }).text);
  assert.equal((await x.expectResponse('MESSAGE')).status_code, 403);
});

test('without users and without --no-auth, REGISTER is refused 403 and the log says why', async (t) => {
  const d = await startDaemon({ listen: ['ws:127.0.0.1:0'], domains: [DOMAIN],
    config: 'http = { web_root = ""; };\nauth = { disabled = false; users_file = ""; };\n' });
  t.after(() => d.stop());
  await waitLog(d, /no users file .* every REGISTER will be refused with 403/);
  const alice = await connect(t, d, 'alice');
  const r = await register(alice);
  assert.equal(r.status_code, 403);
  assert.equal(r.reason_phrase, 'Authentication Not Configured');
  await waitLog(d, /refused: no users file is configured/);
});

test('SIGHUP reloads the users file; a broken file keeps the users in force', async (t) => {
  const d = await start(t, { users: 'alice:alice-pw\n' });
  const carolHa1 = H('MD5', `carol:${DOMAIN}:carol-pw`);
  const tryRegister = async (user, password) => {
    const ua = await connect(t, d, user);
    const nonce = challenges(await register(ua))[0].nonce;
    const r = await register(ua, { authorization: digest({ user, password, nonce, method: 'REGISTER', uri: `sip:${DOMAIN}` }) });
    return r.status_code;
  };
  assert.equal(await tryRegister('carol', 'carol-pw'), 401);
  fs.writeFileSync(d.usersFile, `alice:alice-pw\ncarol:ha1:MD5=${carolHa1}\n`);
  const reloaded = d.log().length;
  d.child.kill('SIGHUP');
  await waitLog(d, /2 users loaded/, reloaded);
  assert.equal(await tryRegister('carol', 'carol-pw'), 200);

  fs.writeFileSync(d.usersFile, 'alice:alice-pw\nthis line is wrong\n');
  const mark = d.log().length;
  d.child.kill('SIGHUP');
  await waitLog(d, /keeping the 2 users/, mark);
  assert.match(d.log().slice(mark), /users: .*users:2: want NAME:PASSWORD/);
  assert.match(d.log().slice(mark), /keeping the 2 users in force/);
  assert.equal(await tryRegister('carol', 'carol-pw'), 200);
});

test('--check-config rejects a bad users file and names the line', () => {
  const file = usersFile('alice:alice-pw\nbob:ha1:MD5=1234\n');
  const conf = path.join(path.dirname(file), 'sipedge.conf');
  fs.writeFileSync(conf, 'http = { web_root = ""; };\nauth = { disabled = false; };\n');
  const r = spawnSync(BIN, ['-c', conf, '--listen', 'ws:127.0.0.1:5999', '--domain', DOMAIN, '--users', file,
    '--check-config'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /users:2: MD5 HA1 must be 32 hex digits/);
  fs.writeFileSync(file, 'alice:alice-pw\n');
  const ok = spawnSync(BIN, ['-c', conf, '--listen', 'ws:127.0.0.1:5999', '--domain', DOMAIN, '--users', file,
    '--check-config'], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  const badAlg = path.join(path.dirname(file), 'bad.conf');
  fs.writeFileSync(badAlg, 'http = { web_root = ""; };\nauth = { algorithms = [ "MD5", "SHA-1" ]; trusted_peers = [ "10.0.0.0/40" ]; };\n');
  const bad = spawnSync(BIN, ['-c', badAlg, '--listen', 'ws:127.0.0.1:5999', '--domain', DOMAIN, '--check-config'],
    { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /auth.algorithms: unknown 'SHA-1'/);
  assert.match(bad.stderr, /auth.trusted_peers: '10.0.0.0\/40'/);
});
