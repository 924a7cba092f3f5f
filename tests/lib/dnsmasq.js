'use strict';
// Debian's dnsmasq as a DNS server on a free loopback port for one test, serving the records the
// test gives (dnsmasq options such as --naptr-record, --srv-host, --host-record) and nothing
// else; conf is a resolv.conf for sipedge's routing.resolv_conf (sofia-sip reads a "port" line).
//   const dns = await startDns(['--host-record=pbx.test,127.0.0.1']);  dns.conf; dns.log();
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { freeUdpPort } = require('./ports');

const DNSMASQ = process.env.DNSMASQ_BIN || '/usr/sbin/dnsmasq';

// dnsmasq listens on TCP as well as UDP: a port free for UDP may be taken for TCP (or taken by
// another process meanwhile), so a start that finds its port in use tries another.
async function startDns(records, attempts = 5) {
  try {
    return await startDnsOnce(records);
  } catch (e) {
    if (attempts > 1 && /Address already in use/.test(e.message)) return startDns(records, attempts - 1);
    throw e;
  }
}

async function startDnsOnce(records) {
  const port = await freeUdpPort();
  const child = spawn(DNSMASQ, ['--keep-in-foreground', `--port=${port}`, '--listen-address=127.0.0.1',
    '--bind-interfaces', '--no-resolv', '--no-hosts', '--conf-file=/dev/null', '--pid-file=',
    '--log-queries', '--log-facility=-', ...records], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (b) => { log += b; });
  child.stderr.on('data', (b) => { log += b; });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  await new Promise((r) => setTimeout(r, 300));
  if (child.exitCode !== null) throw new Error(`dnsmasq exited:\n${log}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipedge-dns-'));
  const conf = path.join(dir, 'resolv.conf');
  // sofia-sip's resolver takes the server's port from a "port" line.
  fs.writeFileSync(conf, `nameserver 127.0.0.1\nport ${port}\n`);
  return {
    conf,
    log: () => log,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

module.exports = { startDns };
