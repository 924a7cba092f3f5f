'use strict';
// Calls between registered WebSocket clients through the stateful proxy (RFC 3261 §16),
// asserted hop by hop with scripted clients.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startDaemon } = require('../lib/daemon');
const { SipWs, sdp, routeSet, tagOf, rand } = require('../lib/sipws');

const DOMAIN = 'example.com';

async function withDaemon(t, options = {}) {
  const d = await startDaemon({ listen: ['ws:127.0.0.1:0'], domains: [DOMAIN], args: ['--no-auth'], ...options });
  t.after(() => d.stop());
  return d;
}

async function phone(t, d, user, regOpts = {}) {
  const p = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}`, { user, domain: DOMAIN });
  t.after(() => p.ws.terminate());
  const r = await p.register(regOpts);
  assert.equal(r.status_code, 200, `${user} registers`);
  return p;
}

// alice INVITEs bob; returns what each side saw up to bob's INVITE.
async function invite(alice, bob, extra = {}) {
  const offer = sdp('alice');
  const inv = alice.request({ method: 'INVITE', ruri: `sip:${bob.user}@${DOMAIN}`, body: offer, ...extra });
  alice.send(inv.text);
  const got = await bob.expectRequest('INVITE');
  return { inv, got, offer };
}

test('basic call: INVITE, 100, 180, 200, ACK, BYE asserted on each hop', async (t) => {
  const d = await withDaemon(t);
  const alice = await phone(t, d, 'alice');
  const bob = await phone(t, d, 'bob');
  const { got: inv, offer } = await invite(alice, bob);

  const trying = await alice.expectResponse('INVITE', 100);
  assert.equal(trying.getHeaders('via').length, 1, '100 Trying carries only alice\'s Via');

  // The request as bob sees it.
  assert.equal(inv.ruri.toString(), bob.contactUri, 'Request-URI retargeted to the Contact');
  const vias = inv.getHeaders('via');
  assert.equal(vias.length, 2, 'proxy added one Via');
  assert.match(vias[0], /^SIP\/2\.0\/WS 127\.0\.0\.1:\d+;branch=z9hG4bK/);
  assert.match(vias[1], new RegExp(alice.host));
  assert.equal(inv.getHeader('max-forwards'), '69', 'Max-Forwards decremented');
  const rr = routeSet(inv, false);
  assert.equal(rr.length, 2, 'double Record-Route (one entry per flow)');
  for (const r of rr) assert.match(r, /^<sip:[0-9a-f]{32}@127\.0\.0\.1:\d+;transport=ws;lr>$/);
  assert.equal(inv.body, offer, 'SDP untouched');
  assert.equal(tagOf(inv.getHeader('to')), undefined, 'no To tag yet');

  bob.respond(inv, 180, 'Ringing', { toTag: 'bobtag' });
  const ringing = await alice.expectResponse('INVITE', 180);
  assert.equal(ringing.getHeaders('via').length, 1, 'proxy removed its Via');
  assert.equal(tagOf(ringing.getHeader('to')), 'bobtag');

  const answer = sdp('bob');
  bob.respond(inv, 200, 'OK', { toTag: 'bobtag', body: answer });
  const ok = await alice.expectResponse('INVITE', 200);
  assert.equal(ok.body, answer, 'answer SDP untouched');
  assert.equal(ok.getHeaders('via').length, 1);
  const aliceRoutes = routeSet(ok, true);
  assert.equal(aliceRoutes.length, 2);

  // ACK for the 2xx: end to end, routed by the route set to bob's connection.
  const fromTag = tagOf(inv.getHeader('from'));
  const ack = alice.request({ method: 'ACK', ruri: bob.contactUri, to: bob.aor, toTag: 'bobtag',
    fromTag, callId: inv.call_id, cseq: 1, routes: aliceRoutes });
  alice.send(ack.text);
  const gotAck = await bob.expectRequest('ACK');
  assert.equal(gotAck.ruri.toString(), bob.contactUri);
  assert.equal(gotAck.getHeaders('route').length, 0, 'our Route entries removed');

  const bye = alice.request({ method: 'BYE', ruri: bob.contactUri, to: bob.aor, toTag: 'bobtag',
    fromTag, callId: inv.call_id, cseq: 2, routes: aliceRoutes });
  alice.send(bye.text);
  const gotBye = await bob.expectRequest('BYE');
  assert.equal(gotBye.getHeaders('via').length, 2);
  bob.respond(gotBye, 200, 'OK');
  const byeOk = await alice.expectResponse('BYE', 200);
  assert.equal(byeOk.call_id, inv.call_id);
});

test('CANCEL before answer: CANCEL reaches the callee, 487 reaches the caller', async (t) => {
  const d = await withDaemon(t);
  const alice = await phone(t, d, 'alice');
  const bob = await phone(t, d, 'bob');
  const { inv: sent, got: inv } = await invite(alice, bob);
  bob.respond(inv, 180, 'Ringing', { toTag: 'b1' });
  await alice.expectResponse('INVITE', 180);

  const cancel = alice.request({ method: 'CANCEL', ruri: `sip:bob@${DOMAIN}`, branch: sent.branch,
    fromTag: tagOf(inv.getHeader('from')), callId: inv.call_id, cseq: 1 });
  alice.send(cancel.text);
  const cancelOk = await alice.expectResponse('CANCEL', 200);
  assert.equal(cancelOk.via_branch, sent.branch);

  const gotCancel = await bob.expectRequest('CANCEL');
  assert.equal(gotCancel.via_branch, inv.via_branch, 'CANCEL has the INVITE branch of that hop');
  bob.respond(gotCancel, 200, 'OK');
  bob.respond(inv, 487, 'Request Terminated', { toTag: 'b1' });
  const terminated = await alice.expectResponse('INVITE', 487);
  assert.equal(terminated.getHeaders('via').length, 1);
  const hopAck = await bob.expectRequest('ACK');
  assert.equal(hopAck.via_branch, inv.via_branch, 'proxy ACKs the 487 hop by hop');
});

test('busy: 486 is forwarded and ACKed hop by hop', async (t) => {
  const d = await withDaemon(t);
  const alice = await phone(t, d, 'alice');
  const bob = await phone(t, d, 'bob');
  const { got: inv } = await invite(alice, bob);
  bob.respond(inv, 486, 'Busy Here');
  const busy = await alice.expectResponse('INVITE', 486);
  assert.equal(busy.reason_phrase, 'Busy Here');
  await bob.expectRequest('ACK');
});

test('no answer: Timer C ends the branch with 408 and CANCELs the callee', async (t) => {
  const d = await withDaemon(t, { config: 'http = { web_root = ""; };\nproxy = { timer_c = 2; };\n' });
  const alice = await phone(t, d, 'alice');
  const bob = await phone(t, d, 'bob');
  const { got: inv } = await invite(alice, bob);
  bob.respond(inv, 180, 'Ringing', { toTag: 'b1' });
  await alice.expectResponse('INVITE', 180);
  const gotCancel = await bob.expectRequest('CANCEL', 6000);
  bob.respond(gotCancel, 200, 'OK');
  bob.respond(inv, 487, 'Request Terminated', { toTag: 'b1' });
  const timeout = await alice.expectResponse('INVITE', undefined, 6000);
  assert.equal(timeout.status_code, 408);
});

test('forking: two devices ring, the first 200 wins, the other branch is CANCELled', async (t) => {
  const d = await withDaemon(t);
  const alice = await phone(t, d, 'alice');
  const bob1 = await phone(t, d, 'bob', { instance: '00000000-0000-4000-8000-000000000001' });
  const bob2 = await phone(t, d, 'bob', { instance: '00000000-0000-4000-8000-000000000002' });
  alice.send(alice.request({ method: 'INVITE', ruri: `sip:bob@${DOMAIN}`, body: sdp('alice') }).text);
  const inv1 = await bob1.expectRequest('INVITE');
  const inv2 = await bob2.expectRequest('INVITE');
  assert.equal(inv1.ruri.toString(), bob1.contactUri);
  assert.equal(inv2.ruri.toString(), bob2.contactUri);
  assert.notEqual(inv1.via_branch, inv2.via_branch, 'each branch has its own Via branch');
  bob1.respond(inv1, 180, 'Ringing', { toTag: 't1' });
  bob2.respond(inv2, 180, 'Ringing', { toTag: 't2' });
  bob1.respond(inv1, 200, 'OK', { toTag: 't1', body: sdp('bob1') });
  const ok = await alice.expectResponse('INVITE', 200);
  assert.equal(tagOf(ok.getHeader('to')), 't1');
  const cancel = await bob2.expectRequest('CANCEL');
  bob2.respond(cancel, 200, 'OK');
  bob2.respond(inv2, 487, 'Request Terminated', { toTag: 't2' });
  await bob2.expectRequest('ACK');
  await alice.expectNothing((m) => m.status_code === 487, 500);
});

test('callee not registered: 404; registered but connection gone: 480', async (t) => {
  const d = await withDaemon(t);
  const alice = await phone(t, d, 'alice');
  alice.send(alice.request({ method: 'INVITE', ruri: `sip:nobody@${DOMAIN}`, body: sdp('a') }).text);
  assert.equal((await alice.expectResponse('INVITE', 404)).status_code, 404);

  const bob = await phone(t, d, 'bob');
  await bob.close();
  await new Promise((r) => setTimeout(r, 200));
  alice.send(alice.request({ method: 'INVITE', ruri: `sip:bob@${DOMAIN}`, body: sdp('a') }).text);
  const r = await alice.expectResponse('INVITE', undefined);
  assert.equal(r.status_code, 480);
});

test('in-dialog requests from the callee: re-INVITE and BYE reach the caller via the flow token', async (t) => {
  const d = await withDaemon(t);
  const alice = await phone(t, d, 'alice');
  const bob = await phone(t, d, 'bob');
  const { got: inv } = await invite(alice, bob);
  bob.respond(inv, 200, 'OK', { toTag: 'bt', body: sdp('bob') });
  const ok = await alice.expectResponse('INVITE', 200);
  const fromTag = tagOf(inv.getHeader('from'));
  alice.send(alice.request({ method: 'ACK', ruri: bob.contactUri, to: bob.aor, toTag: 'bt', fromTag,
    callId: inv.call_id, cseq: 1, routes: routeSet(ok, true) }).text);
  await bob.expectRequest('ACK');

  // Bob is now the UAC of in-dialog requests: To/From swap, route set in Record-Route order.
  const bobRoutes = routeSet(inv, false);
  const reinviteText = [
    `INVITE ${alice.contactUri} SIP/2.0`,
    `Via: SIP/2.0/WS ${bob.host};branch=z9hG4bK${rand()}`,
    'Max-Forwards: 70',
    ...bobRoutes.map((r) => `Route: ${r}`),
    `To: <${alice.aor}>;tag=${fromTag}`,
    `From: <${bob.aor}>;tag=bt`,
    `Call-ID: ${inv.call_id}`,
    'CSeq: 1 INVITE',
    `Contact: <${bob.contactUri}>`,
    'Content-Type: application/sdp',
  ];
  const body = sdp('bob-reinvite');
  bob.send([...reinviteText, `Content-Length: ${Buffer.byteLength(body)}`, '', body].join('\r\n'));
  const reinv = await alice.expectRequest('INVITE');
  assert.ok(reinv.ruri, `re-INVITE as alice sees it:\n${reinv.text}`);
  assert.equal(reinv.ruri.toString(), alice.contactUri);
  assert.equal(reinv.body, body);
  assert.equal(reinv.getHeaders('route').length, 0);
  alice.respond(reinv, 200, 'OK', { body: sdp('alice2') });
  await bob.expectResponse('INVITE', 200);

  const byeLines = reinviteText.slice(0, -1).map((l) => l.replace(/^INVITE /, 'BYE ').replace('CSeq: 1 INVITE', 'CSeq: 2 BYE'))
    .map((l) => (l.startsWith('Via:') ? `Via: SIP/2.0/WS ${bob.host};branch=z9hG4bK${rand()}` : l));
  bob.send([...byeLines, 'Content-Length: 0', '', ''].join('\r\n'));
  const bye = await alice.expectRequest('BYE');
  alice.respond(bye, 200, 'OK');
  await bob.expectResponse('BYE', 200);
});

test('callee connection dropped mid-call: the caller\'s BYE gets 430 or 480 at once', async (t) => {
  const d = await withDaemon(t);
  const alice = await phone(t, d, 'alice');
  const bob = await phone(t, d, 'bob', { instance: '00000000-0000-4000-8000-0000000000b0' });
  const { got: inv } = await invite(alice, bob);
  bob.respond(inv, 200, 'OK', { toTag: 'bt', body: sdp('bob') });
  const ok = await alice.expectResponse('INVITE', 200);
  const fromTag = tagOf(inv.getHeader('from'));
  const routes = routeSet(ok, true);
  alice.send(alice.request({ method: 'ACK', ruri: bob.contactUri, to: bob.aor, toTag: 'bt', fromTag,
    callId: inv.call_id, cseq: 1, routes }).text);
  await bob.expectRequest('ACK');
  bob.ws.terminate();
  await bob.closed;
  await new Promise((r) => setTimeout(r, 200));
  const started = Date.now();
  alice.send(alice.request({ method: 'BYE', ruri: bob.contactUri, to: bob.aor, toTag: 'bt', fromTag,
    callId: inv.call_id, cseq: 2, routes }).text);
  const r = await alice.expectResponse('BYE', undefined, 3000);
  assert.ok([430, 480].includes(r.status_code), `got ${r.status_code}`);
  assert.ok(Date.now() - started < 2000, 'answered at once, not after a timeout');
});

test('validation: Max-Forwards 0 → 483, Proxy-Require → 420, tel: URI → 416, forged token → no route', async (t) => {
  const d = await withDaemon(t);
  const alice = await phone(t, d, 'alice');
  await phone(t, d, 'bob');
  alice.send(alice.request({ method: 'MESSAGE', ruri: `sip:bob@${DOMAIN}`, maxForwards: 0 }).text);
  assert.equal((await alice.expectResponse('MESSAGE')).status_code, 483);
  alice.send(alice.request({ method: 'MESSAGE', ruri: `sip:bob@${DOMAIN}`, headers: ['Proxy-Require: foo'] }).text);
  const r420 = await alice.expectResponse('MESSAGE');
  assert.equal(r420.status_code, 420);
  assert.equal(r420.getHeader('unsupported'), 'foo');
  alice.send(alice.request({ method: 'MESSAGE', ruri: 'tel:+15551234567', to: `sip:bob@${DOMAIN}` }).text);
  assert.equal((await alice.expectResponse('MESSAGE')).status_code, 416);
  const forged = `<sip:${'0'.repeat(32)}@127.0.0.1:${d.ports.ws};transport=ws;lr>`;
  alice.send(alice.request({ method: 'BYE', ruri: 'sip:x@y.invalid;transport=ws', toTag: 'x', routes: [forged] }).text);
  const r = await alice.expectResponse('BYE');
  assert.ok(r.status_code >= 400, `forged token refused (${r.status_code})`);
});

test('every method routes to a registered user: OPTIONS, MESSAGE, INFO, SUBSCRIBE, NOTIFY, REFER, PUBLISH, UPDATE, PRACK', async (t) => {
  const d = await withDaemon(t);
  const alice = await phone(t, d, 'alice');
  const bob = await phone(t, d, 'bob');
  for (const method of ['OPTIONS', 'MESSAGE', 'INFO', 'SUBSCRIBE', 'NOTIFY', 'REFER', 'PUBLISH', 'UPDATE', 'PRACK']) {
    const headers = method === 'SUBSCRIBE' || method === 'NOTIFY' ? ['Event: presence'] : method === 'REFER' ? [`Refer-To: <sip:carol@${DOMAIN}>`] : [];
    alice.send(alice.request({ method, ruri: `sip:bob@${DOMAIN}`, headers }).text);
    const got = await bob.expectRequest(method);
    assert.equal(got.ruri.toString(), bob.contactUri, `${method} retargeted`);
    bob.respond(got, 200, 'OK');
    const r = await alice.expectResponse(method, 200);
    assert.equal(r.getHeaders('via').length, 1, `${method} response has the caller's Via only`);
  }
});
