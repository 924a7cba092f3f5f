'use strict';
// registrar.store = "redis" against a real redis-server started here (its own port and data
// directory): bindings are written through with their expiry as the key's TTL and the node that
// holds them, come back after a restart (only this node's), and a Redis that goes away while the
// daemon runs turns REGISTERs into 503 + Retry-After while calls to known bindings still work;
// once it is back, REGISTERs are answered 200 again.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startDaemon } = require('../lib/daemon');
const { SipUdp } = require('../lib/sipudp');
const { SipWs } = require('../lib/sipws');
const { startRedis } = require('../lib/redis');

const DOMAIN = 'example.com';

function options(url, extra = '') {
  return {
    listen: ['ws:127.0.0.1:0', 'udp:127.0.0.1:0'], domains: [DOMAIN], args: ['--no-auth'],
    config: `http = { web_root = ""; };\nregistrar = { store = "redis"; store_path = "${url}"; ${extra} };\n` +
      'cluster = { node_id = "node-a"; };\n',
  };
}

async function until(what, pred, ms = 10000) {
  const end = Date.now() + ms;
  while (Date.now() < end && !(await pred())) await new Promise((r) => setTimeout(r, 100));
  assert.ok(await pred(), what);
}

// A UDP phone's REGISTER; the whole final response.
async function register(phone, user, expires = 600) {
  const req = phone.request({ method: 'REGISTER', ruri: `sip:${DOMAIN}`, to: `sip:${user}@${DOMAIN}`, user,
    headers: [`Contact: <sip:${user}@127.0.0.1:${phone.local.port}>`, `Expires: ${expires}`] });
  await phone.send(req.text);
  return phone.final(req.callId, 5000);
}

// bob (WebSocket) sends a MESSAGE to carol (UDP); carol answers it; bob's final status.
async function message(bob, carol) {
  bob.send(bob.request({ method: 'MESSAGE', ruri: `sip:carol@${DOMAIN}` }).text);
  const msg = await carol.next((m) => m.method === 'MESSAGE', 5000);
  assert.ok(msg, 'carol got the MESSAGE');
  const keep = msg.text.split('\r\n').filter((l) => /^(Via|From|To|Call-ID|CSeq):/i.test(l));
  await carol.send(['SIP/2.0 200 OK', ...keep.map((l) => (/^To:/i.test(l) ? `${l};tag=c1` : l)), 'Content-Length: 0', '', ''].join('\r\n'));
  return (await bob.expectResponse('MESSAGE', undefined, 5000)).status_code;
}

const CAROL = `sipedge:b:{sip:carol@${DOMAIN}}:`;

