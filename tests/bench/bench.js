'use strict';
// sipedge benchmarks: numbers to compare between builds, not pass/fail assertions.
//   CONNECTIONS (default 1000) idle registered WebSocket clients: registrations/s, RSS per connection
//   MESSAGES (default 5000) MESSAGE requests alice → bob, 50 in flight: requests/s
//   UDP_REGISTERS (default 20000) REGISTERs from SIPp over UDP, each for its own AOR: requests/s
// Each part also gives the daemon's CPU time per request (user + system, from /proc): the rates
// are bounded by the clients on this machine as much as by the daemon; the CPU time is not.
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { startDaemon } = require('../lib/daemon');
const { SipWs } = require('../lib/sipws');
const { sipp } = require('../lib/sipp');

const CONNECTIONS = Number(process.env.CONNECTIONS || 1000);
const MESSAGES = Number(process.env.MESSAGES || 5000);
const UDP_REGISTERS = Number(process.env.UDP_REGISTERS || 20000);
const DOMAIN = 'bench.test';
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString());

function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

// CPU seconds (user + system) the process has used: fields 14 and 15 of /proc/PID/stat.
function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}
const perRequest = (cpu, n) => `${((cpu * 1e6) / n).toFixed(0)} µs CPU each`;

async function main() {
  const d = await startDaemon({
    listen: ['ws:127.0.0.1:0', 'udp:127.0.0.1:0'], domains: [DOMAIN], args: ['--no-auth', '--log-level', 'warn'],
    config: 'http = { web_root = ""; };\nwebsocket = { ping_interval = 0; };\nregistrar = { max_bindings_per_aor = 10000; };\nlimits = { max_connections_per_ip = 100000; requests_per_second = 1000000; burst = 1000000; };\n',
  });
  const url = `ws://127.0.0.1:${d.ports.ws}`;
  const results = [];
  try {
    await new Promise((r) => setTimeout(r, 200));
    const rss0 = rssKiB(d.child.pid);
    const clients = [];
    let cpu0 = cpuSeconds(d.child.pid);
    let t0 = process.hrtime.bigint();
    for (let i = 0; i < CONNECTIONS; i += 100) {
      const batch = [];
      for (let j = i; j < Math.min(i + 100, CONNECTIONS); j++) {
        batch.push((async () => {
          const c = await SipWs.connect(url, { user: `u${j}`, domain: DOMAIN });
          const r = await c.register({ expires: 3600, timeout: 20000 });
          if (r.status_code !== 200) throw new Error(`register ${r.status_code}`);
          return c;
        })());
      }
      clients.push(...(await Promise.all(batch)));
    }
    let secs = Number(process.hrtime.bigint() - t0) / 1e9;
    results.push(['connect + REGISTER', `${CONNECTIONS}`, `${(CONNECTIONS / secs).toFixed(0)} /s`,
      perRequest(cpuSeconds(d.child.pid) - cpu0, CONNECTIONS)]);
    await new Promise((r) => setTimeout(r, 500));
    const rss1 = rssKiB(d.child.pid);
    results.push(['RSS per registered connection', `${CONNECTIONS}`, `${((rss1 - rss0) / CONNECTIONS).toFixed(2)} KiB`]);
    results.push(['RSS total', '', `${(rss1 / 1024).toFixed(1)} MiB`]);

    const [alice, bob] = clients;
    bob.ws.on('message', (data) => {
      const text = data.toString();
      if (text.startsWith('MESSAGE ')) {
        const msg = require('jssip/lib/Parser').parseMessage(text, null);
        bob.respond(msg, 200, 'OK');
      }
    });
    bob.inbox.push = () => {}; // answered above; keeping 5000 parsed MESSAGEs would skew the RSS
    let sent = 0;
    let done = 0;
    cpu0 = cpuSeconds(d.child.pid);
    t0 = process.hrtime.bigint();
    await new Promise((resolve, reject) => {
      const sendOne = () => {
        if (sent >= MESSAGES) return;
        const { text } = alice.request({ method: 'MESSAGE', ruri: `sip:u1@${DOMAIN}`, cseq: ++sent, callId: `bench-${sent}` });
        alice.send(text);
      };
      alice.ws.on('message', (data) => {
        if (data.toString().startsWith('SIP/2.0 200')) {
          done++;
          if (done === MESSAGES) resolve();
          else sendOne();
        } else if (/^SIP\/2\.0 [3-6]/.test(data.toString())) reject(new Error(data.toString()));
      });
      for (let i = 0; i < 50; i++) sendOne();
    });
    secs = Number(process.hrtime.bigint() - t0) / 1e9;
    results.push(['MESSAGE proxied (50 in flight)', `${MESSAGES}`, `${(MESSAGES / secs).toFixed(0)} /s`,
      perRequest(cpuSeconds(d.child.pid) - cpu0, MESSAGES)]);
    for (const c of clients) c.ws.terminate();

    // SIPp asks for far more than the daemon can take; the rate it reaches is the result.
    cpu0 = cpuSeconds(d.child.pid);
    t0 = process.hrtime.bigint();
    const load = sipp(['-sf', path.join(__dirname, 'register_udp.xml'), '-i', '127.0.0.1', '-r', '50000',
      '-l', '200', '-m', String(UDP_REGISTERS), `127.0.0.1:${d.ports.udp}`]);
    const r = await load.done;
    if (r.code !== 0) throw new Error(`sipp: exit ${r.code}\n${r.errors}\n${r.out.slice(-2000)}`);
    secs = Number(process.hrtime.bigint() - t0) / 1e9;
    results.push(['REGISTER over UDP (SIPp, 200 open)', `${UDP_REGISTERS}`, `${(UDP_REGISTERS / secs).toFixed(0)} /s`,
      perRequest(cpuSeconds(d.child.pid) - cpu0, UDP_REGISTERS)]);
  } finally {
    await d.stop();
  }
  console.log('\nsipedge benchmark');
  for (const [what, n, value, cpu = ''] of results) console.log(`  ${what.padEnd(36)} ${n.padStart(7)}  ${value.padEnd(10)} ${cpu}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
