'use strict';
// SIPp (Debian sip-tester) as the SIP network in node tests: run a scenario.
const path = require('node:path');
const fs = require('node:fs');
const os = require('node:os');
const { spawn } = require('node:child_process');

// Run sipp with args in a scratch directory; done resolves with its exit code, its output and
// its error log once it ends.
function sipp(args) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipedge-sipp-'));
  const child = spawn('sipp', ['-nostdin', '-trace_err', '-timeout', '30s', '-timeout_error', ...args],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b) => { out += b; });
  child.stderr.on('data', (b) => { out += b; });
  const done = new Promise((resolve) => child.on('exit', (code) => {
    let errors = '';
    for (const f of fs.readdirSync(dir)) if (f.endsWith('errors.log')) errors += fs.readFileSync(path.join(dir, f), 'utf8');
    fs.rmSync(dir, { recursive: true, force: true });
    resolve({ code, out, errors });
  }));
  return { child, done };
}

module.exports = { sipp };
