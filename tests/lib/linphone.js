'use strict';
// Debian's linphone (linphone-cli: linphonec on liblinphone 5.1 / belle-sip) as a SIP phone in a
// test: registered through sipedge over UDP on loopback, driven by commands on its stdin.
// belle-sip computes SHA-256 digests (RFC 8760), which SIPp 3.6 (Debian 12) cannot.
//   const p = await startLinphone({ user: 'alice', password: 'pw', domain, proxyPort });
//   await p.registered();  p.command('call sip:bob@example.com');  await p.expect(/connected/);
//   await p.stop();
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { freeUdpPort } = require('./ports');

const BIN = process.env.LINPHONEC_BIN || '/usr/bin/linphonec';

// The phone's configuration: one account, sent through sipedge (the route) whatever the
// Request-URI's domain; no TCP/TLS/IPv6, no video, its own ports.
function linphonerc({ user, password, domain, proxyPort, sipPort, rtpPort }) {
  const proxy = `sip:127.0.0.1:${proxyPort};transport=udp`;
  return [
    '[sip]', `sip_port=${sipPort}`, 'sip_tcp_port=-1', 'sip_tls_port=-1', 'use_ipv6=0', 'default_proxy=0',
    '[rtp]', `audio_rtp_port=${rtpPort}`, `video_rtp_port=${rtpPort + 2}`,
    '[video]', 'automatically_initiate=0', 'automatically_accept=0',
    '[proxy_0]', `reg_proxy=<${proxy}>`, `reg_route=<${proxy};lr>`, `reg_identity=sip:${user}@${domain}`,
    'reg_expires=600', 'reg_sendregister=1',
    '[auth_info_0]', `username=${user}`, `passwd=${password}`, `realm=${domain}`, `domain=${domain}`,
    '',
  ].join('\n');
}

async function startLinphone({ user, password, domain, proxyPort }) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), `sipedge-linphone-${user}-`));
  fs.mkdirSync(path.join(home, '.local', 'share', 'linphone'), { recursive: true });
  const sipPort = await freeUdpPort();
  const rtpPort = 20000 + 4 * Math.floor(Math.random() * 10000);
  const rc = path.join(home, 'linphonerc');
  fs.writeFileSync(rc, linphonerc({ user, password, domain, proxyPort, sipPort, rtpPort }));
  const child = spawn(BIN, ['-c', rc], { cwd: home, env: { ...process.env, HOME: home }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let log = '';
  const waiters = [];
  const wake = () => {
    for (const w of [...waiters]) {
      const m = w.re.exec(out.slice(w.from));
      if (m) { waiters.splice(waiters.indexOf(w), 1); clearTimeout(w.timer); w.resolve(m); }
    }
  };
  child.stdout.on('data', (b) => { out += b; wake(); });
  child.stderr.on('data', (b) => {
    log += b;
    if (process.env.SIPEDGE_TEST_VERBOSE) process.stderr.write(b);
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));

  const phone = {
    sipPort,
    out: () => out,
    log: () => log,
    command(line) { child.stdin.write(`${line}\n`); },
    // Resolves with the match of re in what the phone prints after this call (or after `from`).
    expect(re, ms = 10000, from = out.length) {
      return new Promise((resolve, reject) => {
        const w = { re, from, resolve };
        w.timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`linphone ${user}: no ${re} within ${ms} ms; it printed:\n${out.slice(from)}\n${log.slice(-2000)}`));
        }, ms);
        waiters.push(w);
        wake();
      });
    },
    // Whether the account is registered, asked ("status register") until it is or ms pass.
    async registered(ms = 10000) {
      const end = Date.now() + ms;
      for (;;) {
        const from = out.length;
        phone.command('status register');
        const m = await phone.expect(/registered, identity=|registered=-?\d+/, 2000, from);
        if (m[0] === 'registered, identity=') return true;
        if (Date.now() >= end) return false;
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) phone.command('quit');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
  // linphonec prints its prompt once the core is up.
  await phone.expect(/linphonec> /, 15000, 0);
  return phone;
}

module.exports = { startLinphone };
