'use strict';
// registrar.store = "sqlite": bindings are written to a real SQLite file (read back here with
// Debian's sqlite3 tool) and a restarted daemon loads them. A UDP phone's binding survives a
// crash and restart and still gets its calls; a WebSocket binding, whose connection died with
// the old process, is dropped at load (a clean stop drops it already, with the connection).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { startDaemon } = require('../lib/daemon');
const { SipUdp } = require('../lib/sipudp');
const { SipWs } = require('../lib/sipws');

const DOMAIN = 'example.com';

function rows(db) {
  return execFileSync('sqlite3', [db, 'SELECT aor, uri FROM bindings ORDER BY aor'], { encoding: 'utf8' })
    .trim().split('\n').filter(Boolean);
}

async function until(what, pred) {
  for (let i = 0; i < 50 && !pred(); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(pred(), what);
}

test('bindings in an SQLite file survive a crash; connection-bound ones are dropped at load', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipedge-sqlite-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const db = path.join(dir, 'bindings.sqlite');
  const options = {
    listen: ['ws:127.0.0.1:0', 'udp:127.0.0.1:0'], domains: [DOMAIN], args: ['--no-auth'],
    config: `http = { web_root = ""; };\nregistrar = { store = "sqlite"; store_path = "${db}"; };\n`,
  };

  const d1 = await startDaemon(options);
  t.after(() => d1.child.kill('SIGKILL'));
  assert.match(d1.log(), new RegExp(`registrar: store sqlite ${db.replace(/[.]/g, '\\.')};`));
  // carol: a SIP phone on UDP, reached at her Contact address.
  const carol = await SipUdp.open({ port: d1.ports.udp, domain: DOMAIN });
  t.after(() => carol.close());
  const contact = `sip:carol@127.0.0.1:${carol.local.port}`;
  const reg = carol.request({ method: 'REGISTER', ruri: `sip:${DOMAIN}`, to: `sip:carol@${DOMAIN}`, user: 'carol',
    headers: [`Contact: <${contact}>`, 'Expires: 600'] });
  await carol.send(reg.text);
  assert.equal((await carol.final(reg.callId)).status_code, 200);
  // alice: a browser, bound to her WebSocket connection.
  const alice = await SipWs.connect(`ws://127.0.0.1:${d1.ports.ws}`, { user: 'alice', domain: DOMAIN });
  t.after(() => alice.ws.terminate());
  assert.equal((await alice.register()).status_code, 200);
  // Writes are committed in batches (50 ms).
  await until('both bindings in the file', () => rows(db).length === 2);
  assert.match(rows(db)[0], /^sip:alice@example\.com\|sip:[^|]+\.invalid/);
  assert.equal(rows(db)[1], `sip:carol@example.com|${contact}`);
  // The process dies at once: nothing is closed or cleaned up.
  const killed = new Promise((resolve) => d1.child.once('exit', resolve));
  d1.child.kill('SIGKILL');
  await killed;

  // A new process on the same file.
  const d2 = await startDaemon(options);
  t.after(() => d2.stop());
  await until('the load is logged', () => /registrar: store sqlite: 1 bindings loaded, 1 stale dropped/.test(d2.log()));
  assert.equal((await d2.metrics()).sipedge_registrar_bindings, 1);
  await until('alice\'s binding left the file', () => rows(db).length === 1);
  assert.equal(rows(db)[0], `sip:carol@example.com|${contact}`);

  // bob calls carol through the new process: the loaded binding leads to her address.
  const bob = await SipWs.connect(`ws://127.0.0.1:${d2.ports.ws}`, { user: 'bob', domain: DOMAIN });
  t.after(() => bob.ws.terminate());
  assert.equal((await bob.register()).status_code, 200);
  bob.send(bob.request({ method: 'MESSAGE', ruri: `sip:carol@${DOMAIN}` }).text);
  const msg = await carol.next((m) => m.method === 'MESSAGE', 5000);
  assert.ok(msg, 'carol got the MESSAGE after the restart');
  assert.match(msg.text, new RegExp(`^MESSAGE ${contact} SIP/2.0\\r\\n`));
  const keep = msg.text.split('\r\n').filter((l) => /^(Via|From|To|Call-ID|CSeq):/i.test(l));
  carol.port = d2.ports.udp; // the new process listens elsewhere
  await carol.send(['SIP/2.0 200 OK', ...keep.map((l) => (/^To:/i.test(l) ? `${l};tag=c1` : l)), 'Content-Length: 0', '', ''].join('\r\n'));
  assert.equal((await bob.expectResponse('MESSAGE', undefined, 5000)).status_code, 200);
});

test('a store file that cannot be opened stops the daemon at start, with the reason', async () => {
  await assert.rejects(startDaemon({
    listen: ['ws:127.0.0.1:0'], args: ['--no-auth'],
    config: 'registrar = { store = "sqlite"; store_path = "/nonexistent-dir/bindings.sqlite"; };\n',
  }), /registrar: store sqlite \/nonexistent-dir\/bindings\.sqlite: cannot open/);
  await assert.rejects(startDaemon({
    listen: ['ws:127.0.0.1:0'], args: ['--no-auth'], config: 'registrar = { store = "sqlite"; };\n',
  }), /registrar\.store = "sqlite" needs registrar\.store_path/);
});
