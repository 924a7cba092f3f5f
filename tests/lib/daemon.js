'use strict';
// Start the real sipedge daemon on loopback for a test, and stop it cleanly.
//   const d = await startDaemon({ listen: ['ws:127.0.0.1:0'], args: ['--no-auth'] });
//   d.ports.ws  -> the port bound (when 0 was asked, a free port is picked first)
//   await d.metrics()  -> { sipedge_…: value } from /metrics on the first ws listener
//   await d.stop()  -> SIGTERM; rejects if the exit is unclean or a sanitizer spoke
const { spawn } = require('node:child_process');
const { freePort, freeUdpPort } = require('./ports');
const path = require('node:path');
const fs = require('node:fs');
const os = require('node:os');

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = process.env.SIPEDGE_BIN || path.join(ROOT, 'build', 'sipedge');

function writeTempConfig(text) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipedge-test-'));
  const file = path.join(dir, 'sipedge.conf');
  fs.writeFileSync(file, text);
  return file;
}

// options:
//   listen: ['ws:127.0.0.1:0', 'wss:[::1]:0', 'udp:127.0.0.1:0'] (port 0 = pick a free one)
//   domains: ['example.com'] (default)
//   config: text of a config file (default: an empty one, so the embedded defaults apply)
//   configFile: a config file to use as it is instead (e.g. the shipped etc/sipedge.conf)
//   args: extra command-line arguments
//   admin: the config names an admin.listen: also wait for its "listening admin" line
//   bin: another sipedge binary (an installed one); cwd: its working directory (default: the tree)
//   env: extra environment
async function startDaemon(options = {}) {
  const listen = options.listen || ['ws:127.0.0.1:0'];
  const domains = options.domains || ['example.com'];
  const resolved = [];
  const ports = {};
  for (const spec of listen) {
    const m = /^(\w+):(\[[^\]]+\]|[^:]+):(\d+)$/.exec(spec);
    if (!m) throw new Error(`bad listen spec ${spec}`);
    const [, proto, hostPart] = m;
    let port = Number(m[3]);
    const host = hostPart.replace(/^\[|\]$/g, '');
    if (port === 0) port = proto === 'udp' ? await freeUdpPort(host) : await freePort(host);
    resolved.push(`${proto}:${hostPart}:${port}`);
    const key = host.includes(':') ? `${proto}6` : proto;
    if (!(key in ports)) ports[key] = port;
  }
  const configFile = options.configFile || writeTempConfig(options.config || 'http = { web_root = ""; };\n');
  const args = ['-c', configFile];
  for (const l of resolved) args.push('--listen', l);
  for (const d of domains) args.push('--domain', d);
  args.push(...(options.args || []));
  const env = {
    ...process.env,
    ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0:exitcode=86',
    UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1:exitcode=87',
    ...(options.env || {}),
  };
  const child = spawn(options.bin || BIN, args, { cwd: options.cwd || ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (b) => {
    stderr += b;
    if (process.env.SIPEDGE_TEST_VERBOSE) process.stderr.write(b);
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon did not start:\n${stderr}`)), 15000);
    child.stdout.on('data', (b) => {
      stdout += b;
      const lines = stdout.split('\n').filter((l) => l.startsWith('listening '));
      if (lines.length >= resolved.length + (options.admin ? 1 : 0)) {
        clearTimeout(timer);
        resolve();
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited (${code ?? signal}) before listening:\n${stderr}`));
    });
  });
  let stopped = null;
  return {
    child,
    ports,
    listen: resolved,
    configFile,
    log: () => stderr,
    stdout: () => stdout,
    async metrics() {
      const res = await fetch(`http://127.0.0.1:${ports.ws}/metrics`);
      if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
      const values = {};
      for (const m of (await res.text()).matchAll(/^(\w+) (-?\d+)$/gm)) values[m[1]] = Number(m[2]);
      return values;
    },
    async stop() {
      if (stopped) return stopped;
      stopped = (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        let timer;
        const timeout = new Promise((_, reject) => {
          timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`daemon did not exit on SIGTERM:\n${stderr.slice(-4000)}`)); }, 10000);
        });
        // Cleared once it exited: a pending timer would keep the test file running 10 s more.
        const { code, signal } = await Promise.race([exited, timeout]).finally(() => clearTimeout(timer));
        if (/ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:/.test(stderr))
          throw new Error(`sanitizer report:\n${stderr.slice(-8000)}`);
        if (code !== 0) throw new Error(`daemon exit ${code ?? signal}:\n${stderr.slice(-4000)}`);
        return { code, signal };
      })();
      return stopped;
    },
  };
}

module.exports = { startDaemon, ROOT, BIN };
