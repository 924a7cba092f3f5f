'use strict';
// The admin API (doc/operations.md) against a real daemon: JsSIP phones registered over
// WebSocket, a call in progress between two scripted phones, a source banned by the rate limit.
// Every endpoint with good and bad input, the token refused, nothing of it on the ws port.
const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const dgram = require('node:dgram');
const { startDaemon } = require('../lib/daemon');
const { until } = require('../lib/until');
const { startUa } = require('../lib/jssip');
const { SipWs, sdp, rand, tagOf } = require('../lib/sipws');
const { SipUdp } = require('../lib/sipudp');
const { adminSetup, api } = require('../lib/admin');

const DOMAIN = 'example.com';

// One raw HTTP/1.1 exchange: what fetch cannot send (a body larger than it announces, or one
// the server must refuse before reading it).
function rawHttp(port, text) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(text));
    let got = '';
    s.on('data', (b) => { got += b; if (/\r\n\r\n[\s\S]*\}\n/.test(got)) { s.destroy(); resolve(got); } });
    s.on('error', reject);
    s.on('close', () => resolve(got));
    setTimeout(() => { s.destroy(); resolve(got); }, 3000);
  });
}

let a, d, alice, bob, carol, dave, call;

test.before(async () => {
  a = await adminSetup();
  d = await startDaemon({
    admin: true, listen: ['ws:127.0.0.1:0', 'udp:127.0.0.1:0'], domains: [DOMAIN], args: ['--no-auth'],
    // The phones' 127.0.0.1 is a trusted peer (never limited); the flood below comes from 127.0.0.2.
    config: `${a.config}limits = { requests_per_second = 5; burst = 5; ban_seconds = 60; };
auth = { trusted_peers = [ "127.0.0.1" ]; };\n`,
  });
  // Two JsSIP phones, registered.
  alice = startUa({ port: d.ports.ws, user: 'alice', domain: DOMAIN });
  bob = startUa({ port: d.ports.ws, user: 'bob', domain: DOMAIN });
  assert.deepEqual(await alice.registration, { ok: true });
  assert.deepEqual(await bob.registration, { ok: true });
  // A call in progress: carol calls dave, dave answers, carol ACKs; no BYE yet.
  carol = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}`, { user: 'carol', domain: DOMAIN });
  dave = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}`, { user: 'dave', domain: DOMAIN });
  assert.equal((await carol.register()).status_code, 200);
  assert.equal((await dave.register()).status_code, 200);
  const ruri = `sip:dave@${DOMAIN}`;
  call = { ruri, fromTag: rand(4), callId: rand(10) };
  carol.send(carol.request({ method: 'INVITE', ruri, fromTag: call.fromTag, callId: call.callId, body: sdp('carol') }).text);
  const inv = await dave.expectRequest('INVITE');
  dave.respond(inv, 200, 'OK', { toTag: 'davetag', body: sdp('dave') });
  call.ok = await carol.expectResponse('INVITE', 200);
  assert.equal(tagOf(call.ok.getHeader('to')), 'davetag');
});

test.after(async () => {
  for (const ua of [alice, bob]) if (ua) ua.ua.stop();
  for (const p of [carol, dave]) if (p) p.ws.terminate();
  await new Promise((r) => setTimeout(r, 200));
  if (d) await d.stop();
});

test('every request without the right bearer token is refused 401 with a JSON error', async () => {
  const before = (await d.metrics()).sipedge_admin_unauthorized_total;
  const tries = [
    { token: null },
    { token: 'wrong-token-wrong-token' },
    { token: a.token.slice(0, -1) },
    { token: `${a.token}x` },
    { token: null, headers: { authorization: `Basic ${Buffer.from(`admin:${a.token}`).toString('base64')}` } },
    { token: null, headers: { authorization: a.token } },
  ];
  for (const path of ['/api/v1/status', '/api/v1/registrations', '/api/v1/nowhere'])
    for (const opts of tries) {
      const r = await api(a, 'GET', path, opts);
      assert.equal(r.status, 401, `${path} with ${JSON.stringify(opts)}`);
      assert.match(r.json.error, /bearer token/);
      assert.match(r.headers.get('www-authenticate'), /^Bearer/);
    }
  const r = await api(a, 'POST', '/api/v1/reload', { token: 'nope-nope-nope-nope' });
  assert.equal(r.status, 401, 'reload without the token');
  assert.doesNotMatch(d.log(), /admin: reload asked/, 'a refused reload never ran');
  const after = (await d.metrics()).sipedge_admin_unauthorized_total;
  assert.equal(after - before, 19, 'each refusal counted');
});

