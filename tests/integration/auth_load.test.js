'use strict';
// Digest authentication under sustained load: 50 WebSocket clients re-register back to back, each
// time with a fresh challenge (REGISTER, 401, REGISTER with credentials), against a daemon whose
// nonce-count table (auth.nonce_table_size) is far smaller than the number of challenges sent.
// No correct answer may get a second 401 (the table once forgot nonces still being answered
// when it evicted one issued in the same second); a replayed nc must still be refused.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startDaemon } = require('../lib/daemon');
const { SipWs, rand } = require('../lib/sipws');

const DOMAIN = 'example.com';
const CLIENTS = 50;
const ROUNDS = 40; // 2,000 challenges for a table of 256
const TABLE = 256;
const md5 = (s) => crypto.createHash('md5').update(s).digest('hex');

function nonceOf(resp) {
  const m = /^WWW-Authenticate:.*nonce="([^"]+)"/im.exec(resp.text);
  assert.ok(m, 'a challenge with a nonce');
  return m[1];
}

function credentials(user, nonce, nc = 1) {
  const ncs = nc.toString(16).padStart(8, '0');
  const cnonce = rand(6);
  const ha1 = md5(`${user}:${DOMAIN}:${user}-pw`);
  const response = md5(`${ha1}:${nonce}:${ncs}:${cnonce}:auth:${md5(`REGISTER:sip:${DOMAIN}`)}`);
  return `Authorization: Digest username="${user}", realm="${DOMAIN}", nonce="${nonce}", uri="sip:${DOMAIN}", ` +
    `response="${response}", algorithm=MD5, cnonce="${cnonce}", qop=auth, nc=${ncs}`;
}

// One client: ROUNDS registrations, each with a fresh challenge; returns the statuses of the
// credentialed REGISTERs and the last nonce with the credentials it was answered with.
async function client(ua, stats) {
  const callId = rand(10);
  let cseq = 0, last;
  for (let i = 0; i < ROUNDS; i++) {
    ua.send(ua.request({ method: 'REGISTER', ruri: `sip:${DOMAIN}`, to: ua.aor, callId, cseq: ++cseq,
      contactParams: ';expires=600' }).text);
    const challenge = await ua.expectResponse('REGISTER', undefined, 20000);
    assert.equal(challenge.status_code, 401);
    const auth = credentials(ua.user, nonceOf(challenge));
    ua.send(ua.request({ method: 'REGISTER', ruri: `sip:${DOMAIN}`, to: ua.aor, callId, cseq: ++cseq,
      contactParams: ';expires=600', headers: [auth] }).text);
    const r = await ua.expectResponse('REGISTER', undefined, 20000);
    stats[r.status_code] = (stats[r.status_code] || 0) + 1;
    last = { auth, cseq };
  }
  return { callId, ...last };
}

test(`${CLIENTS} clients x ${ROUNDS} fresh challenges over a nonce table of ${TABLE}: no spurious 401`, async (t) => {
  const users = Array.from({ length: CLIENTS }, (_, i) => `u${i}`);
  const usersFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sipedge-load-')), 'users');
  fs.writeFileSync(usersFile, users.map((u) => `${u}:${u}-pw\n`).join(''), { mode: 0o600 });
  const d = await startDaemon({
    domains: [DOMAIN], listen: ['ws:127.0.0.1:0'], args: ['--users', usersFile],
    config: `http = { web_root = ""; };\nauth = { nonce_table_size = ${TABLE}; };\n` +
      'limits = { requests_per_second = 0; max_connections_per_ip = 0; };\n',
  });
  t.after(() => d.stop());
  const uas = await Promise.all(users.map((u) => SipWs.connect(`ws://127.0.0.1:${d.ports.ws}`, { user: u, domain: DOMAIN })));
  t.after(() => Promise.all(uas.map((ua) => ua.close())));

  const stats = {};
  const started = Date.now();
  const lasts = await Promise.all(uas.map((ua) => client(ua, stats)));
  t.diagnostic(`${CLIENTS * ROUNDS * 2} REGISTERs in ${Date.now() - started} ms`);
  assert.deepEqual(stats, { 200: CLIENTS * ROUNDS }, 'every correct answer accepted at once');

  const m = await d.metrics();
  assert.equal(m.sipedge_auth_success_total, CLIENTS * ROUNDS);
  assert.equal(m.sipedge_auth_failures_total, 0);
  assert.equal(m.sipedge_auth_stale_nonces_total, 0);
  // The table did overflow: used nonces lost their slots while still fresh.
  assert.ok(m.sipedge_auth_nonces_evicted_total >= CLIENTS * ROUNDS - TABLE,
    `nonces evicted: ${m.sipedge_auth_nonces_evicted_total}`);

  // A replay of the newest credentials (still in the table) is refused as a replay (a fresh
  // nonce, stale=true, counted as a replay, not a failure) ...
  const ua = uas[0];
  ua.send(ua.request({ method: 'REGISTER', ruri: `sip:${DOMAIN}`, to: ua.aor, callId: lasts[0].callId,
    cseq: lasts[0].cseq + 1, contactParams: ';expires=600', headers: [lasts[0].auth] }).text);
  const replay = await ua.expectResponse('REGISTER');
  assert.equal(replay.status_code, 401);
  assert.match(replay.text, /stale=true/);
  assert.equal((await d.metrics()).sipedge_auth_nc_replays_total, 1);
  assert.equal((await d.metrics()).sipedge_auth_failures_total, 0);
  await waitLog(d, /nonce count did not increase/);
  // ... and a nonce whose slot went to newer challenges never passes: a new one, stale=true.
  const old = credentials(ua.user, lasts[0].auth.match(/nonce="([^"]+)"/)[1], 2);
  await Promise.all(uas.slice(1, 6).map(async (u) => { // more than TABLE challenges since
    for (let i = 0; i < 60; i++) {
      u.send(u.request({ method: 'REGISTER', ruri: `sip:${DOMAIN}`, to: u.aor, cseq: 1, contactParams: ';expires=600' }).text);
      await u.expectResponse('REGISTER', 401);
    }
  }));
  ua.send(ua.request({ method: 'REGISTER', ruri: `sip:${DOMAIN}`, to: ua.aor, callId: lasts[0].callId,
    cseq: lasts[0].cseq + 2, contactParams: ';expires=600', headers: [old] }).text);
  const forgotten = await ua.expectResponse('REGISTER');
  assert.equal(forgotten.status_code, 401);
  assert.match(forgotten.text, /stale=true/);
  await waitLog(d, /nonce no longer tracked/);
});

async function waitLog(d, re) {
  for (let i = 0; i < 50 && !re.test(d.log()); i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(d.log(), re);
}
