'use strict';
// RFC 3263 for upstream names, against a real DNS server on loopback: Debian's dnsmasq serves
// NAPTR, SRV and A/AAAA records for pbx.test; sipedge reads its server from routing.resolv_conf.
// The SRV record with the best priority names a dead target, so the call has to fail over to
// the second target, where a SIPp UAS answers.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const fs = require('node:fs');
const os = require('node:os');
const { sipp } = require('../lib/sipp');
const { startDaemon } = require('../lib/daemon');
const { freeUdpPort } = require('../lib/ports');
const { startDns } = require('../lib/dnsmasq');
const { SipWs, sdp, rand } = require('../lib/sipws');

const SCEN = path.resolve(__dirname, '..', 'sipp', 'scenarios');

async function logged(server, re) {
  for (let i = 0; i < 30 && !re.test(server.log()); i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(server.log(), re);
}

test('an upstream name resolves by NAPTR, SRV and A; the call fails over from the dead SRV target to the live one', async (t) => {
  const dead = await freeUdpPort(); // nothing listens there
  const live = await freeUdpPort();
  const dns = await startDns([
    '--naptr-record=pbx.test,10,10,S,SIP+D2U,,_sip._udp.pbx.test',
    `--srv-host=_sip._udp.pbx.test,sip1.pbx.test,${dead},10,0`,
    `--srv-host=_sip._udp.pbx.test,sip2.pbx.test,${live},20,0`,
    '--host-record=sip1.pbx.test,127.0.0.1',
    '--host-record=sip2.pbx.test,127.0.0.1',
  ]);
  t.after(() => dns.stop());
  const d = await startDaemon({
    listen: ['ws:127.0.0.1:0', 'udp:127.0.0.1:0'], args: ['--no-auth'],
    config: `auth = { trusted_peers = [ "127.0.0.0/8" ]; };
routing = { upstreams = [ "sip:pbx.test" ]; upstream_timeout = 500; resolv_conf = "${dns.conf}"; };\n`,
  });
  t.after(() => d.stop());
  // The lookup runs on the loop after start; wait for its log line.
  for (let i = 0; i < 50 && !/upstream sip:pbx\.test is /.test(d.log()); i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(d.log(), new RegExp(`proxy: upstream sip:pbx\\.test is 127\\.0\\.0\\.1:${dead}/udp, 127\\.0\\.0\\.1:${live}/udp`),
    `SRV order, A records:\n${d.log()}\n${dns.log()}`);
  // dnsmasq's log comes through a pipe and may lag behind.
  await logged(dns, /query\[NAPTR\] pbx\.test/);
  await logged(dns, /query\[SRV\] _sip\._udp\.pbx\.test/);
  await logged(dns, /query\[A\] sip1\.pbx\.test/);

  const uas = sipp(['-sf', path.join(SCEN, 'uas.xml'), '-s', 'pbx', '-i', '127.0.0.1', '-p', String(live), '-m', '1', `127.0.0.1:${d.ports.udp}`]);
  t.after(() => uas.child.kill());
  await new Promise((r) => setTimeout(r, 300));
  const alice = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}`, { user: 'alice', domain: 'example.com' });
  t.after(() => alice.ws.terminate());
  assert.equal((await alice.register()).status_code, 200);

  const ruri = 'sip:7001@pbx.test';
  const fromTag = rand(4);
  const callId = rand(10);
  alice.send(alice.request({ method: 'INVITE', ruri, fromTag, callId, body: sdp('alice') }).text);
  const ok = await alice.expectResponse('INVITE', 200, 10000);
  const contact = /<([^>]+)>/.exec(ok.getHeader('contact'))[1];
  assert.equal(contact, `sip:pbx@127.0.0.1:${live}`, 'the live SRV target answered');
  assert.equal((await alice.ackAndBye(ok, { ruri, fromTag, callId })).status_code, 200);
  const r = await uas.done;
  assert.equal(r.code, 0, `sipp UAS failed:\n${r.errors}\n${r.out.slice(-3000)}`);

  const m = await (await fetch(`http://127.0.0.1:${d.ports.ws}/metrics`)).text();
  assert.match(m, /^sipedge_proxy_upstream_failover_total 1$/m, 'the dead target was skipped once');
  assert.match(m, /^sipedge_dns_resolved_total [1-9]/m);
  assert.match(m, /^sipedge_dns_queries_total ([4-9]|\d\d+)$/m, 'NAPTR, SRV, A and AAAA at least');
});

test('an upstream name that does not resolve: 503 until it does, and the daemon keeps running', async (t) => {
  const dns = await startDns(['--host-record=other.test,127.0.0.1']);
  t.after(() => dns.stop());
  const d = await startDaemon({
    listen: ['ws:127.0.0.1:0', 'udp:127.0.0.1:0'], args: ['--no-auth'],
    config: `auth = { trusted_peers = [ "127.0.0.0/8" ]; };
routing = { upstreams = [ "sip:nowhere.test;transport=udp" ]; resolv_conf = "${dns.conf}"; };\n`,
  });
  t.after(() => d.stop());
  for (let i = 0; i < 50 && !/upstream sip:nowhere\.test;transport=udp: no address found/.test(d.log()); i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(d.log(), /proxy: upstream sip:nowhere\.test;transport=udp: no address found/);
  await logged(dns, /query\[SRV\] _sip\._udp\.nowhere\.test/); // transport=udp: SRV, no NAPTR
  assert.doesNotMatch(dns.log(), /query\[NAPTR\]/);
  const alice = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}`, { user: 'alice', domain: 'example.com' });
  t.after(() => alice.ws.terminate());
  assert.equal((await alice.register()).status_code, 200);
  const bob = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}`, { user: 'bob', domain: 'example.com' });
  t.after(() => bob.ws.terminate());
  assert.equal((await bob.register()).status_code, 200);
  // Our own users are still reachable; the unresolved upstream only affects what goes there.
  alice.send(alice.request({ method: 'MESSAGE', ruri: 'sip:bob@example.com', headers: ['Content-Type: text/plain'] }).text);
  const msg = await bob.expectRequest('MESSAGE', 5000);
  bob.respond(msg, 200, 'OK');
  assert.equal((await alice.expectResponse('MESSAGE', 200, 5000)).status_code, 200);
  alice.send(alice.request({ method: 'INVITE', ruri: 'sip:7001@far.test', body: sdp('alice') }).text);
  const r = await alice.expectResponse('INVITE', undefined, 5000);
  assert.equal(`${r.status_code} ${r.reason_phrase}`, '503 Upstream Not Resolved');
  const m = await (await fetch(`http://127.0.0.1:${d.ports.ws}/metrics`)).text();
  assert.match(m, /^sipedge_dns_failed_total [1-9]/m);
});

test('a DNS server that is not there: the lookup fails, the daemon stays responsive and stops cleanly', async (t) => {
  const port = await freeUdpPort(); // nothing listens: every question meets an ICMP error
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipedge-dns-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const conf = path.join(dir, 'resolv.conf');
  fs.writeFileSync(conf, `nameserver 127.0.0.1\nport ${port}\n`);
  const d = await startDaemon({
    listen: ['ws:127.0.0.1:0'], args: ['--no-auth'],
    config: `routing = { upstreams = [ "sip:pbx.test:5060" ]; resolv_conf = "${conf}"; };\n`,
  });
  t.after(() => d.stop());
  const alice = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}`, { user: 'alice', domain: 'example.com' });
  t.after(() => alice.ws.terminate());
  assert.equal((await alice.register()).status_code, 200, 'the loop is not blocked by the lookup');
  for (let i = 0; i < 150 && !/upstream sip:pbx\.test:5060: no address found/.test(d.log()); i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(d.log(), /proxy: upstream sip:pbx\.test:5060: no address found/);
});