test('nothing of the console is served on the ws port', async () => {
  for (const path of ['/api/v1/status', '/api/v1/registrations', '/'])
    assert.equal((await fetch(`http://127.0.0.1:${d.ports.ws}${path}`, {
      headers: { authorization: `Bearer ${a.token}` } })).status, 404, path);
});

test('status: version, uptime, listeners and counts', async () => {
  const r = await api(a, 'GET', '/api/v1/status');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^application\/json/);
  const s = r.json;
  assert.match(s.version, /^\d+\.\d+/);
  assert.ok(s.uptime_seconds >= 0 && s.uptime_seconds < 300);
  assert.deepEqual(s.listeners.map((l) => `${l.transport}:${l.host}:${l.port}`).sort(),
    [`udp:127.0.0.1:${d.ports.udp}`, `ws:127.0.0.1:${d.ports.ws}`].sort());
  assert.equal(s.counts.connections.ws, 4, 'two JsSIP phones and two scripted ones');
  assert.equal(s.counts.bindings, 4);
  assert.equal(s.counts.aors, 4);
  assert.equal(s.counts.calls, 1, 'the call in progress');
  assert.equal(typeof s.counts.transactions.server, 'number');
  assert.equal(s.counts.banned, 0);
});

test('registrations: every binding, one AOR, and removing one', async () => {
  const all = await api(a, 'GET', '/api/v1/registrations');
  assert.equal(all.status, 200);
  assert.deepEqual(all.json.registrations.map((b) => b.aor).sort(),
    ['alice', 'bob', 'carol', 'dave'].map((u) => `sip:${u}@${DOMAIN}`));
  const one = await api(a, 'GET', `/api/v1/registrations?aor=${encodeURIComponent(`sip:alice@${DOMAIN}`)}`);
  assert.equal(one.json.registrations.length, 1);
  const b = one.json.registrations[0];
  assert.equal(b.aor, `sip:alice@${DOMAIN}`);
  assert.equal(b.transport, 'ws');
  assert.match(b.peer, /^127\.0\.0\.1:\d+$/);
  assert.match(b.user_agent, /JsSIP/);
  assert.match(b.contact, /transport=ws/);
  assert.match(b.instance, /urn:uuid:/, 'JsSIP sends +sip.instance');
  assert.ok(b.expires_in > 0 && b.expires_in <= 600);
  assert.match(b.registered_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const flows = (await api(a, 'GET', '/api/v1/flows')).json.flows;
  assert.ok(flows.some((f) => f.id === b.flow && f.peer === b.peer), 'its flow is listed');

  // Remove bob's binding by its key; his phone is still connected, but he is no longer reachable.
  const bobs = (await api(a, 'GET', `/api/v1/registrations?aor=sip:bob@${DOMAIN}`)).json.registrations;
  assert.equal(bobs.length, 1);
  const wrongKey = await api(a, 'DELETE', `/api/v1/registrations?aor=sip:bob@${DOMAIN}&key=nope`);
  assert.equal(wrongKey.status, 404);
  assert.match(wrongKey.json.error, /no binding/);
  const del = await api(a, 'DELETE',
    `/api/v1/registrations?aor=${encodeURIComponent(`sip:bob@${DOMAIN}`)}&key=${encodeURIComponent(bobs[0].key)}`);
  assert.equal(del.status, 200);
  assert.deepEqual(del.json, { aor: `sip:bob@${DOMAIN}`, removed: 1 });
  assert.equal((await api(a, 'GET', `/api/v1/registrations?aor=sip:bob@${DOMAIN}`)).json.registrations.length, 0);
  assert.match(d.log(), /admin: 1 binding of sip:bob@example\.com removed by 127\.0\.0\.1/);
  assert.equal((await api(a, 'DELETE', `/api/v1/registrations?aor=sip:bob@${DOMAIN}`)).status, 404, 'nothing left');
});

test('registrations: bad input', async () => {
  const cases = [
    ['DELETE', '/api/v1/registrations', 400, /needs \?aor=/],
    ['DELETE', '/api/v1/registrations?key=x', 400, /needs \?aor=/],
    ['DELETE', '/api/v1/registrations?aor=', 400, /aor is empty/],
    ['GET', '/api/v1/registrations?aro=sip:alice@example.com', 400, /unknown query argument 'aro'/],
    ['DELETE', '/api/v1/registrations?aor=sip:x@y&keys=1', 400, /unknown query argument/],
    ['POST', '/api/v1/registrations', 405, /GET or DELETE/],
    ['GET', `/api/v1/registrations?${Array.from({ length: 9 }, (_, i) => `a${i}=1`).join('&')}`, 400, /at most 8/],
    ['GET', `/api/v1/registrations?aor=${'x'.repeat(600)}`, 414, /too long/],
  ];
  for (const [method, path, status, re] of cases) {
    const r = await api(a, method, path);
    assert.equal(r.status, status, `${method} ${path.slice(0, 60)}`);
    assert.match(r.json.error, re);
  }
});

test('registrations: a User-Agent that is not valid UTF-8 is listed, its bad byte as U+FFFD', async () => {
  const p = await SipUdp.open({ port: d.ports.udp });
  try {
    const ruri = `sip:${DOMAIN}`, to = `sip:erin@${DOMAIN}`;
    const contact = `<sip:erin@${p.local.address}:${p.local.port}>`;
    // 0xff is never UTF-8; 0xc3 0xa9 (é) is, and must come through as it is.
    const { text, callId } = p.request({ method: 'REGISTER', ruri, to, user: 'erin',
      headers: [`Contact: ${contact}`, 'Expires: 600', 'User-Agent: Erin\xffPhone/1.0 caf\xc3\xa9'] });
    await p.send(text);
    assert.equal((await p.final(callId)).status_code, 200);
    const r = await api(a, 'GET', '/api/v1/registrations');
    assert.equal(r.status, 200);
    const erin = r.json.registrations.find((b) => b.aor === to);
    assert.ok(erin, 'the binding is listed');
    assert.equal(erin.user_agent, 'Erin\ufffdPhone/1.0 caf\u00e9');
    assert.equal(erin.transport, 'udp');
    assert.ok(r.json.registrations.some((b) => b.aor === `sip:alice@${DOMAIN}`), 'and the others with it');
    // Leave the daemon as the other tests expect it: no binding and no flow of erin's.
    assert.equal((await api(a, 'DELETE', `/api/v1/registrations?aor=${encodeURIComponent(to)}`)).status, 200);
    assert.equal((await api(a, 'DELETE', `/api/v1/flows/${erin.flow}`)).status, 200);
    await until('the udp flow to go', async () =>
      !(await api(a, 'GET', '/api/v1/flows')).json.flows.some((f) => f.id === erin.flow));
  } finally {
    await p.close();
  }
});

test('calls: the call in progress with both legs; BYE ends it', async () => {
  const r = await api(a, 'GET', '/api/v1/calls');
  assert.equal(r.status, 200);
  assert.equal(r.json.calls.length, 1);
  const c = r.json.calls[0];
  assert.equal(c.call_id, call.callId);
  assert.equal(c.caller, `sip:carol@${DOMAIN}`);
  assert.equal(c.callee, `sip:dave@${DOMAIN}`);
  assert.ok(c.duration_seconds >= 0);
  assert.deepEqual(c.legs.map((l) => l.role), ['caller', 'callee']);
  const flows = (await api(a, 'GET', '/api/v1/flows')).json.flows;
  for (const leg of c.legs) {
    assert.equal(leg.transport, 'ws');
    assert.ok(flows.some((f) => f.id === leg.flow), `leg ${leg.role} is an open flow`);
  }
  assert.notEqual(c.legs[0].flow, c.legs[1].flow);
  assert.equal((await d.metrics()).sipedge_calls_in_progress, 1);

  const bye = carol.ackAndBye(call.ok, call);
  const got = await dave.expectRequest('BYE');
  dave.respond(got, 200, 'OK');
  assert.equal((await bye).status_code, 200);
  await until('the call to end', async () => (await api(a, 'GET', '/api/v1/calls')).json.calls.length === 0);
  assert.equal((await api(a, 'GET', '/api/v1/status')).json.counts.calls, 0);
});

test('flows: bytes and ages; closing one drops its connection and its binding', async () => {
  const before = (await api(a, 'GET', '/api/v1/flows')).json.flows;
  assert.ok(before.length >= 4);
  for (const f of before) {
    assert.equal(f.transport, 'ws');
    assert.equal(f.listener, `ws:127.0.0.1:${d.ports.ws}`);
    assert.ok(f.bytes_in > 100 && f.bytes_out > 100, 'a REGISTER each way at least');
    assert.ok(f.age_seconds >= 0 && f.idle_seconds >= 0 && f.idle_seconds <= f.age_seconds);
  }
  const aliceFlow = (await api(a, 'GET', `/api/v1/registrations?aor=sip:alice@${DOMAIN}`)).json.registrations[0].flow;
  const disconnected = new Promise((resolve) => alice.ua.once('disconnected', resolve));
  const r = await api(a, 'DELETE', `/api/v1/flows/${aliceFlow}`);
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { id: aliceFlow, closing: true });
  await disconnected;
  await until('the flow to go', async () =>
    !(await api(a, 'GET', '/api/v1/flows')).json.flows.some((f) => f.id === aliceFlow));
  assert.match(d.log(), new RegExp(`admin: flow ${aliceFlow} \\(ws from 127\\.0\\.0\\.1:\\d+\\) closed by 127\\.0\\.0\\.1`));
  assert.equal((await api(a, 'DELETE', `/api/v1/flows/${aliceFlow}`)).status, 404, 'gone already');
});

