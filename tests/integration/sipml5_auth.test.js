'use strict';
// sipML5's way with digest challenges, on the shipped configuration (etc/sipedge.conf). sipML5
// 2.1.4 (release/SIPml-api.js) keeps one challenge per WWW-Authenticate / Proxy-Authenticate
// header (tsip_dialog.update_challenges): the first header for a realm makes a challenge; any
// later header meets the challenges already kept, and unless it says stale=true it is "Failed to
// handle new challenge": the client gives up locally ("Unauthorized") without sending a second
// REGISTER. It answers every challenge it keeps with an MD5 digest whose uri is the Request-URI,
// and reuses its challenge with the next nc for the re-REGISTERs that follow.
// The client below is that logic, scripted over a WebSocket: it must register, send a MESSAGE and
// unregister with the shipped defaults, and it must give up where sipML5 does (several headers).
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { startDaemon, ROOT } = require('../lib/daemon');
const { SipWs, rand } = require('../lib/sipws');

const CONF = path.join(ROOT, 'etc', 'sipedge.conf');
const DOMAIN = 'sipedge.test';
const md5 = (s) => crypto.createHash('md5').update(s).digest('hex');

// The parameters of each challenge header, read from the raw text (JsSIP's parser keeps one).
function headers(msg, name) {
  const re = new RegExp(`^${name}:\\s*Digest\\s+(.*)$`, 'gim');
  return [...msg.text.matchAll(re)].map((m) => {
    const p = {};
    for (const x of m[1].matchAll(/([\w-]+)=(?:"([^"]*)"|([^,\s]*))/g)) p[x[1].toLowerCase()] = x[2] ?? x[3];
    return p;
  });
}

class Sipml5Auth {
  constructor(user, password) {
    this.user = user;
    this.password = password;
    this.challenges = []; // { proxy, realm, nonce, algorithm, qop, nc, cnonce }
  }

  // update_challenges: false where sipML5 gives up.
  update(resp) {
    for (const [name, proxy] of [['www-authenticate', false], ['proxy-authenticate', true]]) {
      for (const h of headers(resp, name)) {
        let isNew = true;
        for (const c of this.challenges.filter((x) => x.proxy === proxy)) {
          if (c.realm.toLowerCase() !== h.realm.toLowerCase() || h.stale?.toLowerCase() !== 'true')
            return false; // "Failed to handle new challenge"
          Object.assign(c, { nonce: h.nonce, algorithm: h.algorithm, qop: h.qop, nc: 1, cnonce: rand(8) });
          isNew = false;
        }
        if (isNew)
          this.challenges.push({ proxy, realm: h.realm, nonce: h.nonce, algorithm: h.algorithm, qop: h.qop,
            nc: 1, cnonce: rand(8) });
      }
    }
    return true;
  }

  // One credentials header per challenge kept, MD5, uri = the Request-URI.
  credentials(method, ruri) {
    return this.challenges.map((c) => {
      const nc = (c.nc++).toString(16).padStart(8, '0');
      const ha1 = md5(`${this.user}:${c.realm}:${this.password}`);
      const response = md5(`${ha1}:${c.nonce}:${nc}:${c.cnonce}:auth:${md5(`${method}:${ruri}`)}`);
      return `${c.proxy ? 'Proxy-Authorization' : 'Authorization'}: Digest username="${this.user}", ` +
        `realm="${c.realm}", nonce="${c.nonce}", uri="${ruri}", response="${response}", ` +
        `algorithm=${c.algorithm || 'MD5'}, cnonce="${c.cnonce}", qop=auth, nc=${nc}`;
    });
  }
}

// A request that sipML5 would send, retried once after a 401/407 it can handle; the final
// response, or 'gave up' where sipML5 stops.
async function send(ua, auth, opts) {
  const callId = opts.callId || rand(10);
  for (let cseq = opts.cseq, tries = 0; ; cseq++, tries++) {
    ua.send(ua.request({ ...opts, callId, cseq, headers: [...(opts.headers || []), ...auth.credentials(opts.method, opts.ruri)] }).text);
    const r = await ua.expectResponse(opts.method);
    if ((r.status_code !== 401 && r.status_code !== 407) || tries === 1) return r;
    if (!auth.update(r)) return 'gave up';
  }
}

// The shipped configuration as it is (only the port is moved), or with one line changed.
async function shippedDaemon(t, edit) {
  let config;
  if (edit) {
    config = fs.readFileSync(CONF, 'utf8').replace(edit[0], edit[1]);
    assert.notEqual(config, fs.readFileSync(CONF, 'utf8'));
  }
  const d = await startDaemon({ configFile: edit ? undefined : CONF, config, domains: [], listen: ['ws:127.0.0.1:0'] });
  t.after(() => d.stop());
  return d;
}

async function client(t, d, user, password) {
  const ua = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}`, { user, domain: DOMAIN });
  t.after(() => ua.close());
  return { ua, auth: new Sipml5Auth(user, password), callId: rand(10) };
}

function register(c, cseq, expires = 200) {
  return send(c.ua, c.auth, { method: 'REGISTER', ruri: `sip:${DOMAIN}`, to: c.ua.aor, callId: c.callId, cseq,
    contactParams: `;expires=${expires}` });
}

test('a client keeping one challenge per header (sipML5) registers, re-registers, sends MESSAGE and unregisters on the shipped defaults', async (t) => {
  const d = await shippedDaemon(t);
  const alice = await client(t, d, 'alice', 'alice-password');
  const bob = await client(t, d, 'bob', 'bob-password');
  assert.equal((await register(alice, 1)).status_code, 200);
  assert.equal((await register(bob, 1)).status_code, 200);
  assert.equal(alice.auth.challenges.length, 1);
  // The re-REGISTER reuses the challenge with the next nc: no new challenge.
  const again = await register(alice, 3);
  assert.equal(again.status_code, 200);

  // A MESSAGE is a dialog of its own in sipML5, with its own challenges: 407, then through.
  const msgAuth = new Sipml5Auth('alice', 'alice-password');
  const message = send(alice.ua, msgAuth, { method: 'MESSAGE', ruri: bob.ua.aor, cseq: 1, to: bob.ua.aor });
  const got = await bob.ua.expectRequest('MESSAGE');
  bob.ua.respond(got, 200, 'OK');
  assert.equal((await message).status_code, 200);
  assert.equal(got.getHeader('proxy-authorization'), undefined);
  assert.deepEqual(msgAuth.challenges.map((c) => c.proxy), [true]);

  assert.equal((await register(alice, 5, 0)).status_code, 200);
  const metrics = await (await fetch(`http://127.0.0.1:${d.ports.ws}/metrics`)).text();
  assert.match(metrics, /^sipedge_auth_failures_total 0$/m);
});

test('the same client gives up, as sipML5 does, when WebSocket is offered MD5 and SHA-256', async (t) => {
  // What the shipped defaults were before: MD5, SHA-256, MD5 on every listener.
  const d = await shippedDaemon(t, [/websocket_algorithms = \[ "MD5" \];/, 'websocket_algorithms = [ "MD5", "SHA-256" ];']);
  const alice = await client(t, d, 'alice', 'alice-password');
  assert.equal(await register(alice, 1), 'gave up');
});
