'use strict';
// "Nothing acknowledged is lost", for each persistent store (SQLite file, real redis-server):
// N REGISTERs over UDP, each answered 200, the daemon killed with SIGKILL the moment the last
// 200 arrives; the store holds all N (read back with sqlite3 / redis-cli, then loaded by a new
// process). The same for removals: unregistered, killed, restarted: they stay gone. A WebSocket
// REGISTER's 200 is as durable, and by the documented policy a restart drops such a binding
// (its connection died with the process). The batch window is made long here (200 ms): were a
// 200 sent before its batch commits, the kill would land inside the window and lose bindings.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { startDaemon } = require('../lib/daemon');
const { until } = require('../lib/until');
const { SipUdp } = require('../lib/sipudp');
const { SipWs } = require('../lib/sipws');
const { startRedis } = require('../lib/redis');

const DOMAIN = 'example.com';
const N = 300;
const WINDOW = 50; // REGISTERs in flight at once

// A REGISTER for user, retransmitted (same text, same branch) until a final response comes.
async function register(phone, user, expires) {
  const contact = `sip:${user}@127.0.0.1:${phone.local.port}`;
  const req = phone.request({ method: 'REGISTER', ruri: `sip:${DOMAIN}`, to: `sip:${user}@${DOMAIN}`, user,
    headers: [`Contact: <${contact}>`, `Expires: ${expires}`] });
  for (let attempt = 0; attempt < 5; attempt++) {
    await phone.send(req.text);
    const res = await phone.final(req.callId, 2000);
    if (res) return res.status_code;
  }
  return 0;
}

// Every user registered (or unregistered), WINDOW at a time; SIGKILL as soon as the last 200 is in.
async function registerAllThenKill(d, phone, users, expires) {
  const statuses = [];
  let next = 0;
  let answered = 0;
  await new Promise((resolve) => {
    const one = async () => {
      const i = next++;
      if (i >= users.length) return;
      statuses[i] = await register(phone, users[i], expires);
      if (++answered === users.length) {
        d.child.kill('SIGKILL'); // at once, in the same turn as the last answer
        resolve();
      } else {
        one();
      }
    };
    for (let k = 0; k < WINDOW; k++) one();
  });
  await new Promise((resolve) => (d.child.exitCode !== null || d.child.signalCode !== null ? resolve() : d.child.once('exit', resolve)));
  assert.equal(d.child.signalCode, 'SIGKILL');
  return statuses;
}

const users = Array.from({ length: N }, (_, i) => `u${i}`);

// The two stores, each with how to read what it holds (a list of AOR names).
const stores = {
  sqlite: async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipedge-durable-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const db = path.join(dir, 'bindings.sqlite');
    return {
      config: `store = "sqlite"; store_path = "${db}";`,
      held: async () => execFileSync('sqlite3', [db, 'SELECT aor FROM bindings'], { encoding: 'utf8' })
        .trim().split('\n').filter(Boolean),
    };
  },
  redis: async (t) => {
    const r = await startRedis();
    t.after(() => r.destroy());
    return {
      config: `store = "redis"; store_path = "${r.url}";`,
      held: async () => {
        const keys = (await r.cli('--scan', '--pattern', 'sipedge:b:*')).split('\n').filter(Boolean);
        const aors = [];
        for (const k of keys) aors.push(await r.cli('HGET', k, 'aor'));
        return aors;
      },
    };
  },
};

for (const [name, make] of Object.entries(stores)) {
  test(`${name}: ${N} acknowledged REGISTERs and then removals survive kill -9`, async (t) => {
    const store = await make(t);
    const options = {
      listen: ['ws:127.0.0.1:0', 'udp:127.0.0.1:0'], domains: [DOMAIN], args: ['--no-auth'],
      config: `http = { web_root = ""; };\nlimits = { requests_per_second = 0; };\n` +
        `registrar = { ${store.config} store_batch_ms = 200; };\ncluster = { node_id = "node-a"; };\n`,
    };
    const d1 = await startDaemon(options);
    t.after(() => d1.child.kill('SIGKILL'));
    const phone = await SipUdp.open({ port: d1.ports.udp, domain: DOMAIN });
    t.after(() => phone.close());
    // A browser's binding first: its 200 is as durable as any.
    const alice = await SipWs.connect(`ws://127.0.0.1:${d1.ports.ws}`, { user: 'alice', domain: DOMAIN });
    t.after(() => alice.ws.terminate());
    assert.equal((await alice.register()).status_code, 200);

    const added = await registerAllThenKill(d1, phone, users, 600);
    assert.deepEqual(added.filter((s) => s !== 200), [], 'every REGISTER was answered 200');
    const held = new Set(await store.held());
    const missing = users.filter((u) => !held.has(`sip:${u}@${DOMAIN}`));
    assert.deepEqual(missing, [], 'every acknowledged binding is in the store after kill -9');
    assert.ok(held.has(`sip:alice@${DOMAIN}`), 'the WebSocket binding was stored before its 200');

    // A new process loads them; alice's connection died with the old one: dropped (the policy).
    const d2 = await startDaemon(options);
    t.after(() => d2.child.kill('SIGKILL'));
    await until('the load is logged', () =>
      new RegExp(`registrar: store ${name}: ${N} bindings loaded, 1 stale dropped`).test(d2.log()), { ms: 10000 });
    assert.equal((await d2.metrics()).sipedge_registrar_bindings, N);
    await until('alice left the store', async () => !(await store.held()).includes(`sip:alice@${DOMAIN}`), { ms: 10000 });

    // Removals: half of them unregistered, the process killed at the last 200.
    phone.port = d2.ports.udp;
    const gone = users.filter((_, i) => i % 2 === 0);
    const removed = await registerAllThenKill(d2, phone, gone, 0);
    assert.deepEqual(removed.filter((s) => s !== 200), [], 'every unREGISTER was answered 200');
    const after = new Set(await store.held());
    assert.deepEqual(gone.filter((u) => after.has(`sip:${u}@${DOMAIN}`)), [], 'no removed binding is back');
    assert.equal(after.size, N - gone.length);

    const d3 = await startDaemon(options);
    t.after(() => d3.stop());
    await until('the second load is logged', () =>
      new RegExp(`registrar: store ${name}: ${N - gone.length} bindings loaded`).test(d3.log()), { ms: 10000 });
    assert.equal((await d3.metrics()).sipedge_registrar_bindings, N - gone.length);
  });
}
