'use strict';
// Reload without dropping anyone: a call up through upstream A; routing.upstreams changed to B
// in the file and reloaded over the API; the next call goes to B while the first one still
// ends with its BYE at A. Settings that cannot change live are named and keep their values; a
// file that does not read changes nothing and says why; SIGHUP does the same as the API.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { startDaemon } = require('../lib/daemon');
const { SipUdp } = require('../lib/sipudp');
const { SipWs, sdp, rand } = require('../lib/sipws');
const { adminSetup, api } = require('../lib/admin');

const TRUST = 'auth = { trusted_peers = [ "127.0.0.0/8" ]; };\n';

// A UAS over UDP that answers every INVITE 200 and every BYE 200, and notes what reached it.
async function upstream(name) {
  const peer = await SipUdp.open({});
  peer.name = name;
  peer.seen = [];
  const answer = (req, status) => {
    const lines = [`SIP/2.0 ${status} OK`, ...req.getHeaders('via').map((v) => `Via: ${v}`)];
    if (req.method === 'INVITE') for (const rr of req.getHeaders('record-route')) lines.push(`Record-Route: ${rr}`);
    let to = req.getHeader('to');
    if (!/;\s*tag=/.test(to)) to += `;tag=${name}`;
    lines.push(`To: ${to}`, `From: ${req.getHeader('from')}`, `Call-ID: ${req.call_id}`, `CSeq: ${req.getHeader('cseq')}`,
      `Contact: <sip:${name}@127.0.0.1:${peer.local.port}>`);
    const body = req.method === 'INVITE' ? sdp(name) : '';
    if (body) lines.push('Content-Type: application/sdp');
    lines.push(`Content-Length: ${Buffer.byteLength(body)}`, '', body);
    peer.send(lines.join('\r\n'));
  };
  peer.sock.on('message', (buf) => {
    const m = /^(\w+) /.exec(buf.toString('latin1'));
    if (!m || m[1] === 'SIP') return;
    const callId = /^Call-ID: *(.+?)\r$/im.exec(buf.toString('latin1'))[1];
    peer.seen.push(`${m[1]} ${callId}`);
  });
  (async () => {
    for (;;) {
      const req = await peer.next((x) => !x.status_code && ['INVITE', 'BYE'].includes(x.method), 60000);
      if (!req) return;
      answer(req, 200);
    }
  })();
  return peer;
}

function config(a, up, trust = TRUST) {
  return `${a.config}${trust}routing = { upstreams = [ "sip:127.0.0.1:${up.local.port};transport=udp" ]; };\n`;
}

async function call(alice, ruri) {
  const c = { ruri, fromTag: rand(4), callId: rand(10) };
  alice.send(alice.request({ method: 'INVITE', ruri, fromTag: c.fromTag, callId: c.callId, body: sdp('alice') }).text);
  c.ok = await alice.expect((m) => m.status_code === 200 && m.call_id === c.callId, 'the 200 to the INVITE');
  return c;
}

