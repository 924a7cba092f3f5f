'use strict';
// make install: the layout an operator gets (daemon, pages, docs, a configuration naming the
// installed paths, an empty private users file, a systemd unit that systemd-analyze accepts),
// the installed daemon serving from there, a second install leaving the operator's files alone,
// and uninstall. The install goes under a scratch prefix from the build the tests run.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { startUa } = require('../lib/jssip');
const { startDaemon, BIN } = require('../lib/daemon');

const BUILD_DIR = path.dirname(BIN); // the configured build tree the daemon under test came from
const DOMAIN = 'example.com';

function make(target, prefix) {
  const r = spawnSync('make', ['-C', BUILD_DIR, '-s', target, `prefix=${prefix}`], { encoding: 'utf8', timeout: 300000 });
  assert.equal(r.status, 0, `make ${target}:\n${r.stdout}\n${r.stderr}`);
}

test('make install, the installed daemon, a second install and uninstall', async (t) => {
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'sipedge-install-'));
  t.after(() => fs.rmSync(prefix, { recursive: true, force: true }));
  make('install', prefix);

  const at = (...p) => path.join(prefix, ...p);
  const conf = at('etc', 'sipedge', 'sipedge.conf');
  const users = at('etc', 'sipedge', 'users');
  const unit = at('lib', 'systemd', 'system', 'sipedge.service');
  for (const f of [at('sbin', 'sipedge'), conf, users, at('etc', 'sipedge', 'users.example'), unit,
    at('share', 'sipedge', 'web', 'index.html'), at('share', 'sipedge', 'web', 'phone', 'index.html'),
    at('share', 'doc', 'sipedge', 'README.md'), at('share', 'doc', 'sipedge', 'security.md')])
    assert.ok(fs.existsSync(f), `${f} installed`);
  const text = fs.readFileSync(conf, 'utf8');
  assert.match(text, new RegExp(`^  users_file = "${users}";`, 'm'), 'the configuration names the installed users file');
  assert.match(text, new RegExp(`^  web_root = "${at('share', 'sipedge', 'web')}";`, 'm'));
  assert.doesNotMatch(text, /demo-users";/);
  const db = at('var', 'lib', 'sipedge', 'bindings.sqlite');
  assert.match(text, /^  store = "sqlite";/m, 'an installed registrar keeps its bindings');
  assert.match(text, new RegExp(`^  store_path = "${db}";`, 'm'));
  assert.equal(fs.statSync(path.dirname(db)).mode & 0o077, 0, 'the state directory is private');
  for (const f of [conf, users])
    assert.equal(fs.statSync(f).mode & 0o007, 0, `${f} is not readable by everyone`);
  assert.doesNotMatch(fs.readFileSync(users, 'utf8'), /^[^#]/m, 'no users until the operator adds them');

  const unitText = fs.readFileSync(unit, 'utf8');
  assert.match(unitText, new RegExp(`^ExecStart=${at('sbin', 'sipedge')} -c ${conf}$`, 'm'));
  assert.match(unitText, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
  assert.match(unitText, /^User=sipedge$/m);
  assert.match(unitText, new RegExp(`^ReadWritePaths=${path.dirname(db)}$`, 'm'));
  assert.doesNotMatch(unitText, /@[A-Z_]+@/, 'every placeholder filled in');
  const verify = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
  assert.equal(verify.status, 0, verify.stderr);
  assert.equal(verify.stderr.trim(), '', 'systemd-analyze has no complaint');

  const check = spawnSync(at('sbin', 'sipedge'), ['--check-config', '-c', conf], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);
  assert.match(check.stdout, /configuration ok/);

  // The operator adds a user; the installed daemon, run from elsewhere, reads it and serves the
  // installed pages.
  fs.appendFileSync(users, 'alice:alice-pw\n');
  const d = await startDaemon({ bin: at('sbin', 'sipedge'), configFile: conf, cwd: os.tmpdir(),
    listen: ['ws:127.0.0.1:0'], domains: [DOMAIN] });
  t.after(() => d.stop());
  assert.match(d.log(), new RegExp(`auth: 1 user loaded from ${users}`));
  const alice = startUa({ port: d.ports.ws, user: 'alice', domain: DOMAIN, password: 'alice-pw' });
  t.after(() => alice.ua.stop());
  assert.deepEqual(await alice.registration, { ok: true });
  for (let i = 0; i < 30 && !fs.existsSync(db); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(fs.existsSync(db), 'the binding went to the SQLite file');
  const page = await fetch(`http://127.0.0.1:${d.ports.ws}/phone/`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<html/i);
  await d.stop();

  // A second install keeps what the operator changed.
  fs.writeFileSync(conf, text.replace(/^log_level = "info";/m, 'log_level = "notice";'));
  make('install', prefix);
  assert.match(fs.readFileSync(conf, 'utf8'), /^log_level = "notice";/m);
  assert.match(fs.readFileSync(users, 'utf8'), /^alice:alice-pw$/m);

  make('uninstall', prefix);
  for (const f of [at('sbin', 'sipedge'), unit, at('share', 'sipedge', 'web', 'index.html')])
    assert.ok(!fs.existsSync(f), `${f} removed`);
  assert.ok(fs.existsSync(conf) && fs.existsSync(users), 'the configuration and users stay');
  assert.ok(fs.existsSync(db), 'so do the stored bindings');
});
