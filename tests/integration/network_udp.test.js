'use strict';
// The browser side meets the network side: SIPp over UDP calls a WebSocket client through
// sipedge, and a WebSocket client calls a SIPp UAS behind an upstream route. Both directions
// must be double Record-Routed (the legs' transports differ) and carry rport/received.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { sipp } = require('../lib/sipp');
const { freeUdpPort } = require('../lib/ports');
const { startDaemon } = require('../lib/daemon');
const { SipWs, sdp, routeSet, tagOf, rand } = require('../lib/sipws');

const DOMAIN = 'example.com';
// SIPp plays the SIP network, trusted by address as a PBX or carrier would be.
const TRUST = 'auth = { trusted_peers = [ "127.0.0.0/8", "::1" ]; };\n';
const SCEN = path.resolve(__dirname, '..', 'sipp', 'scenarios');

async function phone(t, d, user) {
  const p = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}`, { user, domain: DOMAIN });
  t.after(() => p.ws.terminate());
  const r = await p.register();
  assert.equal(r.status_code, 200, `${user} registers`);
  return p;
}

test('SIPp over UDP calls a WebSocket user: delivered on its flow, double Record-Route, BYE back', async (t) => {
  const d = await startDaemon({ listen: ['ws:127.0.0.1:0', 'udp:127.0.0.1:0'], domains: [DOMAIN], args: ['--no-auth'], config: TRUST });
  t.after(() => d.stop());
  const alice = await phone(t, d, 'alice');
  const uac = sipp(['-sf', path.join(SCEN, 'uac.xml'), '-s', 'alice', '-key', 'domain', DOMAIN,
    '-i', '127.0.0.1', '-p', String(await freeUdpPort()), '-m', '1', `127.0.0.1:${d.ports.udp}`]);
  t.after(() => uac.child.kill());

  const inv = await alice.expectRequest('INVITE', 10000);
  assert.equal(inv.ruri.toString(), alice.contactUri, 'retargeted to the WebSocket contact');
  const vias = inv.getHeaders('via');
  assert.equal(vias.length, 2);
  assert.match(vias[0], /^SIP\/2\.0\/WS 127\.0\.0\.1:\d+;branch=z9hG4bK/);
  assert.match(vias[1], /^SIP\/2\.0\/UDP 127\.0\.0\.1:(\d+);branch=[^;]+;rport=\1;received=127\.0\.0\.1$/,
    'the caller\'s Via carries rport and received');
  const rr = routeSet(inv, false);
  assert.equal(rr.length, 2, 'double Record-Route: the legs\' transports differ');
  assert.match(rr[0], new RegExp(`^<sip:[0-9a-f]{32}@127\\.0\\.0\\.1:${d.ports.ws};transport=ws;lr>$`));
  assert.match(rr[1], new RegExp(`^<sip:[0-9a-f]{32}@127\\.0\\.0\\.1:${d.ports.udp};transport=udp;lr>$`));

  const { ack, bye } = await alice.answerCall(inv);
  assert.equal(ack.ruri.toString(), alice.contactUri);
  assert.equal(ack.getHeaders('route').length, 0, 'sipedge consumed its Route entries');
  assert.equal(tagOf(bye.getHeader('to')), 'at');
  const r = await uac.done;
  assert.equal(r.code, 0, `sipp UAC failed:\n${r.errors}\n${r.out.slice(-3000)}`);
});

test('a WebSocket user calls through an upstream route to a SIPp UAS over UDP', async (t) => {
  const upstream = await freeUdpPort();
  const d = await startDaemon({
    listen: ['ws:127.0.0.1:0', 'udp:127.0.0.1:0'], domains: [DOMAIN], args: ['--no-auth'],
    config: `${TRUST}routing = { upstreams = [ "sip:127.0.0.1:${upstream};transport=udp" ]; };\n`,
  });
  t.after(() => d.stop());
  const uas = sipp(['-sf', path.join(SCEN, 'uas.xml'), '-s', 'pbx', '-i', '127.0.0.1', '-p', String(upstream),
    '-m', '1', `127.0.0.1:${d.ports.udp}`]);
  t.after(() => uas.child.kill());
  await new Promise((r) => setTimeout(r, 300)); // sipp binds its port
  const alice = await phone(t, d, 'alice');

  const ruri = 'sip:7001@pbx.example.net';
  const fromTag = rand(4);
  const callId = rand(10);
  alice.send(alice.request({ method: 'INVITE', ruri, fromTag, callId, body: sdp('alice') }).text);
  assert.equal((await alice.expectResponse('INVITE', 100, 10000)).status_code, 100);
  const ok = await alice.expectResponse('INVITE', 200, 10000);
  const routes = routeSet(ok, true);
  assert.equal(routes.length, 2, 'double Record-Route on the way back');
  assert.match(routes[0], /transport=ws;lr>$/);
  assert.match(routes[1], /transport=udp;lr>$/);
  const contact = /<([^>]+)>/.exec(ok.getHeader('contact'))[1];
  assert.match(contact, new RegExp(`^sip:pbx@127\\.0\\.0\\.1:${upstream}$`));
  assert.equal((await alice.ackAndBye(ok, { ruri, fromTag, callId })).status_code, 200);
  const r = await uas.done;
  assert.equal(r.code, 0, `sipp UAS failed:\n${r.errors}\n${r.out.slice(-3000)}`);
});