test('flows: bad input', async () => {
  const cases = [
    ['DELETE', '/api/v1/flows/abc', 400, /not a flow id/],
    ['DELETE', '/api/v1/flows/-1', 400, /not a flow id/],
    ['DELETE', '/api/v1/flows/0', 400, /not a flow id/],
    ['DELETE', '/api/v1/flows/1e5', 400, /not a flow id/],
    ['DELETE', '/api/v1/flows/99999999999999999999999', 400, /not a flow id/],
    ['DELETE', '/api/v1/flows/12345', 404, /no open flow 12345/],
    ['DELETE', '/api/v1/flows', 405, /DELETE \/flows\/ID/],
    ['GET', '/api/v1/flows/12345', 405, /DELETE only/],
    ['POST', '/api/v1/flows', 405, /flows take GET/],
    ['GET', '/api/v1/flows?all=1', 400, /unknown query argument/],
  ];
  for (const [method, path, status, re] of cases) {
    const r = await api(a, method, path);
    assert.equal(r.status, status, `${method} ${path}`);
    assert.match(r.json.error, re);
  }
});

test('bans: a flooding source is listed, and the ban is lifted', async () => {
  // 127.0.0.2 floods OPTIONS over UDP (limits: 5/s, burst 5) and is banned; the tests' own
  // phones on 127.0.0.1 are not.
  const sock = dgram.createSocket('udp4');
  await new Promise((r) => sock.bind(0, '127.0.0.2', r));
  const { port } = sock.address();
  for (let i = 0; i < 20; i++) {
    const msg = [`OPTIONS sip:${DOMAIN} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.2:${port};rport;branch=z9hG4bK${rand()}`,
      'Max-Forwards: 70', `To: <sip:${DOMAIN}>`, `From: <sip:flood@${DOMAIN}>;tag=${rand(4)}`, `Call-ID: ${rand(8)}`,
      'CSeq: 1 OPTIONS', 'Content-Length: 0', '', ''].join('\r\n');
    await new Promise((r) => sock.send(msg, d.ports.udp, '127.0.0.1', r));
  }
  sock.close();
  const bans = await until('the ban', async () => {
    const r = (await api(a, 'GET', '/api/v1/bans')).json.bans;
    return r.length ? r : null;
  });
  assert.equal(bans.length, 1);
  assert.equal(bans[0].address, '127.0.0.2');
  assert.ok(bans[0].seconds_left > 50 && bans[0].seconds_left <= 60);
  assert.equal((await api(a, 'GET', '/api/v1/status')).json.counts.banned, 1);

  const r = await api(a, 'DELETE', '/api/v1/bans/127.0.0.2');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { address: '127.0.0.2', lifted: true });
  assert.deepEqual((await api(a, 'GET', '/api/v1/bans')).json.bans, []);
  assert.equal((await d.metrics()).sipedge_limits_banned_sources, 0);
  assert.match(d.log(), /limits: ban on 127\.0\.0\.2 lifted by the operator/);

  const cases = [
    ['DELETE', '/api/v1/bans/127.0.0.2', 404, /not banned/],
    ['DELETE', '/api/v1/bans/::1', 404, /not banned/],
    ['DELETE', '/api/v1/bans/not-an-address', 400, /not a numeric/],
    ['DELETE', '/api/v1/bans/10.0.0.0%2F8', 400, /not a numeric/],
    ['DELETE', '/api/v1/bans', 405, /DELETE \/bans\/ADDRESS/],
    ['POST', '/api/v1/bans/127.0.0.2', 405, /DELETE only/],
    ['GET', '/api/v1/bans?x=1', 400, /unknown query argument/],
  ];
  for (const [method, path, status, re] of cases) {
    const res = await api(a, method, path);
    assert.equal(res.status, status, `${method} ${path}`);
    assert.match(res.json.error, re);
  }
});

