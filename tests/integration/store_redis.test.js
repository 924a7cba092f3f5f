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