test('reload: new calls take the new upstream, a call in progress on the old one goes on', async (t) => {
  const upA = await upstream('upa');
  const upB = await upstream('upb');
  t.after(() => Promise.all([upA.close(), upB.close()]));
  const a = await adminSetup();
  const d = await startDaemon({
    admin: true, listen: ['ws:127.0.0.1:0', 'udp:127.0.0.1:0'], args: ['--no-auth'], config: config(a, upA),
  });
  t.after(() => d.stop());
  upA.port = upB.port = d.ports.udp;
  const alice = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}`, { user: 'alice', domain: 'example.com' });
  t.after(() => alice.ws.terminate());
  assert.equal((await alice.register()).status_code, 200);

  const first = await call(alice, 'sip:7001@pbx.test');
  assert.deepEqual(upA.seen, [`INVITE ${first.callId}`]);

  // routing.upstreams now names B, and udp.max_flows (a restart setting) changed too.
  fs.writeFileSync(d.configFile, `${config(a, upB)}udp = { max_flows = 5000; };\n`);
  const r = await api(a, 'POST', '/api/v1/reload');
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(r.json.ok, true);
  assert.deepEqual(r.json.applied, ['routing.upstreams']);
  assert.deepEqual(r.json.restart_required, ['udp.max_flows']);
  assert.match(d.log(), /reload: in force now: routing\.upstreams/);
  assert.match(d.log(), /reload: changed but kept as running until a restart: udp\.max_flows/);

  const second = await call(alice, 'sip:7002@pbx.test');
  assert.deepEqual(upB.seen, [`INVITE ${second.callId}`], 'the new call went to B');
  assert.deepEqual(upA.seen, [`INVITE ${first.callId}`], 'and not to A');

  // The first call, still up, ends at A: its BYE follows its route set, not the upstreams.
  assert.equal((await alice.ackAndBye(first.ok, first)).status_code, 200);
  assert.ok(upA.seen.includes(`BYE ${first.callId}`), `BYE reached A: ${upA.seen}`);
  assert.equal((await alice.ackAndBye(second.ok, second)).status_code, 200);
  assert.ok(upB.seen.includes(`BYE ${second.callId}`));
  const calls = (await api(a, 'GET', '/api/v1/calls')).json.calls;
  assert.deepEqual(calls, [], 'both calls ended');
  assert.equal((await api(a, 'GET', '/api/v1/status')).json.counts.connections.ws, 1, 'alice stayed connected');
});

test('reload: a bad file changes nothing and says why; SIGHUP applies limits, domains and log_level', async (t) => {
  const upA = await upstream('upa');
  t.after(() => upA.close());
  const a = await adminSetup();
  const d = await startDaemon({
    admin: true, listen: ['ws:127.0.0.1:0', 'udp:127.0.0.1:0'], args: ['--no-auth'], domains: [],
    config: `${config(a, upA, '')}domains = [ "example.com" ];\n`,
  });
  t.after(() => d.stop());
  upA.port = d.ports.udp;
  const good = fs.readFileSync(d.configFile, 'utf8');

  fs.writeFileSync(d.configFile, `${good}limits = { burst = "many"; };\n`);
  let r = await api(a, 'POST', '/api/v1/reload');
  assert.equal(r.status, 422);
  assert.equal(r.json.ok, false);
  assert.ok(r.json.errors.some((e) => /sipedge\.conf:\d+: limits\.burst must be an integer/.test(e)), r.json.errors.join('\n'));
  assert.ok(r.json.errors.some((e) => /nothing changed/.test(e)));
  fs.writeFileSync(d.configFile, good.replace(/upstreams = \[[^\]]*\]/, 'upstreams = [ "http://x" ]'));
  r = await api(a, 'POST', '/api/v1/reload');
  assert.equal(r.status, 422, 'a value that does not check');
  assert.ok(r.json.errors.some((e) => /routing\.upstreams\[0\] 'http:\/\/x' is not a sip: or sips: URI/.test(e)));
  assert.equal((await d.metrics()).sipedge_reloads_failed_total, 2);

  // An OPTIONS to example2.com is for someone else until domains has it.
  const phone = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}`, { user: 'alice', domain: 'example2.com' });
  t.after(() => phone.ws.terminate());
  assert.equal((await phone.register()).status_code, 403, 'not our domain yet (no relay of REGISTER)');
  fs.writeFileSync(d.configFile, good.replace('domains = [ "example.com" ]', 'domains = [ "example.com", "example2.com" ]') +
    'limits = { burst = 50; };\nlog_level = "debug";\n');
  d.child.kill('SIGHUP');
  for (let i = 0; i < 50 && !/reload: in force now/.test(d.log()); i++) await new Promise((res) => setTimeout(res, 100));
  assert.match(d.log(), /reload: in force now: domains, log_level, limits\.burst/);
  assert.equal((await phone.register()).status_code, 200, 'the new domain is ours');
  assert.match(d.log(), / debug  /, 'debug lines now');
});
