'use strict';
// REGISTER throughput and latency per binding store (memory, sqlite, redis): what the durability
// rule (a 200 only after the store has the change) costs. Throughput: SIPp's udp_register.xml
// with 200 REGISTERs open; latency: one REGISTER at a time from a scripted UDP phone.
//   SIPEDGE_BIN=build/sipedge node tests/bench/stores.js [N]
const path = require('node:path');
const fs = require('node:fs');
const os = require('node:os');
const { startDaemon } = require('../lib/daemon');
const { SipUdp } = require('../lib/sipudp');
const { sipp } = require('../lib/sipp');
const { startRedis } = require('../lib/redis');

const N = Number(process.argv[2] || 5000);
const SEQUENTIAL = 300;
const DOMAIN = 'bench.test';

async function latencies(d) {
  const phone = await SipUdp.open({ port: d.ports.udp, domain: DOMAIN });
  const ms = [];
  try {
    for (let i = 0; i < SEQUENTIAL; i++) {
      const req = phone.request({ method: 'REGISTER', ruri: `sip:${DOMAIN}`, to: `sip:lat${i}@${DOMAIN}`, user: `lat${i}`,
        headers: [`Contact: <sip:lat${i}@127.0.0.1:${phone.local.port}>`, 'Expires: 3600'] });
      const t0 = process.hrtime.bigint();
      await phone.send(req.text);
      const res = await phone.final(req.callId, 5000);
      if (!res || res.status_code !== 200) throw new Error(`REGISTER ${res ? res.status_code : 'timeout'}`);
      ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  } finally {
    await phone.close();
  }
  ms.sort((a, b) => a - b);
  return { p50: ms[Math.floor(ms.length / 2)], p99: ms[Math.floor(ms.length * 0.99)] };
}

async function bench(name, registrar) {
  const d = await startDaemon({
    listen: ['ws:127.0.0.1:0', 'udp:127.0.0.1:0'], domains: [DOMAIN], args: ['--no-auth', '--log-level', 'warn'],
    config: `http = { web_root = ""; };\nregistrar = { ${registrar} };\n` +
      'limits = { requests_per_second = 0; };\n',
  });
  try {
    const t0 = process.hrtime.bigint();
    const load = sipp(['-sf', path.join(__dirname, 'udp_register.xml'), '-i', '127.0.0.1', '-key', 'inst', '0', '-r', '50000',
      '-l', '200', '-m', String(N), `127.0.0.1:${d.ports.udp}`]);
    const r = await load.done;
    if (r.code !== 0) throw new Error(`sipp: exit ${r.code}\n${r.errors}\n${r.out.slice(-2000)}`);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const lat = await latencies(d);
    return [name, `${(N / secs).toFixed(0)} /s`, `${lat.p50.toFixed(2)} ms`, `${lat.p99.toFixed(2)} ms`];
  } finally {
    await d.stop();
  }
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipedge-bench-'));
  const redis = await startRedis();
  const rows = [];
  try {
    rows.push(await bench('memory', ''));
    rows.push(await bench('sqlite (batch 10 ms)', `store = "sqlite"; store_path = "${path.join(dir, 'a.sqlite')}"; store_batch_ms = 10;`));
    rows.push(await bench('sqlite (batch 0 ms)', `store = "sqlite"; store_path = "${path.join(dir, 'b.sqlite')}"; store_batch_ms = 0;`));
    rows.push(await bench('redis (appendfsync always)', `store = "redis"; store_path = "${redis.url}";`));
  } finally {
    await redis.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(`\nREGISTER per store: ${N} over UDP with SIPp (200 open), latency of ${SEQUENTIAL} one at a time`);
  console.log(`  ${'store'.padEnd(28)} ${'throughput'.padStart(10)}  ${'p50'.padStart(9)}  ${'p99'.padStart(9)}`);
  for (const [name, tput, p50, p99] of rows)
    console.log(`  ${name.padEnd(28)} ${tput.padStart(10)}  ${p50.padStart(9)}  ${p99.padStart(9)}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
