'use strict';
// Start Debian's rtpengine (rtpengine-daemon 10.5) for a test: userspace only (--table=-1, no
// kernel module), in the foreground, logging to stderr, media on 127.0.0.1 in a small port range,
// NG control on a free loopback UDP port. No config file is read (--config-file=none), and a
// deleted call leaves at once (--delete-delay=0) so that session counts are exact.
//   const r = await startRtpengine();  r.ng -> "udp:127.0.0.1:PORT" for media.rtpengine
//   await r.command({ command: 'list' })  -> the decoded reply; await r.calls() -> call-ids
//   await r.stop()
const { spawn } = require('node:child_process');
const dgram = require('node:dgram');
const crypto = require('node:crypto');
const bencode = require('bencode');
const { freeUdpPort } = require('./ports');

const BIN = process.env.RTPENGINE_BIN || '/usr/bin/rtpengine';

// One NG request: "COOKIE dict" out, the reply with the same cookie back (bencode npm module).
async function ngCommand(port, dict, timeoutMs = 1000) {
  const sock = dgram.createSocket('udp4');
  await new Promise((r) => sock.bind(0, '127.0.0.1', r));
  const cookie = crypto.randomBytes(6).toString('hex');
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`rtpengine ${port}: no answer to ${dict.command}`)), timeoutMs);
      sock.on('message', (msg) => {
        const sp = msg.indexOf(0x20);
        if (sp < 0 || msg.subarray(0, sp).toString() !== cookie) return;
        clearTimeout(timer);
        resolve(bencode.decode(msg.subarray(sp + 1), 'utf8'));
      });
      sock.send(Buffer.concat([Buffer.from(`${cookie} `), Buffer.from(bencode.encode(dict))]), port, '127.0.0.1');
    });
  } finally {
    sock.close();
  }
}

async function startRtpengine(options = {}) {
  const port = options.port || await freeUdpPort();
  const portMin = options.portMin || 20000 + Math.floor(Math.random() * 400) * 100;
  const args = ['--config-file=none', '--table=-1', '--interface=127.0.0.1', `--listen-ng=127.0.0.1:${port}`,
    '--foreground', '--log-stderr', `--log-level=${process.env.RTPENGINE_LOG_LEVEL || 6}`, '--delete-delay=0',
    `--port-min=${portMin}`, `--port-max=${portMin + 99}`, '--num-threads=2'];
  const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const take = (b) => {
    log += b;
    if (process.env.SIPEDGE_TEST_VERBOSE) process.stderr.write(`[rtpengine ${port}] ${b}`);
  };
  child.stdout.on('data', take);
  child.stderr.on('data', take);
  let dead = false;
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => { dead = true; resolve({ code, signal }); }));
  let ready = false;
  for (let i = 0; i < 50 && !dead && !ready; i++) {
    try {
      ready = (await ngCommand(port, { command: 'ping' }, 200)).result === 'pong';
    } catch { /* not up yet */ }
  }
  if (!ready) {
    child.kill('SIGKILL');
    throw new Error(`rtpengine did not answer ping:\n${log.slice(-4000)}`);
  }
  return {
    port,
    ng: `udp:127.0.0.1:${port}`,
    portMin,
    log: () => log,
    command: (dict) => ngCommand(port, dict),
    async calls() {
      const r = await ngCommand(port, { command: 'list', limit: 1000 });
      return r.calls || [];
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

module.exports = { startRtpengine, ngCommand };
