'use strict';
// A real redis-server (Debian's) for a test: its own loopback port and data directory, the
// append-only file fsynced on every write so that a stop and start keeps what it acknowledged.
//   const r = await startRedis();   r.url -> 'redis://127.0.0.1:PORT/0'
//   await r.cli('HGETALL', key)     -> redis-cli's output (raw)
//   await r.stop(); await r.start() -> the same port and data again
//   r.signal('SIGSTOP')             -> a Redis that keeps its connections but answers nothing
const { spawn, execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { freePort } = require('./ports');

async function startRedis({ password } = {}) {
  const port = await freePort('127.0.0.1');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipedge-redis-'));
  let child = null;
  let log = '';
  const auth = password ? ['--requirepass', password] : [];

  async function start() {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
      '--appendonly', 'yes', '--appendfsync', 'always', ...auth], { stdio: ['ignore', 'pipe', 'pipe'] });
    const proc = child;
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${log}`)), 10000);
      proc.stdout.on('data', (b) => {
        log += b;
        if (/Ready to accept connections/.test(log)) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited (${code}):\n${log}`));
      });
    });
    log = '';
  }

  async function stop() {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const proc = child;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    await exited;
  }

  function cli(...args) {
    return new Promise((resolve, reject) =>
      execFile('redis-cli', ['-p', String(port), ...(password ? ['-a', password, '--no-auth-warning'] : []), ...args],
        { encoding: 'utf8' }, (e, out) => (e ? reject(e) : resolve(out.trim()))));
  }

  await start();
  return {
    port,
    dir,
    url: `redis://127.0.0.1:${port}/0`,
    start,
    stop,
    cli,
    signal(sig) {
      child.kill(sig);
    },
    async destroy() {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGCONT');
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

module.exports = { startRedis };
