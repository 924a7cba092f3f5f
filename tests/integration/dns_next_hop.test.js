'use strict';
// RFC 3263 for a request's own next hop, against dnsmasq on loopback: with no routing.upstreams,
// a request for another domain goes where that domain's NAPTR/SRV/A records say (failing over
// along the SRV targets), a preloaded Route with a host name goes to that host's address, and a
// name with no address is answered 404 and counted.
const test = require('node:test');
const assert = require('node:assert/strict');
const dgram = require('node:dgram');
const path = require('node:path');
const { sipp } = require('../lib/sipp');
const { startDaemon } = require('../lib/daemon');
const { freeUdpPort } = require('../lib/ports');
const { startDns } = require('../lib/dnsmasq');
const { SipWs, sdp, rand } = require('../lib/sipws');

const SCEN = path.resolve(__dirname, '..', 'sipp', 'scenarios');

// No upstreams: relaying is for trusted peers (and authenticated users); the test's phones are
// on loopback.
async function setup(t, dns) {
  const d = await startDaemon({
    listen: ['ws:127.0.0.1:0', 'udp:127.0.0.1:0'], args: ['--no-auth'],
    config: `auth = { trusted_peers = [ "127.0.0.0/8" ]; };
routing = { upstream_timeout = 500; resolv_conf = "${dns.conf}"; };\n`,
  });
  t.after(() => d.stop());
  const alice = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}`, { user: 'alice', domain: 'example.com' });
  t.after(() => alice.ws.terminate());
  assert.equal((await alice.register()).status_code, 200);
  return { d, alice };
}

test('another domain, no upstreams: NAPTR, SRV and A for its name, failing over from the dead SRV target', async (t) => {
  const dead = await freeUdpPort(); // nothing listens there
  const live = await freeUdpPort();
  const dns = await startDns([
    '--naptr-record=far.test,10,10,S,SIP+D2U,,_sip._udp.far.test',
    `--srv-host=_sip._udp.far.test,sip1.far.test,${dead},10,0`,
    `--srv-host=_sip._udp.far.test,sip2.far.test,${live},20,0`,
    '--host-record=sip1.far.test,127.0.0.1',
    '--host-record=sip2.far.test,127.0.0.1',
  ]);
  t.after(() => dns.stop());
  const { d, alice } = await setup(t, dns);
  const uas = sipp(['-sf', path.join(SCEN, 'uas.xml'), '-s', 'far', '-i', '127.0.0.1', '-p', String(live), '-m', '1',
    `127.0.0.1:${d.ports.udp}`]);
  t.after(() => uas.child.kill());
  await new Promise((r) => setTimeout(r, 300));

  const ruri = 'sip:7001@far.test';
  const fromTag = rand(4);
  const callId = rand(10);
  alice.send(alice.request({ method: 'INVITE', ruri, fromTag, callId, body: sdp('alice') }).text);
  const ok = await alice.expectResponse('INVITE', 200, 10000);
  const contact = /<([^>]+)>/.exec(ok.getHeader('contact'))[1];
  assert.equal(contact, `sip:far@127.0.0.1:${live}`, 'the live SRV target answered');
  assert.equal((await alice.ackAndBye(ok, { ruri, fromTag, callId })).status_code, 200);
  const r = await uas.done;
  assert.equal(r.code, 0, `sipp UAS failed:\n${r.errors}\n${r.out.slice(-3000)}`);

  assert.match(dns.log(), /query\[NAPTR\] far\.test/);
  assert.match(d.log(), /proxy: INVITE to far\.test: 2 addresses found \(RFC 3263\)/);
  assert.match(d.log(), /proxy: upstream far\.test failed \(408, no response\), trying the next/);
  const m = await d.metrics();
  assert.equal(m.sipedge_proxy_next_hop_lookups_total, 1);
  assert.equal(m.sipedge_proxy_upstream_failover_total, 1, 'the dead target was skipped once');
});

test('a preloaded Route with a host name goes to that host\'s address', async (t) => {
  const peer = dgram.createSocket('udp4');
  await new Promise((r) => peer.bind(0, '127.0.0.1', r));
  t.after(() => peer.close());
  const port = peer.address().port;
  const dns = await startDns(['--host-record=edge.far.test,127.0.0.1']);
  t.after(() => dns.stop());
  const { d, alice } = await setup(t, dns);
  // The peer answers the first request it gets with 200, echoing the headers a response needs.
  const received = new Promise((resolve) => peer.once('message', (buf, from) => {
    const text = buf.toString('latin1');
    const keep = text.split('\r\n').filter((l) => /^(Via|From|To|Call-ID|CSeq):/i.test(l));
    peer.send(['SIP/2.0 200 OK', ...keep, 'Content-Length: 0', '', ''].join('\r\n'), from.port, from.address);
    resolve(text);
  }));
  alice.send(alice.request({ method: 'MESSAGE', ruri: 'sip:bob@far.test',
    headers: [`Route: <sip:edge.far.test:${port};lr>`] }).text);
  const text = await received;
  assert.match(text, /^MESSAGE sip:bob@far\.test SIP\/2\.0\r\n/, 'the Request-URI is kept (loose routing)');
  assert.match(text, new RegExp(`^Route: <sip:edge\\.far\\.test:${port};lr>\\r$`, 'm'));
  assert.equal((await alice.expectResponse('MESSAGE', 200, 5000)).status_code, 200);
  await new Promise((r) => setTimeout(r, 200));
  assert.match(dns.log(), /query\[A\] edge\.far\.test/);
  assert.doesNotMatch(dns.log(), /query\[(NAPTR|SRV)\] .*edge\.far\.test/, 'a port given: address records only (§4.2)');
});

test('a name with no address: 404 No Route To Domain, counted; the daemon keeps serving', async (t) => {
  const dns = await startDns(['--host-record=other.test,127.0.0.1']);
  t.after(() => dns.stop());
  const { d, alice } = await setup(t, dns);
  alice.send(alice.request({ method: 'MESSAGE', ruri: 'sip:x@nowhere.test' }).text);
  const r = await alice.expectResponse('MESSAGE', undefined, 10000);
  assert.equal(`${r.status_code} ${r.reason_phrase}`, '404 No Route To Domain');
  const m = await d.metrics();
  assert.equal(m.sipedge_proxy_next_hop_lookups_total, 1);
  assert.equal(m.sipedge_proxy_next_hop_unresolved_total, 1);
  assert.match(d.log(), /proxy: MESSAGE: nowhere\.test has no address \(RFC 3263\)/);
  // Our own domain is still served at once.
  alice.send(alice.request({ method: 'OPTIONS', ruri: 'sip:example.com', to: 'sip:example.com' }).text);
  assert.equal((await alice.expectResponse('OPTIONS', undefined, 5000)).status_code, 200);
});
