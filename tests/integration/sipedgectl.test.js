'use strict';
// sipedgectl against a real daemon: every command's table and --json output, and its exit
// statuses for a refusal, a wrong token, no daemon and bad usage.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const fs = require('node:fs');
const { execFile } = require('node:child_process');
const { startDaemon, BIN } = require('../lib/daemon');
const { SipWs } = require('../lib/sipws');
const { adminSetup } = require('../lib/admin');
const { freePort } = require('../lib/ports');

const CTL = process.env.SIPEDGECTL_BIN || path.join(path.dirname(BIN), 'sipedgectl');

function ctl(a, args, env = {}) {
  return new Promise((resolve) => {
    execFile(CTL, args, { env: { ...process.env, SIPEDGE_ADMIN_URL: a.url, SIPEDGE_ADMIN_TOKEN_FILE: a.tokenFile, ...env } },
      (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

test('sipedgectl: status, registrations, flows, calls, bans, reload; exit statuses', async (t) => {
  const a = await adminSetup();
  const d = await startDaemon({ admin: true, listen: ['ws:127.0.0.1:0'], args: ['--no-auth'], config: a.config });
  t.after(() => d.stop());
  const alice = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}`, { user: 'alice', domain: 'example.com' });
  t.after(() => alice.ws.terminate());
  assert.equal((await alice.register()).status_code, 200);

  let r = await ctl(a, ['status']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^sipedge \d+\.\d+\S*, up \d+ s/);
  assert.match(r.stdout, new RegExp(`listening ws 127\\.0\\.0\\.1:${d.ports.ws}`));
  assert.match(r.stdout, /connections:.* ws 1/);
  assert.match(r.stdout, /bindings 1 \(1 AORs\)/);

  r = await ctl(a, ['reg', 'list']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^AOR +PROTO +PEER/);
  assert.match(r.stdout, /sip:alice@example\.com +ws +127\.0\.0\.1:\d+ +\d+s/);

  r = await ctl(a, ['reg', 'show', 'sip:alice@example.com']);
  assert.match(r.stdout, /^sip:alice@example\.com\n {2}key +f:\d+:sip:alice-/);
  assert.match(r.stdout, new RegExp(`contact +<${alice.contactUri.replace(/[.;]/g, '\\$&')}>`));

  r = await ctl(a, ['--json', 'reg', 'list', 'sip:alice@example.com']);
  const regs = JSON.parse(r.stdout).registrations;
  assert.equal(regs.length, 1);
  assert.equal(regs[0].transport, 'ws');

  r = await ctl(a, ['flows']);
  assert.match(r.stdout, new RegExp(`^${regs[0].flow} +ws +127\\.0\\.0\\.1:\\d+`, 'm'));
  r = await ctl(a, ['calls']);
  assert.equal(r.stdout.trim().split('\n').length, 1, 'the header only: no call');
  r = await ctl(a, ['bans']);
  assert.match(r.stdout, /^ADDRESS +SECONDS LEFT\n$/);

  r = await ctl(a, ['reload']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, 'reloaded\n');
  fs.appendFileSync(d.configFile, 'limits = { burst = 33; };\nudp = { max_flows = 7; };\n');
  r = await ctl(a, ['reload']);
  assert.equal(r.stdout, 'reloaded\nin force now: limits.burst\nchanged, kept until a restart: udp.max_flows\n');
  fs.appendFileSync(d.configFile, 'x = ;\n');
  r = await ctl(a, ['reload']);
  assert.equal(r.code, 1, 'a refused reload');
  assert.match(r.stdout, /^not reloaded: nothing changed\nerror: config: .*sipedge\.conf:\d+: syntax error/);

  // Refusals: the daemon's message, exit 1.
  r = await ctl(a, ['bans', 'lift', 'nonsense']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /400: 'nonsense' is not a numeric IPv4 or IPv6 address/);
  r = await ctl(a, ['flows', 'close', '12x']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /400: '12x' is not a flow id/);

  r = await ctl(a, ['reg', 'rm', 'sip:alice@example.com']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, 'done\n');
  r = await ctl(a, ['reg', 'rm', 'sip:alice@example.com']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /404: no binding of sip:alice@example\.com/);
  r = await ctl(a, ['flows', 'close', String(regs[0].flow)]);
  assert.equal(r.code, 0);
  assert.equal(await alice.closed, 1000, 'the connection closed normally');

  // A wrong token, no daemon, bad usage.
  const wrong = path.join(a.dir, 'wrong');
  fs.writeFileSync(wrong, 'not-the-token-at-all\n');
  r = await ctl(a, ['-t', wrong, 'status']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /401: missing or wrong bearer token/);
  r = await ctl(a, ['-u', `http://127.0.0.1:${await freePort()}`, 'status']);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /Couldn't connect/i);
  r = await ctl(a, ['reg', 'frobnicate']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown command or wrong arguments: reg frobnicate/);
  r = await ctl(a, ['status'], { SIPEDGE_ADMIN_TOKEN_FILE: path.join(a.dir, 'absent') });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /cannot read the token/);
});
