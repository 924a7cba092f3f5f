'use strict';
// Edge mode (RFC 3327) in front of a real SIP network: Debian's kamailio is the registrar and
// proxy (tests/kamailio/registrar.cfg), sipedge only the edge. A WebSocket client registers
// through sipedge, which adds a Path with the client's flow token; a SIPp phone registers at
// kamailio directly over UDP. Calls go both ways: WS → sipedge → kamailio → SIPp, and SIPp →
// kamailio → (Path) → sipedge → the WebSocket flow.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const fs = require('node:fs');
const os = require('node:os');
const { sipp } = require('../lib/sipp');
const { startDaemon } = require('../lib/daemon');
const { startKamailio } = require('../lib/kamailio');
const { freeUdpPort } = require('../lib/ports');
const { SipWs, sdp, routeSet, tagOf, rand } = require('../lib/sipws');

const DOMAIN = 'example.com';
const SCEN = path.resolve(__dirname, '..', 'sipp', 'scenarios');

// The configuration doc/deployment.md shows for edge mode, with the test's ports.
const edgeConfig = (kport) => `registrar = { mode = "edge"; };
routing = { upstreams = [ "sip:127.0.0.1:${kport};transport=udp" ]; };
auth = { disabled = true; trusted_peers = [ "127.0.0.1" ]; };
`;

async function setup(t) {
  const k = await startKamailio();
  t.after(() => k.stop());
  const d = await startDaemon({ listen: ['ws:127.0.0.1:0', 'udp:127.0.0.1:0'], domains: [DOMAIN], config: edgeConfig(k.port) });
  t.after(() => d.stop());
  const alice = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}`, { user: 'alice', domain: DOMAIN });
  t.after(() => alice.ws.terminate());
  return { k, d, alice };
}

const pathRe = (d) => new RegExp(`<sip:([0-9a-f]{32})@127\\.0\\.0\\.1:${d.ports.udp};transport=udp;lr;ob>`);

test('edge: a WebSocket REGISTER reaches kamailio with our Path and its 200 comes back', async (t) => {
  const { k, d, alice } = await setup(t);
  const r = await alice.register({ instance: '8f3c5a2e-1c1d-4b1e-9a3f-000000000001' });
  assert.equal(r.status_code, 200, `kamailio accepts the binding:\n${r.text}\n${k.log().slice(-2000)}`);
  const contact = r.getHeaders('contact').join(', ');
  assert.ok(contact.includes(alice.contactUri), `the 200 lists alice's contact: ${contact}`);
  // kamailio echoes the Path it stored (RFC 3327 §5.3): ours, with the client's flow token.
  const paths = r.getHeaders('path');
  assert.equal(paths.length, 1, `one Path entry: ${paths}`);
  assert.match(paths[0], pathRe(d));
  assert.equal(r.getHeaders('via').length, 1, 'sipedge removed its own Via');

  // An unregister goes the same way.
  const u = await alice.register({ instance: '8f3c5a2e-1c1d-4b1e-9a3f-000000000001', expires: 0 });
  assert.equal(u.status_code, 200);
  const m = await d.metrics();
  assert.equal(m.sipedge_edge_registers_forwarded_total, 2);
  assert.equal(m.sipedge_edge_registers_accepted_total, 2);
  assert.equal(m.sipedge_registrar_bindings, 0, 'the edge keeps no bindings of its own');
  assert.match(d.log(), /edge: REGISTER sip:alice@example.com from flow \d+ .* to the registrar sip:127\.0\.0\.1:/);
});

test('edge: a WebSocket user calls a SIPp phone registered at kamailio', async (t) => {
  const { k, d, alice } = await setup(t);
  assert.equal((await alice.register()).status_code, 200);
  const bobPort = await freeUdpPort();
  const reg = await sipp(['-sf', path.join(SCEN, 'register_network.xml'), '-s', 'bob', '-key', 'domain', DOMAIN,
    '-i', '127.0.0.1', '-p', String(bobPort), '-m', '1', `127.0.0.1:${k.port}`]).done;
  assert.equal(reg.code, 0, `bob registers at kamailio:\n${reg.errors}\n${reg.out.slice(-2000)}`);
  const uas = sipp(['-sf', path.join(SCEN, 'uas_network.xml'), '-s', 'bob', '-i', '127.0.0.1', '-p', String(bobPort), '-m', '1']);
  t.after(() => uas.child.kill());
  await new Promise((r) => setTimeout(r, 300)); // sipp binds its port

  const ruri = `sip:bob@${DOMAIN}`;
  const fromTag = rand(4);
  const callId = rand(10);
  alice.send(alice.request({ method: 'INVITE', ruri, fromTag, callId, body: sdp('alice') }).text);
  const ok = await alice.expectResponse('INVITE', 200, 10000).catch(async (e) => {
    uas.child.kill();
    const u = await uas.done;
    throw new Error(`${e.message}\nUAS:\n${u.errors}\n${u.out.slice(-2000)}\n${k.log().slice(-2000)}`);
  });
  const routes = routeSet(ok, true);
  assert.equal(routes.length, 3, `sipedge twice (ws, udp) and kamailio: ${routes}`);
  assert.match(routes[0], /transport=ws;lr>$/);
  assert.match(routes[1], /transport=udp;lr>$/);
  assert.match(routes[2], new RegExp(`^<sip:127\\.0\\.0\\.1:${k.port};lr[;>]`), "kamailio Record-Routed");
  const contact = /<([^>]+)>/.exec(ok.getHeader('contact'))[1];
  assert.equal(contact, `sip:bob@127.0.0.1:${bobPort}`);
  assert.equal((await alice.ackAndBye(ok, { ruri, fromTag, callId })).status_code, 200);
  const r = await uas.done;
  assert.equal(r.code, 0, `sipp UAS failed:\n${r.errors}\n${r.out.slice(-3000)}\n${k.log().slice(-3000)}`);
});