test('redis: bindings written through with TTL and node, loaded after a restart (this node\'s only)', async (t) => {
  const redis = await startRedis({ password: 's3cret' });
  t.after(() => redis.destroy());
  // The password in its own setting; the URL carries the address and the database.
  const url = `redis://127.0.0.1:${redis.port}/3`;
  const d1 = await startDaemon(options(url, 'store_password = "s3cret";'));
  t.after(() => d1.child.kill('SIGKILL'));
  assert.match(d1.log(), new RegExp(`registrar: store redis ${url.replace(/[/.]/g, '\\$&')};`));
  const carol = await SipUdp.open({ port: d1.ports.udp, domain: DOMAIN });
  t.after(() => carol.close());
  assert.equal((await register(carol, 'carol')).status_code, 200);

  const key = `${CAROL}u:sip:carol@127.0.0.1:${carol.local.port}`;
  const db3 = (...a) => redis.cli('-n', '3', ...a);
  assert.equal(await db3('HGET', key, 'uri'), `sip:carol@127.0.0.1:${carol.local.port}`);
  assert.equal(await db3('HGET', key, 'node'), 'node-a');
  const ttl = Number(await db3('TTL', key));
  assert.ok(ttl > 590 && ttl <= 600, `the key expires with the binding (TTL ${ttl})`);
  const index = `sipedge:aor:{sip:carol@${DOMAIN}}`;
  assert.equal(await db3('ZRANGE', index, '0', '-1'), `u:sip:carol@127.0.0.1:${carol.local.port}`);
  assert.equal(await redis.cli('-n', '0', 'DBSIZE'), '0', 'nothing in another database');
  // A binding another node holds: never loaded here.
  const other = `${'sipedge:b:{sip:zoe@'}${DOMAIN}}:u:sip:zoe@192.0.2.7`;
  await db3('HSET', other, 'aor', `sip:zoe@${DOMAIN}`, 'key', 'u:sip:zoe@192.0.2.7', 'contact', '<sip:zoe@192.0.2.7>',
    'uri', 'sip:zoe@192.0.2.7', 'expires_at', String(Math.floor(Date.now() / 1000) + 600), 'node', 'node-b');
  await d1.stop();

  // A wrong password stops the start with the reason.
  await assert.rejects(startDaemon(options(url, 'store_password = "wrong";')), /AUTH refused/);

  // The password in the URL works the same.
  const d2 = await startDaemon(options(`redis://:s3cret@127.0.0.1:${redis.port}/3`));
  t.after(() => d2.stop());
  await until('the load is logged', () => /registrar: store redis: 1 bindings loaded/.test(d2.log()));
  assert.equal((await d2.metrics()).sipedge_registrar_bindings, 1);
  assert.equal((await d2.metrics()).sipedge_registrar_store_up, 1);
  assert.equal(await db3('HGET', other, 'node'), 'node-b', 'the other node\'s binding is left alone');
  const bob = await SipWs.connect(`ws://127.0.0.1:${d2.ports.ws}`, { user: 'bob', domain: DOMAIN });
  t.after(() => bob.ws.terminate());
  assert.equal((await bob.register()).status_code, 200);
  carol.port = d2.ports.udp;
  assert.equal(await message(bob, carol), 200, 'the loaded binding still reaches carol');
  // Unregistering removes the key and its index entry.
  assert.equal((await register(carol, 'carol', 0)).status_code, 200);
  assert.equal(await db3('EXISTS', key), '0');
  assert.equal(await db3('EXISTS', index), '0');
});

