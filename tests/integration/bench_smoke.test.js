'use strict';
// make bench's load generator (tests/bench/sipload) against the daemon for a second or so per
// scenario, with the benchmark's own configuration (tests/bench/sipedge.conf): every scenario
// completes operations and none fails, so the tool cannot rot between benchmark runs. No timing
// is asserted here; the figures are make bench's business.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { startDaemon, ROOT, BIN } = require('../lib/daemon');

const SIPLOAD = process.env.SIPLOAD_BIN || path.join(path.dirname(BIN), 'tests', 'bench', 'sipload');
const CONFIG = path.join(ROOT, 'tests', 'bench', 'sipedge.conf');
const DOMAIN = 'bench.test';
const COLUMNS = ['label', 'scenario', 'ops', 'failed', 'rate', 'cpu_us', 'p50_us', 'p99_us', 'pss_b', 'rss_b', 'idle_pct', 'failures'];

function sipload(d, args) {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sipload-')), 'result.tsv');
  return new Promise((resolve) => {
    execFile(SIPLOAD, ['--server', `127.0.0.1:${d.ports.ws}`, '--domain', DOMAIN, '--pid', String(d.child.pid),
      '--out', out, ...args], { timeout: 60000 }, (err, stdout, stderr) => {
      const text = fs.existsSync(out) ? fs.readFileSync(out, 'utf8').trim() : '';
      const fields = text.split('\t');
      const r = Object.fromEntries(COLUMNS.map((c, i) => [c, fields[i]]));
      resolve({ code: err ? err.code : 0, stdout, stderr, r });
    });
  });
}

function assertClean(res, what) {
  const detail = `${what}:\n${res.stdout}${res.stderr}`;
  assert.strictEqual(res.code, 0, detail);
  assert.ok(Number(res.r.ops) > 0, `no operation completed; ${detail}`);
  assert.strictEqual(res.r.failed, '0', detail);
  assert.strictEqual(res.r.failures, '-', detail);
}

test('sipload: WebSocket REGISTER refreshes and calls with 1 KB SDP complete without failure', async () => {
  const d = await startDaemon({ listen: ['ws:127.0.0.1:0'], domains: [DOMAIN], configFile: CONFIG, args: ['--no-auth'] });
  try {
    const reg = await sipload(d, ['--conns', '10', '--duration', '1', 'register']);
    assertClean(reg, 'register');
    assert.ok(Number(reg.r.p99_us) >= Number(reg.r.p50_us) && Number(reg.r.p50_us) > 0, JSON.stringify(reg.r));
    assert.ok(Number(reg.r.cpu_us) > 0, 'the daemon used no CPU time, or it was not measured');
    assertClean(await sipload(d, ['--conns', '10', '--duration', '1', '--rate', '200', 'register']), 'paced register');
    assertClean(await sipload(d, ['--conns', '10', '--duration', '1', 'call']), 'call');
    assertClean(await sipload(d, ['--conns', '10', '--duration', '1', '--rate', '50', 'call']), 'paced call');
    const idle = await sipload(d, ['--conns', '20', '--idle', '1', 'idle']);
    assertClean(idle, 'idle');
    assert.strictEqual(idle.r.ops, '20', 'every idle connection stays open');
    assert.ok(Number(idle.r.rss_b) > 0, 'the memory of the connections was measured');
  } finally {
    await d.stop();
  }
});

test('sipload: every REGISTER challenged and answered with an MD5 digest gets its 200', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipload-users-'));
  const users = path.join(dir, 'users');
  fs.writeFileSync(users, Array.from({ length: 10 }, (_, i) => `b${i}:pw-b${i}\n`).join(''), { mode: 0o600 });
  const d = await startDaemon({ listen: ['ws:127.0.0.1:0'], domains: [DOMAIN], configFile: CONFIG, args: ['--users', users] });
  try {
    assertClean(await sipload(d, ['--conns', '10', '--duration', '1', 'register-auth']), 'register-auth');
    // without the challenge answered, the same daemon refuses: the digest is what passed
    const plain = await sipload(d, ['--conns', '2', '--duration', '0.2', 'register']);
    assert.strictEqual(plain.r.ops, '0');
    assert.match(plain.r.failures, /^401:\d+$/);
  } finally {
    await d.stop();
  }
});