test('reload over the API: nothing changed in the file, nothing to restart', async () => {
  const r = await api(a, 'POST', '/api/v1/reload');
  assert.equal(r.status, 200);
  assert.equal(r.json.ok, true);
  assert.deepEqual(r.json.applied, []);
  assert.deepEqual(r.json.restart_required, []);
  assert.deepEqual(r.json.errors, []);
  assert.equal((await api(a, 'GET', '/api/v1/reload')).status, 405, 'reload is POST only');
  const reloads = (await d.metrics()).sipedge_reloads_total;
  assert.equal(reloads, 1);
});

test('unknown paths, methods, huge bodies and headers: 4xx with a JSON error, the daemon unharmed', async () => {
  const cases = [
    ['GET', '/api/v1/nothing', 404, /no such resource/],
    ['GET', '/api/v2/status', 404, /no such resource/],
    ['GET', '/api', 404, /no such resource/],
    ['GET', '/api/v1/statusx', 404, /no such resource/],
    ['PUT', '/api/v1/status', 405, /GET only/],
    ['DELETE', '/api/v1/status', 405, /GET only/],
    ['PATCH', '/api/v1/calls', 405, /GET only/],
    ['GET', '/api/v1/status?verbose=1', 400, /unknown query argument/],
    ['GET', '/api/v1/warnings?after=x', 400, /sequence number/],
    ['GET', `/api/v1/${'a'.repeat(700)}`, 400, /path over/],
  ];
  for (const [method, path, status, re] of cases) {
    const r = await api(a, method, path);
    assert.equal(r.status, status, `${method} ${path.slice(0, 40)}`);
    assert.match(r.json.error, re);
  }
  const big = await api(a, 'POST', '/api/v1/reload', { body: 'x'.repeat(5000) });
  assert.equal(big.status, 413);
  assert.match(big.json.error, /body over 4096 bytes/);
  // A body announced as huge is refused before it is read.
  const huge = await rawHttp(a.port, `POST /api/v1/reload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${a.token}\r\n` +
    'Content-Length: 100000000\r\n\r\nxxxx');
  assert.match(huge, /^HTTP\/1\.1 413/);
  assert.match(huge, /"error":"request body over 4096 bytes"/);
  // Headers over lws' limit: the connection is refused, the daemon goes on.
  await rawHttp(a.port, `GET /api/v1/status HTTP/1.1\r\nHost: x\r\nX-Big: ${'y'.repeat(10000)}\r\n\r\n`);
  const after = await api(a, 'GET', '/api/v1/status');
  assert.equal(after.status, 200);
  const m = await d.metrics();
  assert.ok(m.sipedge_admin_requests_total > 40, 'requests counted');
  assert.ok(m.sipedge_admin_errors_total >= 30, 'errors counted');
});

test('warnings: the recent warnings and errors, after a sequence number', async () => {
  const r = await api(a, 'GET', '/api/v1/warnings');
  assert.equal(r.status, 200);
  assert.ok(r.json.warnings.some((w) => w.level === 'warn' && /authentication is OFF/.test(w.text)));
  const later = await api(a, 'GET', `/api/v1/warnings?after=${r.json.last}`);
  assert.deepEqual(later.json.warnings, []);
});
