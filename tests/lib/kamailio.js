'use strict';
// Start Debian's kamailio as "the existing SIP network" for a test: in the foreground, logging
// to stderr, on a free loopback UDP port, with tests/kamailio/registrar.cfg. It is never the
// system service: the test owns the process and ends it.
//   const k = await startKamailio();  k.port; k.log(); await k.stop();
const { spawn } = require('node:child_process');
const dgram = require('node:dgram');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { freeUdpPort } = require('./ports');

const BIN = process.env.KAMAILIO_BIN || '/usr/sbin/kamailio';
const CFG = path.resolve(__dirname, '..', 'kamailio', 'registrar.cfg');

// Ask with OPTIONS until kamailio answers anything: its workers are then up.
async function waitReady(port, isDead) {
  const sock = dgram.createSocket('udp4');
  await new Promise((r) => sock.bind(0, '127.0.0.1', r));
  const local = sock.address().port;
  try {
    for (let i = 0; i < 50 && !isDead(); i++) {
      const msg = [`OPTIONS sip:ping@127.0.0.1:${port} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=z9hG4bK${Date.now()}${i};rport`,
        'Max-Forwards: 5', `From: <sip:probe@127.0.0.1>;tag=${i}`, `To: <sip:ping@127.0.0.1:${port}>`,
        `Call-ID: ready-${Date.now()}-${i}`, 'CSeq: 1 OPTIONS', 'Content-Length: 0', '', ''].join('\r\n');
      const answered = new Promise((resolve) => {
        const t = setTimeout(() => { sock.removeAllListeners('message'); resolve(false); }, 200);
        sock.once('message', () => { clearTimeout(t); resolve(true); });
      });
      sock.send(msg, port, '127.0.0.1');
      if (await answered) return;
    }
    throw new Error(isDead() ? 'kamailio exited' : 'kamailio did not answer');
  } finally {
    sock.close();
  }
}

async function startKamailio() {
  const port = await freeUdpPort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipedge-kamailio-'));
  // -DD: stay in the foreground; -E: log to stderr; -Y: its runtime files under our temp dir.
  const child = spawn(BIN, ['-f', CFG, '-A', `PORT=${port}`, '-DD', '-E', '-m', '32', '-M', '8', '-Y', dir],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (b) => { log += b; });
  child.stderr.on('data', (b) => {
    log += b;
    if (process.env.SIPEDGE_TEST_VERBOSE) process.stderr.write(b);
  });
  let dead = false;
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => { dead = true; resolve({ code, signal }); }));
  try {
    await waitReady(port, () => dead);
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`${e.message}:\n${log.slice(-4000)}`);
  }
  return {
    port,
    log: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

module.exports = { startKamailio };
