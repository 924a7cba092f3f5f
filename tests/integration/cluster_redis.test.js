'use strict';
// A cluster node's commands to Redis that go unanswered (cluster/cluster.c, cmd_overdue): two real
// nodes share a real redis-server; Redis stopped with SIGSTOP (it keeps its connections and
// answers nothing), or node A's path to it cut by a relay that drops what it carries without
// closing anything. Past registrar.store_timeout the node says so, counts it, drops both its
// connections and makes them again, so that its heartbeats resume and the other node keeps (or
// finds again) it alive, and it reads again what it missed meanwhile.
const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const { startDaemon } = require('../lib/daemon');
const { until } = require('../lib/until');
const { freePort, freeUdpPort } = require('../lib/ports');
const { startRedis } = require('../lib/redis');
const { startRelay } = require('../lib/relay');
const { SipWs } = require('../lib/sipws');

const DOMAIN = 'example.com';
const NODE_TIMEOUT = 2; // s
const HEARTBEAT = 500; // ms
const TIMEOUT = 500; // ms, registrar.store_timeout

async function startNode(name, url) {
  const ws = await freePort();
  const udp = await freeUdpPort();
  const d = await startDaemon({
    listen: [`ws:127.0.0.1:${ws}`, `udp:127.0.0.1:${udp}`], domains: [DOMAIN], args: ['--no-auth'],
    config: 'http = { web_root = ""; };\n' +
      `registrar = { store = "redis"; store_path = "${url}"; store_timeout = ${TIMEOUT}; };\n` +
      `cluster = { node_id = "${name}"; advertise = "sip:127.0.0.1:${udp};transport=udp"; ` +
      `secret = "the cluster's shared secret"; node_timeout = ${NODE_TIMEOUT}; heartbeat_interval = ${HEARTBEAT}; };\n` +
      'proxy = { flow_token_secret = "0123456789abcdef0123456789abcdef"; };\n' +
      'auth = { nonce_secret = "one nonce secret for all"; };\n',
  });
  d.name = name;
  d.advertise = `sip:127.0.0.1:${udp};transport=udp`;
  return d;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const metric = async (d, name) => (await d.metrics())[name];

// Two nodes that see each other; A reaches Redis at aUrl (the relay, or Redis itself).
async function twoNodes(t, redis, aUrl) {
  const a = await startNode('A', aUrl);
  t.after(() => a.stop());
  const b = await startNode('B', redis.url);
  t.after(() => b.stop());
  for (const d of [a, b])
    await until(`${d.name} sees the other`, async () => (await metric(d, 'sipedge_cluster_nodes_alive')) === 1, { ms: 10000 });
  return { a, b };
}

async function register(t, d, user) {
  const p = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}`, { user, domain: DOMAIN });
  t.after(() => p.ws.terminate());
  assert.equal((await p.register()).status_code, 200, `${user} registers on ${d.name}`);
  return p;
}

// A's heartbeats go on: its key is back and stays, refreshed, for longer than its TTL (without
// them it lapses within node_timeout), and B counts A alive. (B's own count alone would not do:
// for a grace period after B's last connect to Redis a lapsed key does not count.)
async function heartbeatsGoOn(redis, a, b) {
  const key = 'sipedge:node:{A}';
  await until('A\'s heartbeat key is back', async () => (await redis.cli('GET', key)) === a.advertise, { ms: 10000 });
  const end = Date.now() + NODE_TIMEOUT * 1000 + HEARTBEAT;
  while (Date.now() < end) {
    assert.ok(Number(await redis.cli('PTTL', key)) > 0, 'A\'s heartbeat key is refreshed before it lapses');
    await sleep(200);
  }
  assert.equal(await metric(b, 'sipedge_cluster_nodes_alive'), 1, 'B counts A alive');
}

const timedOut = (port) => new RegExp(`warn\\s+cluster: redis 127\\.0\\.0\\.1:${port}/0: (\\d+) commands? ` +
  `not answered within ${TIMEOUT} ms \\(registrar\\.store_timeout\\): dropping the connections`);

test('cluster: Redis stopped (SIGSTOP) past the timeout: the nodes drop and remake their connections, heartbeats resume', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.destroy());
  const { a, b } = await twoNodes(t, redis, redis.url);

  // The subscribers (sent nothing, so nothing to time) keep TCP keepalive on, the others not.
  const clients = execFileSync('ss', ['-tnoH', 'state', 'established', `( dport = :${redis.port} )`], { encoding: 'utf8' })
    .split('\n').filter(Boolean);
  assert.equal(clients.filter((l) => /timer:\(keepalive,/.test(l)).length, 2,
    `one connection with keepalive per node (its subscriber):\n${clients.join('\n')}`);

  redis.signal('SIGSTOP');
  for (const d of [a, b])
    await until(`${d.name} gives the stalled Redis up`, async () => timedOut(redis.port).test(d.log()), { ms: 5000 });
  for (const d of [a, b]) {
    const m = await d.metrics();
    assert.equal(m.sipedge_cluster_redis_timeouts_total, 1, `${d.name} counted the timeout once`);
    assert.equal(m.sipedge_cluster_redis_up, 0, `${d.name} reports Redis down`);
  }
  // Past the heartbeat keys' TTL: once Redis runs again, only new heartbeats bring them back.
  await sleep(NODE_TIMEOUT * 1000);
  redis.signal('SIGCONT');

  for (const d of [a, b]) {
    await until(`${d.name} reconnects`, async () => (await metric(d, 'sipedge_cluster_redis_up')) === 1, { ms: 10000 });
    assert.match(d.log(), /notice\s+cluster: redis 127\.0\.0\.1:\d+\/0: reachable again/);
  }
  await heartbeatsGoOn(redis, a, b);
  assert.equal(await metric(b, 'sipedge_cluster_node_down_total'), 0, 'the grace after a reconnect kept A alive');
  assert.equal(await metric(a, 'sipedge_cluster_redis_timeouts_total'), 1, 'no timeout once Redis answers');
  assert.equal((a.log().match(/warn\s+cluster: redis/g) || []).length, 1, 'one warning for the outage');
});

test('cluster: node A\'s path to Redis goes silent: A remakes its connections, heartbeats resume, what it missed is read', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.destroy());
  const relay = await startRelay(redis.port);
  t.after(() => relay.close());
  const { a, b } = await twoNodes(t, redis, relay.url);

  // Everything A had open to Redis (store, commands, subscriber) goes silent; carol registers
  // on B meanwhile, and the announcement is lost on the way to A.
  relay.cut();
  await register(t, b, 'carol');
  await until('A gives the silent connection up', async () => timedOut(relay.port).test(a.log()), { ms: 5000 });
  assert.equal(await metric(a, 'sipedge_cluster_redis_timeouts_total'), 1);
  await until('A reconnects', async () => (await metric(a, 'sipedge_cluster_redis_up')) === 1, { ms: 10000 });
  await until('A read carol\'s binding on B again', async () => (await metric(a, 'sipedge_cluster_remote_bindings')) === 1, { ms: 10000 });
  await heartbeatsGoOn(redis, a, b);
  assert.equal(await metric(b, 'sipedge_cluster_redis_timeouts_total'), 0, 'B, whose path is fine, timed nothing out');
});

test('cluster: what node A sends is lost, replies still come: its read of an announced AOR fails with the heartbeat, and is made up', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.destroy());
  const relay = await startRelay(redis.port);
  t.after(() => relay.close());
  const { a, b } = await twoNodes(t, redis, relay.url);

  // A hears carol's announcement and sends its read of her AOR, which never reaches Redis.
  const updates = await metric(a, 'sipedge_cluster_updates_total');
  relay.cut('requests');
  await register(t, b, 'carol');
  await until('A gives the connection up', async () => timedOut(relay.port).test(a.log()), { ms: 5000 });
  assert.equal(await metric(a, 'sipedge_cluster_updates_total'), updates + 1, 'A heard the announcement');
  assert.ok(Number(timedOut(relay.port).exec(a.log())[1]) >= 2, 'the heartbeat and the read were waiting');
  await until('A reconnects', async () => (await metric(a, 'sipedge_cluster_redis_up')) === 1, { ms: 10000 });
  await until('A read carol\'s binding again', async () => (await metric(a, 'sipedge_cluster_remote_bindings')) === 1, { ms: 10000 });
  // The read that was lost did not bring her: the full read after the reconnect did.
  const at = timedOut(relay.port).exec(a.log()).index;
  assert.match(a.log().slice(at), /info\s+cluster: read the other nodes' bindings: 1 bindings of 1 AORs/);
  await heartbeatsGoOn(redis, a, b);
});