test('edge: a SIPp phone calls the WebSocket user through kamailio and our Path', async (t) => {
  const { k, d, alice } = await setup(t);
  assert.equal((await alice.register()).status_code, 200);
  const uac = sipp(['-sf', path.join(SCEN, 'uac.xml'), '-s', 'alice', '-key', 'domain', DOMAIN,
    '-i', '127.0.0.1', '-p', String(await freeUdpPort()), '-m', '1', `127.0.0.1:${k.port}`]);
  t.after(() => uac.child.kill());

  const inv = await alice.expectRequest('INVITE', 10000);
  assert.equal(inv.ruri.toString(), alice.contactUri, 'kamailio retargeted to the registered contact');
  assert.equal(inv.getHeaders('route').length, 0, 'sipedge consumed the Route kamailio made of our Path');
  const vias = inv.getHeaders('via');
  assert.equal(vias.length, 3, `sipedge, kamailio, SIPp: ${vias}`);
  assert.match(vias[0], /^SIP\/2\.0\/WS 127\.0\.0\.1:\d+;branch=z9hG4bK-se/);
  const rr = routeSet(inv, false);
  assert.equal(rr.length, 3, `sipedge (ws, udp) then kamailio: ${rr}`);

  const { ack, bye } = await alice.answerCall(inv);
  assert.equal(ack.ruri.toString(), alice.contactUri);
  assert.equal(tagOf(bye.getHeader('to')), 'at');
  const r = await uac.done;
  assert.equal(r.code, 0, `sipp UAC failed:\n${r.errors}\n${r.out.slice(-3000)}\n${k.log().slice(-3000)}`);
  const m = await d.metrics();
  assert.equal(m.sipedge_edge_path_requests_total, 1);
  assert.match(d.log(), /edge: INVITE from 127\.0\.0\.1:\d+ along our Path to flow \d+/);
});

test('edge: a call along our Path to a closed WebSocket flow is answered 430 Flow Failed', async (t) => {
  const { k, d, alice } = await setup(t);
  assert.equal((await alice.register()).status_code, 200);
  // The flow goes, kamailio still has the binding (it learns nothing of our connections).
  alice.ws.terminate();
  await new Promise((r) => setTimeout(r, 300));
  const uac = sipp(['-sf', path.join(SCEN, 'uac_430.xml'), '-s', 'alice', '-key', 'domain', DOMAIN,
    '-i', '127.0.0.1', '-p', String(await freeUdpPort()), '-m', '1', `127.0.0.1:${k.port}`]);
  t.after(() => uac.child.kill());
  const r = await uac.done;
  assert.equal(r.code, 0, `sipp UAC wants 430:\n${r.errors}\n${r.out.slice(-3000)}\n${k.log().slice(-3000)}`);
  const m = await d.metrics();
  assert.equal(m.sipedge_edge_flow_failed_total, 1);
});

test('edge: registrar.mode is checked at start (unknown mode, edge without a registrar)', () => {
  const { spawnSync } = require('node:child_process');
  const { BIN } = require('../lib/daemon');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipedge-edge-conf-'));
  checkConfig('registrar = { mode = "proxy"; };', /registrar\.mode must be "local" or "edge", not 'proxy'/);
  checkConfig('registrar = { mode = "edge"; };', /registrar\.mode = "edge" needs routing\.upstreams/);
  checkConfig('registrar = { mode = "edge"; }; routing = { upstreams = [ "sip:127.0.0.1:5070" ]; };', null);
  fs.rmSync(dir, { recursive: true, force: true });

  function checkConfig(text, error) {
    const file = path.join(dir, 'sipedge.conf');
    fs.writeFileSync(file, `${text}\nlisten = [ "ws:127.0.0.1:8080" ]; domains = [ "example.com" ]; auth = { disabled = true; };\n`);
    const r = spawnSync(BIN, ['--check-config', '-c', file], { encoding: 'utf8' });
    if (error) {
      assert.notEqual(r.status, 0, `refused: ${text}`);
      assert.match(r.stderr + r.stdout, error);
    } else {
      assert.equal(r.status, 0, `accepted: ${text}\n${r.stderr}`);
    }
  }
});