test('redis: unreachable while running: 503 with Retry-After, known bindings still called, 200 once back', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.destroy());
  const d = await startDaemon(options(redis.url, 'store_retry_after = 7;'));
  t.after(() => d.stop());
  const carol = await SipUdp.open({ port: d.ports.udp, domain: DOMAIN });
  t.after(() => carol.close());
  assert.equal((await register(carol, 'carol')).status_code, 200);
  const bob = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}`, { user: 'bob', domain: DOMAIN });
  t.after(() => bob.ws.terminate());
  assert.equal((await bob.register()).status_code, 200);

  await redis.stop();
  await until('the store is reported down', async () => (await d.metrics()).sipedge_registrar_store_up === 0);
  assert.match(d.log(), /warn\s+registrar: store redis 127\.0\.0\.1:\d+\/0: unreachable/);
  const dave = await SipUdp.open({ port: d.ports.udp, domain: DOMAIN });
  t.after(() => dave.close());
  const refused = await register(dave, 'dave');
  assert.equal(refused.status_code, 503);
  assert.equal(refused.getHeader('Retry-After'), '7');
  // A refresh of a known binding is refused too (it could not be stored), but carol stays bound.
  assert.equal((await register(carol, 'carol')).status_code, 503);
  const m = await d.metrics();
  assert.equal(m.sipedge_registrar_store_unavailable_total, 2);
  assert.equal(m.sipedge_registrar_bindings, 2);
  assert.equal(await message(bob, carol), 200, 'calls to known bindings still work');

  await redis.start();
  await until('the store is back', async () => (await d.metrics()).sipedge_registrar_store_up === 1, 15000);
  assert.match(d.log(), /notice\s+registrar: store redis 127\.0\.0\.1:\d+\/0: reachable again/);
  assert.ok((await d.metrics()).sipedge_registrar_store_reconnects_total >= 1);
  assert.equal((await register(dave, 'dave')).status_code, 200);
  assert.equal(await redis.cli('HGET', `sipedge:b:{sip:dave@${DOMAIN}}:u:sip:dave@127.0.0.1:${dave.local.port}`, 'node'), 'node-a');
});

test('redis: a stalled Redis: waiting REGISTERs answered 503 once store_timeout passes, once each, 200 after', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.destroy());
  const d = await startDaemon(options(redis.url, 'store_timeout = 500; store_retry_after = 9;'));
  t.after(() => d.stop());
  const phones = [];
  for (let i = 0; i < 3; i++) {
    const p = await SipUdp.open({ port: d.ports.udp, domain: DOMAIN });
    t.after(() => p.close());
    phones.push(p);
  }
  assert.equal((await register(phones[0], 'u0')).status_code, 200);

  // Redis keeps the connection open and takes the commands, but answers nothing.
  redis.signal('SIGSTOP');
  const started = Date.now();
  const reqs = phones.map((p, i) => p.request({ method: 'REGISTER', ruri: `sip:${DOMAIN}`, to: `sip:u${i}@${DOMAIN}`,
    user: `u${i}`, headers: [`Contact: <sip:u${i}@127.0.0.1:${p.local.port}>`, 'Expires: 600'] }));
  await Promise.all(phones.map((p, i) => p.send(reqs[i].text)));
  const answers = await Promise.all(phones.map((p, i) => p.final(reqs[i].callId, 5000)));
  const took = Date.now() - started;
  for (const a of answers) {
    assert.ok(a, 'every waiting REGISTER is answered');
    assert.equal(a.status_code, 503);
    assert.equal(a.getHeader('Retry-After'), '9');
  }
  assert.ok(took >= 400 && took < 3000, `answered at the deadline (${took} ms)`);
  const m = await d.metrics();
  assert.equal(m.sipedge_registrar_store_timeouts_total, 1, 'one deadline passed');
  assert.equal(m.sipedge_registrar_store_held, 0, 'nothing left waiting');
  assert.equal(m.sipedge_registrar_store_up, 0);
  assert.match(d.log(), /warn\s+registrar: store redis 127\.0\.0\.1:\d+\/0: a write not acknowledged within 500 ms/);

  // Redis wakes up: what it had read is executed, but nothing reaches the dropped connection,
  // so no REGISTER is answered a second time; the store reconnects and takes writes again.
  redis.signal('SIGCONT');
  await until('the store is back', async () => (await d.metrics()).sipedge_registrar_store_up === 1, 15000);
  for (let i = 0; i < phones.length; i++)
    assert.equal(await phones[i].final(reqs[i].callId, 300), null, `no second answer to u${i}`);
  assert.equal((await register(phones[1], 'u1')).status_code, 200);
  assert.equal((await d.metrics()).sipedge_registrar_store_timeouts_total, 1);
});

test('redis: the URL\'s password runs to the last @, its %XX escapes decoded; logs mask it', async (t) => {
  const password = 'p@ss/w%rd';
  const redis = await startRedis({ password });
  t.after(() => redis.destroy());
  const url = `redis://:p@ss%2Fw%25rd@127.0.0.1:${redis.port}/0`;
  const d = await startDaemon(options(url));
  t.after(() => d.stop());
  const carol = await SipUdp.open({ port: d.ports.udp, domain: DOMAIN });
  t.after(() => carol.close());
  assert.equal((await register(carol, 'carol')).status_code, 200);
  assert.equal(await redis.cli('HGET', `${CAROL}u:sip:carol@127.0.0.1:${carol.local.port}`, 'node'), 'node-a');
  assert.match(d.log(), /registrar: store redis redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/0;/);
  assert.doesNotMatch(d.log(), /p@ss|w%25rd/);

  // A store_path that does not parse is named in the error, but not its password.
  const bad = await startDaemon(options('redis://:hunter2@127.0.0.1:notaport/0')).then(
    () => assert.fail('started with a malformed store_path'), (e) => e.message);
  assert.match(bad, /'redis:\/\/:\*\*\*@127\.0\.0\.1:notaport\/0' is not redis:\/\//);
  assert.doesNotMatch(bad, /hunter2/);
});
