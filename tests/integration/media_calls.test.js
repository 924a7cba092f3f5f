'use strict';
// Calls anchored in Debian's real rtpengine (media.rtpengine, relay "cross"): a plain SIP phone
// over UDP calls a WebSocket user; hold and resume by re-INVITE from either side, and a late
// offer (INVITE without SDP, offer in the 200, answer in the ACK). The WebSocket side must see WebRTC SDP (SAVPF, ICE,
// fingerprint) on rtpengine's address, the UDP side plain RTP/AVP without ICE or DTLS; no call
// leaves a session in rtpengine after BYE, CANCEL or an error; rtpengine down means 503; a
// silent rtpengine fails over to the next one.
const test = require('node:test');
const assert = require('node:assert');
const { startDaemon } = require('../lib/daemon');
const { startRtpengine } = require('../lib/rtpengine');
const { SipWs, rand, routeSet, tagOf } = require('../lib/sipws');
const { SipUdp } = require('../lib/sipudp');

const PLAIN_SDP = ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=phone', 'c=IN IP4 127.0.0.1', 't=0 0',
  'm=audio 40000 RTP/AVP 0', 'a=rtpmap:0 PCMU/8000', 'a=sendrecv', ''].join('\r\n');
// What a browser answers with: DTLS-SRTP, ICE, rtcp-mux (the fingerprint is only read, never used).
const WEBRTC_SDP = ['v=0', 'o=- 2 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0',
  'm=audio 41000 UDP/TLS/RTP/SAVPF 0', 'c=IN IP4 127.0.0.1', 'a=mid:0', 'a=rtcp-mux',
  'a=ice-ufrag:abcd', 'a=ice-pwd:abcdefghijklmnopqrstuvwx',
  `a=fingerprint:sha-256 ${Array.from({ length: 32 }, (_, i) => (i + 16).toString(16).toUpperCase()).join(':')}`,
  'a=setup:active', 'a=rtpmap:0 PCMU/8000', 'a=sendrecv',
  'a=candidate:1 1 UDP 2130706431 127.0.0.1 41000 typ host', ''].join('\r\n');

function mediaOf(sdp) {
  const m = /^m=audio (\d+) (\S+)/m.exec(sdp);
  const c = /^c=IN IP4 (\S+)/m.exec(sdp);
  return { port: m && Number(m[1]), proto: m && m[2], addr: c && c[1] };
}

async function setup(engines, extra = '', more = '') {
  const d = await startDaemon({
    listen: ['ws:127.0.0.1:0', 'udp:127.0.0.1:0'],
    args: ['--no-auth'],
    config: `http = { web_root = ""; };\nmedia = { rtpengine = [ ${engines.map((e) => `"${e}"`).join(', ')} ]; ${extra} };\n${more}`,
  });
  const bob = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}`, { user: 'bob', domain: 'example.com' });
  assert.strictEqual((await bob.register()).status_code, 200);
  const phone = await SipUdp.open({ port: d.ports.udp });
  return { d, bob, phone };
}

// An offer or answer that rtpengine does not answer fails in 300 ms; no ping marks it down first.
const NG_QUICK = 'ng_timeout = 300; ping_interval = 3600;';

// One media test's parts: rtpengines (r the first), the daemon anchoring calls in them, bob
// registered and the phone (setup). The body gets them; what it hands to later() is closed after
// it, then bob, the phone, the daemon (which fails the test if a sanitizer spoke) and rtpengine.
async function withMedia({ engines = 1, media = '', more = '' }, body) {
  const rs = [];
  try {
    for (let i = 0; i < engines; i++) rs.push(await startRtpengine());
    const { d, bob, phone } = await setup(rs.map((e) => e.ng), media, more);
    const held = [];
    const later = (x) => { held.push(x); return x; };
    try {
      await body({ r: rs[0], rs, d, bob, phone, later });
    } finally {
      for (const x of held.reverse()) await x.close();
      await bob.close();
      await phone.close();
      await d.stop();
    }
  } finally {
    for (const e of rs) await e.stop();
  }
}

function invite(phone, callId, fromTag, body = PLAIN_SDP) {
  const l = phone.local;
  const lines = [`INVITE sip:bob@example.com SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${l.port};rport;branch=z9hG4bK${rand()}`, 'Max-Forwards: 70',
    '<sip:bob@example.com>'.replace(/^/, 'To: '), `From: <sip:phone@example.net>;tag=${fromTag}`,
    `Call-ID: ${callId}`, 'CSeq: 1 INVITE', `Contact: <sip:phone@127.0.0.1:${l.port}>`];
  if (body) lines.push('Content-Type: application/sdp');
  lines.push(`Content-Length: ${Buffer.byteLength(body)}`, '', body);
  return lines.join('\r\n');
}

function inDialog(phone, method, ok, { callId, fromTag, cseq, body = '' }) {
  const l = phone.local;
  const routes = routeSet(ok, true);
  const contact = /<([^>]+)>/.exec(ok.getHeader('contact'))[1];
  return [`${method} ${contact} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${l.port};rport;branch=z9hG4bK${rand()}`, 'Max-Forwards: 70',
    ...routes.map((r) => `Route: ${r}`), `To: <sip:bob@example.com>;tag=${tagOf(ok.getHeader('to'))}`,
    `From: <sip:phone@example.net>;tag=${fromTag}`, `Call-ID: ${callId}`, `CSeq: ${cseq} ${method}`,
    `Contact: <sip:phone@127.0.0.1:${l.port}>`, ...(body ? ['Content-Type: application/sdp'] : []),
    `Content-Length: ${Buffer.byteLength(body)}`, '', body].join('\r\n');
}

// The phone answers a request that came to it over UDP (Via, From, To, Call-ID, CSeq copied).
function phoneRespond(phone, req, status, reason, body = '', toTag = null) {
  const to = req.getHeader('to') + (toTag && !/;\s*tag=/.test(req.getHeader('to')) ? `;tag=${toTag}` : '');
  const lines = [`SIP/2.0 ${status} ${reason}`, ...req.getHeaders('via').map((v) => `Via: ${v}`),
    ...(req.method === 'INVITE' && status < 300 ? req.getHeaders('record-route').map((v) => `Record-Route: ${v}`) : []),
    `To: ${to}`, `From: ${req.getHeader('from')}`, `Call-ID: ${req.call_id}`,
    `CSeq: ${req.getHeader('cseq')}`, `Contact: <sip:phone@127.0.0.1:${phone.local.port}>`];
  if (body) lines.push('Content-Type: application/sdp');
  lines.push(`Content-Length: ${Buffer.byteLength(body)}`, '', body);
  return phone.send(lines.join('\r\n'));
}

// An SDP with its direction attribute changed (hold: sendonly, resume: sendrecv) and its
// o= version raised, as a phone sends in a re-INVITE.
function withDirection(sdp, dir, version) {
  return sdp.replace(/^a=(sendrecv|sendonly|recvonly|inactive)$/m, `a=${dir}`)
    .replace(/^(o=\S+ \S+) \d+/m, `$1 ${version}`);
}

const direction = (sdp) => (/^a=(sendrecv|sendonly|recvonly|inactive)\r?$/m.exec(sdp) || [])[1];

// The phone calls bob (body: its offer): the INVITE bob got.
async function offer({ phone, bob }, callId, fromTag, body = PLAIN_SDP) {
  await phone.send(invite(phone, callId, fromTag, body));
  return bob.expectRequest('INVITE');
}

// The 200 the phone got for callId.
async function okTo(phone, callId, what = 'the phone got the 200') {
  const ok = await phone.next((m) => m.status_code === 200 && m.call_id === callId, 5000);
  assert.ok(ok, what);
  return ok;
}

// The phone's ACK to the 200 ok (dlg: inDialog's), and the ACK bob got.
async function ack({ phone, bob }, ok, dlg) {
  await phone.send(inDialog(phone, 'ACK', ok, dlg));
  return bob.expectRequest('ACK');
}

// The phone's call to bob up to the ACK: the 200 the phone got and what bob saw.
async function establish(ctx, callId, fromTag, toTag) {
  const inv = await offer(ctx, callId, fromTag);
  ctx.bob.respond(inv, 200, 'OK', { toTag, body: WEBRTC_SDP });
  const ok = await okTo(ctx.phone, callId);
  await ack(ctx, ok, { callId, fromTag, cseq: 1 });
  return { inv, ok };
}

// The phone hangs up (BYE with cseq), bob says 200: no session is left in rtpengine.
async function hangUp({ phone, bob, r }, ok, { callId, fromTag, cseq }) {
  await phone.send(inDialog(phone, 'BYE', ok, { callId, fromTag, cseq }));
  const bye = await bob.expectRequest('BYE');
  bob.respond(bye, 200, 'OK');
  assert.ok(await phone.final(callId, 5000));
  assert.deepStrictEqual(await r.calls(), [], 'the session is gone after BYE');
}

// The SDP of the browser's leg: WebRTC (SAVPF, ICE, a fingerprint).
function assertWebrtc(sdp) {
  assert.match(sdp, /^m=audio \d+ UDP\/TLS\/RTP\/SAVPF /m, sdp);
  assert.match(sdp, /^a=ice-ufrag:/m);
  assert.match(sdp, /^a=fingerprint:/m);
}

// The SDP of a plain phone's leg: RTP/AVP, no ICE, no DTLS.
function assertPlain(sdp) {
  assert.match(sdp, /^m=audio \d+ RTP\/AVP /m, sdp);
  assert.doesNotMatch(sdp, /^a=(ice-|fingerprint:|candidate:)/m, sdp);
}

const assertEnginePort = (r, port) => assert.ok(port >= r.portMin && port < r.portMin + 100, `port ${port} is rtpengine's`);

const waitNoCalls = async (r, ms = 3000) => {
  for (let t = 0; t < ms / 100 && (await r.calls()).length; t++) await new Promise((res) => setTimeout(res, 100));
  return r.calls();
};

test('a UDP phone calls a WebSocket user: each side gets its own SDP, BYE deletes the session', () => withMedia({}, async (ctx) => {
  const { r, d, bob, phone } = ctx;
  const callId = `media-${rand(8)}`;
  const inv = await offer(ctx, callId, 'ph1');
  const toWeb = inv.body;
  assertWebrtc(toWeb);
  assert.match(toWeb, /^a=rtcp-mux/m);
  assert.match(toWeb, /^a=candidate:/m);
  const web = mediaOf(toWeb);
  assert.strictEqual(web.addr, '127.0.0.1');
  assertEnginePort(r, web.port);
  assert.deepStrictEqual(await r.calls(), [callId]);

  bob.respond(inv, 180, 'Ringing', { toTag: 'bt1' });
  bob.respond(inv, 200, 'OK', { toTag: 'bt1', body: WEBRTC_SDP });
  const ok = await okTo(phone, callId);
  const toPlain = ok.body;
  assertPlain(toPlain);
  const plain = mediaOf(toPlain);
  assert.notStrictEqual(plain.port, 41000);
  assertEnginePort(r, plain.port);
  assert.match(d.log(), new RegExp(`media: call ${callId} anchored in rtpengine ${r.ng}`));

  await ack(ctx, ok, { callId, fromTag: 'ph1', cseq: 1 });
  await hangUp(ctx, ok, { callId, fromTag: 'ph1', cseq: 2 });
  const m = await d.metrics();
  assert.strictEqual(m.sipedge_media_calls_anchored_total, 1);
  assert.strictEqual(m.sipedge_media_sessions, 0);
}));

test('CANCEL, a busy callee and a closed connection leave no session in rtpengine', () => withMedia({}, async (ctx) => {
  const { r, d, bob, phone } = ctx;
  // CANCEL while ringing
  let callId = `cancel-${rand(6)}`;
  const text = invite(phone, callId, 'pc');
  await phone.send(text);
  let inv = await bob.expectRequest('INVITE');
  bob.respond(inv, 180, 'Ringing', { toTag: 'bc' });
  await phone.next((m) => m.status_code === 180 && m.call_id === callId, 5000);
  assert.deepStrictEqual(await r.calls(), [callId]);
  const branch = /branch=([^;\s]+)/.exec(text)[1];
  await phone.send(text.replace(/^INVITE /, 'CANCEL ').replace('CSeq: 1 INVITE', 'CSeq: 1 CANCEL')
    .replace(/Content-Type: application\/sdp\r\nContent-Length: \d+\r\n\r\n[^]*$/, 'Content-Length: 0\r\n\r\n')
    .replace(/branch=[^;\s]+/, `branch=${branch}`));
  const cancel = await bob.expectRequest('CANCEL');
  bob.respond(cancel, 200, 'OK');
  bob.respond(inv, 487, 'Request Terminated', { toTag: 'bc' });
  const fin = await phone.next((m) => m.status_code === 487 && m.call_id === callId, 5000);
  assert.ok(fin, 'the caller got 487');
  assert.deepStrictEqual(await r.calls(), [], 'no session after CANCEL');

  // 486 from the callee
  callId = `busy-${rand(6)}`;
  inv = await offer(ctx, callId, 'pb');
  bob.respond(inv, 486, 'Busy Here', { toTag: 'bb' });
  assert.strictEqual((await phone.final(callId, 5000)).status_code, 486);
  assert.deepStrictEqual(await r.calls(), [], 'no session after 486');

  // the callee's connection dies mid-call
  callId = `gone-${rand(6)}`;
  inv = await offer(ctx, callId, 'pg');
  bob.respond(inv, 200, 'OK', { toTag: 'bg', body: WEBRTC_SDP });
  assert.strictEqual((await phone.final(callId, 5000)).status_code, 200);
  assert.deepStrictEqual(await r.calls(), [callId]);
  await bob.close();
  assert.deepStrictEqual(await waitNoCalls(r), [], 'no session after the connection closed');
  assert.match(d.log(), new RegExp(`media: call ${callId} ends \\(connection closed\\)`));
  assert.strictEqual((await d.metrics()).sipedge_media_sessions, 0);
}));

test('no rtpengine answers: 503 and a log line naming the call and the rtpengine', () => withMedia({ media: NG_QUICK }, async ({ r, d, bob, phone }) => {
  await r.stop();
  const callId = `down-${rand(6)}`;
  await phone.send(invite(phone, callId, 'pd'));
  const fin = await phone.final(callId, 5000);
  assert.strictEqual(fin.status_code, 503);
  assert.strictEqual(fin.reason_phrase, 'Media Relay Unavailable');
  assert.match(d.log(), new RegExp(`media: call ${callId}: rtpengine ${r.ng} failed the offer \\(no answer\\): 503`));
  await bob.expectNothing((m) => m.method === 'INVITE', 300);
  assert.strictEqual((await d.metrics()).sipedge_media_calls_refused_total, 1);
}));

test('an rtpengine that stops answering: the offer moves to the next one', () => withMedia({ engines: 2, media: NG_QUICK }, async (ctx) => {
  const { rs: [a, b], d, bob, phone } = ctx;
  let callId = `first-${rand(6)}`;
  let inv = await offer(ctx, callId, 'p1');
  assert.deepStrictEqual(await a.calls(), [callId], 'the first rtpengine takes calls while it answers');
  bob.respond(inv, 486, 'Busy Here', { toTag: 'x1' });
  await phone.final(callId, 5000);

  await a.stop();
  callId = `second-${rand(6)}`;
  await phone.send(invite(phone, callId, 'p2'));
  inv = await bob.expectRequest('INVITE', 5000);
  assert.match(inv.body, /UDP\/TLS\/RTP\/SAVPF/);
  assert.deepStrictEqual(await b.calls(), [callId], 'the second rtpengine took it');
  assert.strictEqual((await d.metrics()).sipedge_media_rtpengine_failover_total, 1);
  bob.respond(inv, 486, 'Busy Here', { toTag: 'x2' });
  await phone.final(callId, 5000);
  assert.deepStrictEqual(await b.calls(), []);
}));

test('hold and resume by re-INVITE from either side: each leg keeps its SDP, one session', () => withMedia({}, async (ctx) => {
  const { r, bob, phone } = ctx;
  const callId = `hold-${rand(6)}`;
  const { inv, ok } = await establish(ctx, callId, 'ph', 'bh');
  const webPort = mediaOf(inv.body).port;
  const plainPort = mediaOf(ok.body).port;

  // The phone holds (sendonly) and resumes (sendrecv).
  let cseq = 2;
  for (const [dir, back] of [['sendonly', 'recvonly'], ['sendrecv', 'sendrecv']]) {
    await phone.send(inDialog(phone, 'INVITE', ok, { callId, fromTag: 'ph', cseq, body: withDirection(PLAIN_SDP, dir, cseq) }));
    const re = await bob.expectRequest('INVITE');
    assertWebrtc(re.body);
    assert.strictEqual(direction(re.body), dir, re.body);
    assert.strictEqual(mediaOf(re.body).port, webPort, 'the browser leg keeps its rtpengine port');
    bob.respond(re, 200, 'OK', { body: withDirection(WEBRTC_SDP, back, cseq) });
    const reOk = await phone.next((m) => m.status_code === 200 && m.call_id === callId && m.cseq === cseq, 5000);
    assert.ok(reOk, `the phone got the 200 to its ${dir} re-INVITE`);
    assertPlain(reOk.body);
    assert.strictEqual(direction(reOk.body), back, reOk.body);
    assert.strictEqual(mediaOf(reOk.body).port, plainPort, 'the plain leg keeps its rtpengine port');
    await ack(ctx, ok, { callId, fromTag: 'ph', cseq });
    assert.deepStrictEqual(await r.calls(), [callId], 'still one session');
    cseq++;
  }

  // bob (the WebSocket side, the callee) holds: his re-INVITE goes to the phone's Contact.
  const routes = routeSet(inv, false);
  const phoneContact = /<([^>]+)>/.exec(inv.getHeader('contact'))[1];
  bob.send(bob.request({ method: 'INVITE', ruri: phoneContact, to: 'sip:phone@example.net', toTag: 'ph',
    fromTag: 'bh', callId, cseq: 1, routes, body: withDirection(WEBRTC_SDP, 'sendonly', 10) }).text);
  const re = await phone.next((m) => m.method === 'INVITE' && m.call_id === callId && !m.status_code, 5000);
  assert.ok(re, 'bob\'s re-INVITE reaches the phone');
  assertPlain(re.body);
  assert.strictEqual(direction(re.body), 'sendonly', re.body);
  assert.strictEqual(mediaOf(re.body).port, plainPort);
  await phoneRespond(phone, re, 200, 'OK', withDirection(PLAIN_SDP, 'recvonly', 10));
  const reOk = await bob.expectResponse('INVITE', 200);
  assert.match(reOk.body, /^m=audio \d+ UDP\/TLS\/RTP\/SAVPF /m, reOk.body);
  assert.match(reOk.body, /^a=fingerprint:/m);
  assert.strictEqual(direction(reOk.body), 'recvonly', reOk.body);
  assert.strictEqual(mediaOf(reOk.body).port, webPort);
  assert.deepStrictEqual(await r.calls(), [callId], 'still one session');

  await hangUp(ctx, ok, { callId, fromTag: 'ph', cseq });
}));

test('late offer: INVITE without SDP, the offer in the 200, the answer in the ACK', () => withMedia({}, async (ctx) => {
  const { r, bob, phone } = ctx;
  const callId = `late-${rand(6)}`;
  const inv = await offer(ctx, callId, 'pl', '');
  assert.strictEqual(inv.body || '', '', 'no SDP to rewrite yet');
  bob.respond(inv, 200, 'OK', { toTag: 'bl', body: WEBRTC_SDP });
  const ok = await okTo(phone, callId);
  // The offer, turned for the plain phone.
  assertPlain(ok.body);
  assertEnginePort(r, mediaOf(ok.body).port);
  assert.deepStrictEqual(await r.calls(), [callId]);

  // The answer in the ACK, turned for the browser.
  const toWeb = await ack(ctx, ok, { callId, fromTag: 'pl', cseq: 1, body: PLAIN_SDP });
  assertWebrtc(toWeb.body);
  assert.match(toWeb.body, /^a=rtcp-mux/m);
  const web = mediaOf(toWeb.body);
  assertEnginePort(r, web.port);
  assert.notStrictEqual(web.port, 40000, 'not the phone\'s own port');

  await hangUp(ctx, ok, { callId, fromTag: 'pl', cseq: 2 });
}));

// bob registered a second time, from a plain SIP phone over UDP: the INVITE forks to both.
async function registerUdp(d, user) {
  const p = await SipUdp.open({ port: d.ports.udp });
  const l = p.local;
  const callId = `reg-${rand(8)}`;
  await p.send([`REGISTER sip:example.com SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${l.port};rport;branch=z9hG4bK${rand()}`, 'Max-Forwards: 70',
    `To: <sip:${user}@example.com>`, `From: <sip:${user}@example.com>;tag=${rand(4)}`, `Call-ID: ${callId}`,
    'CSeq: 1 REGISTER', `Contact: <sip:${user}@127.0.0.1:${l.port}>`, 'Expires: 300', 'Content-Length: 0', '', ''].join('\r\n'));
  const ok = await p.final(callId, 5000);
  assert.strictEqual(ok && ok.status_code, 200, 'the UDP phone registered');
  return p;
}

// An RTP socket: what a plain phone's SDP names, counting PCMU packets by source.
async function rtpSocket() {
  const sock = require('node:dgram').createSocket('udp4');
  await new Promise((r) => sock.bind(0, '127.0.0.1', r));
  const from = new Map();
  sock.on('message', (buf, rinfo) => {
    if (buf.length >= 12 && buf[0] >> 6 === 2 && (buf[1] & 0x7f) === 0)
      from.set(rinfo.port, (from.get(rinfo.port) || 0) + 1);
  });
  let seq = 0;
  const ssrc = Math.floor(Math.random() * 0xffffffff);
  return {
    port: sock.address().port,
    received: (port) => from.get(port) || 0,
    send(port) {
      const b = Buffer.alloc(172, 0xff);
      b[0] = 0x80; b[1] = 0;
      b.writeUInt16BE(seq & 0xffff, 2); b.writeUInt32BE((seq * 160) >>> 0, 4); b.writeUInt32BE(ssrc, 8);
      seq++;
      return new Promise((r) => sock.send(b, port, '127.0.0.1', r));
    },
    close: () => new Promise((r) => sock.close(r)),
  };
}

// The parties of a call (NG query) that still hold ports in rtpengine: a deleted branch keeps
// its entry (rtpengine 10.5 forgets it with the call) but has released its sockets.
const legsWithPorts = (q) => Object.values(q.tags)
  .filter((t) => (t.medias || []).some((m) => (m.streams || []).some((st) => st['local port'])))
  .map((t) => t.tag).sort();
const sdpOnPort = (sdp, port) => sdp.replace(/^m=audio \d+/m, `m=audio ${port}`);
const inviteTo = (phone, req) => phone.next((m) => m.method === 'INVITE' && !m.status_code && m.call_id === req, 5000);

test('forking to a browser and a plain phone: each branch gets the offer for its own leg', () => withMedia({}, async (ctx) => {
  const { r, d, bob, phone, later } = ctx;
  const desk = later(await registerUdp(d, 'bob'));
  const callerRtp = later(await rtpSocket());
  const deskRtp = later(await rtpSocket());
  // 1. The desk phone (plain) answers; the browser's branch is cancelled.
  let callId = `fork-${rand(6)}`;
  await phone.send(invite(phone, callId, 'pf1', sdpOnPort(PLAIN_SDP, callerRtp.port)));
  const toWeb = await bob.expectRequest('INVITE');
  const toDesk = await inviteTo(desk, callId);
  assert.ok(toDesk, 'the desk phone got its branch');
  assertWebrtc(toWeb.body);
  assertPlain(toDesk.body);
  const webPort = mediaOf(toWeb.body).port, deskPort = mediaOf(toDesk.body).port;
  for (const p of [webPort, deskPort]) assertEnginePort(r, p);
  assert.notStrictEqual(webPort, deskPort, 'each branch has its own leg in rtpengine');
  assert.deepStrictEqual(await r.calls(), [callId], 'one call in rtpengine');
  const viaBranch = (m) => /branch=([^;\s,]+)/.exec(m.getHeader('via'))[1];
  assert.notStrictEqual(viaBranch(toWeb), viaBranch(toDesk));

  bob.respond(toWeb, 180, 'Ringing', { toTag: 'fw1' });
  await phoneRespond(desk, toDesk, 200, 'OK', sdpOnPort(PLAIN_SDP, deskRtp.port), 'fd1');
  let ok = await okTo(phone, callId, 'the caller got the desk phone\'s 200');
  assert.match(ok.body, /^m=audio \d+ RTP\/AVP /m, ok.body);
  const callerSide = mediaOf(ok.body).port;
  assertEnginePort(r, callerSide);
  const cancel = await bob.expectRequest('CANCEL');
  bob.respond(cancel, 200, 'OK');
  bob.respond(toWeb, 487, 'Request Terminated', { toTag: 'fw1' });
  await phone.send(inDialog(phone, 'ACK', ok, { callId, fromTag: 'pf1', cseq: 1 }));
  await desk.next((m) => m.method === 'ACK' && m.call_id === callId, 5000);
  // The browser's leg is gone from rtpengine; media flows between the caller and the desk phone.
  const q = await r.command({ command: 'query', 'call-id': callId });
  assert.strictEqual(q.result, 'ok');
  assert.deepStrictEqual(legsWithPorts(q), ['fd1', 'pf1'], JSON.stringify(q.tags));
  for (let i = 0; i < 25; i++) {
    await callerRtp.send(callerSide);
    await deskRtp.send(deskPort);
    await new Promise((res) => setTimeout(res, 20));
  }
  assert.ok(deskRtp.received(deskPort) > 0, 'the desk phone gets the caller\'s RTP from its rtpengine port');
  assert.ok(callerRtp.received(callerSide) > 0, 'the caller gets the desk phone\'s RTP from its rtpengine port');
  await phone.send(inDialog(phone, 'BYE', ok, { callId, fromTag: 'pf1', cseq: 2 }));
  const bye = await desk.next((m) => m.method === 'BYE' && m.call_id === callId, 5000);
  await phoneRespond(desk, bye, 200, 'OK');
  assert.ok(await phone.final(callId, 5000));
  assert.deepStrictEqual(await r.calls(), [], 'the session is gone after BYE');

  // 2. The browser answers; the desk phone's branch is cancelled, but it answers too (its 200
  // crossed the CANCEL): that second dialog passes untouched, its BYE leaves the browser's leg.
  callId = `fork2-${rand(6)}`;
  const web2 = await offer(ctx, callId, 'pf2');
  const desk2 = await inviteTo(desk, callId);
  assert.match(web2.body, /UDP\/TLS\/RTP\/SAVPF/);
  assert.match(desk2.body, /^m=audio \d+ RTP\/AVP /m);
  await phoneRespond(desk, desk2, 180, 'Ringing', '', 'fd2');
  await phone.next((m) => m.status_code === 180 && m.call_id === callId, 5000);
  bob.respond(web2, 200, 'OK', { toTag: 'fw2', body: WEBRTC_SDP });
  ok = await phone.next((m) => m.status_code === 200 && m.call_id === callId, 5000);
  assert.match(ok.body, /^m=audio \d+ RTP\/AVP /m, ok.body);
  assert.strictEqual(tagOf(ok.getHeader('to')), 'fw2');
  const c2 = await desk.next((m) => m.method === 'CANCEL' && m.call_id === callId, 5000);
  assert.ok(c2, 'the desk phone\'s branch is cancelled');
  await phoneRespond(desk, c2, 200, 'OK', '', 'fd2');
  await phoneRespond(desk, desk2, 200, 'OK', sdpOnPort(PLAIN_SDP, 40002), 'fd2');
  const second = await phone.next((m) => m.status_code === 200 && m.call_id === callId && tagOf(m.getHeader('to')) === 'fd2', 5000);
  assert.ok(second, 'the second 200 reaches the caller');
  assert.strictEqual(mediaOf(second.body).port, 40002, 'the second dialog\'s SDP passes untouched');
  await ack(ctx, ok, { callId, fromTag: 'pf2', cseq: 1 });
  await phone.send(inDialog(phone, 'ACK', second, { callId, fromTag: 'pf2', cseq: 1 }));
  await phone.send(inDialog(phone, 'BYE', second, { callId, fromTag: 'pf2', cseq: 2 }));
  const dbye = await desk.next((m) => m.method === 'BYE' && m.call_id === callId, 5000);
  await phoneRespond(desk, dbye, 200, 'OK');
  assert.strictEqual((await phone.next((m) => m.call_id === callId && m.method === 'BYE' || (m.status_code === 200 && m.cseq === 2), 5000)).status_code, 200);
  assert.deepStrictEqual(await r.calls(), [callId], 'the second dialog\'s BYE leaves the call');
  const q2 = await r.command({ command: 'query', 'call-id': callId });
  assert.deepStrictEqual(legsWithPorts(q2), ['fw2', 'pf2'], JSON.stringify(q2.tags));
  await phone.send(inDialog(phone, 'BYE', ok, { callId, fromTag: 'pf2', cseq: 3 }));
  const bye2 = await bob.expectRequest('BYE');
  bob.respond(bye2, 200, 'OK');
  assert.ok(await phone.next((m) => m.status_code === 200 && m.cseq === 3 && m.call_id === callId, 5000));
  assert.deepStrictEqual(await r.calls(), [], 'no session after BYE');

  // 3. Both say no: nothing left.
  callId = `fork3-${rand(6)}`;
  const web3 = await offer(ctx, callId, 'pf3');
  const desk3 = await inviteTo(desk, callId);
  bob.respond(web3, 486, 'Busy Here', { toTag: 'fw3' });
  await new Promise((res) => setTimeout(res, 200));
  assert.deepStrictEqual(await r.calls(), [callId], 'the desk phone\'s branch still rings');
  await phoneRespond(desk, desk3, 603, 'Decline', '', 'fd3');
  assert.strictEqual((await phone.final(callId, 5000)).status_code, 603);
  assert.deepStrictEqual(await r.calls(), [], 'no session after both branches declined');
  assert.strictEqual((await d.metrics()).sipedge_media_sessions, 0);
}));

test('Timer C and a silent callee leave no session in rtpengine', () => withMedia({ more: 'proxy = { timer_c = 1; };\n' }, async (ctx) => {
  const { r, d, bob, phone, later } = ctx;
  const desk = later(await registerUdp(d, 'bob'));
  // Both branches ring past Timer C: each is CANCELled and answers 487; the caller gets 408.
  let callId = `timerc-${rand(6)}`;
  const web = await offer(ctx, callId, 'pt1');
  const dsk = await inviteTo(desk, callId);
  bob.respond(web, 180, 'Ringing', { toTag: 'tw1' });
  await phoneRespond(desk, dsk, 180, 'Ringing', '', 'td1');
  assert.deepStrictEqual(await r.calls(), [callId]);
  const cancel = await bob.expectRequest('CANCEL', 5000);
  bob.respond(cancel, 200, 'OK');
  bob.respond(web, 487, 'Request Terminated', { toTag: 'tw1' });
  const dc = await desk.next((m) => m.method === 'CANCEL' && m.call_id === callId, 5000);
  assert.ok(dc, 'Timer C cancels the desk phone\'s branch');
  await phoneRespond(desk, dc, 200, 'OK', '', 'td1');
  await phoneRespond(desk, dsk, 487, 'Request Terminated', '', 'td1');
  assert.strictEqual((await phone.final(callId, 5000)).status_code, 408);
  assert.deepStrictEqual(await waitNoCalls(r), [], 'no session after Timer C');

  // Callees that never answer at all (no provisional): the branches end at Timer C (408).
  callId = `silent-${rand(6)}`;
  await offer(ctx, callId, 'pt2');
  await inviteTo(desk, callId);
  assert.deepStrictEqual(await r.calls(), [callId]);
  assert.strictEqual((await phone.final(callId, 5000)).status_code, 408);
  assert.deepStrictEqual(await waitNoCalls(r), [], 'no session after the transactions timed out');
  assert.match(d.log(), new RegExp(`media: call ${callId} ends \\(no call\\)`));
  assert.strictEqual((await d.metrics()).sipedge_media_sessions, 0);
}));

test('a WebSocket dropped without a close mid-call (callee or caller) leaves no session', () => withMedia({}, async (ctx) => {
  const { r, d, bob, later } = ctx;
  // The browser callee's socket is destroyed (no close frame) during the call.
  let callId = `drop-${rand(6)}`;
  await establish(ctx, callId, 'pk1', 'bk1');
  assert.deepStrictEqual(await r.calls(), [callId]);
  bob.ws.terminate();
  assert.deepStrictEqual(await waitNoCalls(r), [], 'no session after the callee\'s connection died');
  assert.match(d.log(), new RegExp(`media: call ${callId} ends \\(connection closed\\)`));

  // A browser caller's socket dies mid-call: the phone it called keeps nothing either.
  const alice = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}`, { user: 'alice', domain: 'example.com' });
  assert.strictEqual((await alice.register()).status_code, 200);
  const desk = later(await registerUdp(d, 'carol'));
  callId = `drop2-${rand(6)}`;
  alice.send(alice.request({ method: 'INVITE', ruri: 'sip:carol@example.com', to: 'sip:carol@example.com',
    fromTag: 'ak2', callId, cseq: 1, body: WEBRTC_SDP.replace('a=setup:active', 'a=setup:actpass') }).text);
  const inv = await inviteTo(desk, callId);
  assert.ok(inv, 'the desk phone got the browser\'s call');
  assert.match(inv.body, /^m=audio \d+ RTP\/AVP /m, inv.body);
  await phoneRespond(desk, inv, 200, 'OK', PLAIN_SDP, 'ck2');
  const ok = await alice.expectResponse('INVITE', 200);
  assert.match(ok.body, /UDP\/TLS\/RTP\/SAVPF/);
  assert.deepStrictEqual(await r.calls(), [callId]);
  alice.ws._socket.destroy();
  assert.deepStrictEqual(await waitNoCalls(r), [], 'no session after the caller\'s connection died');
  assert.strictEqual((await d.metrics()).sipedge_media_sessions, 0);
}));

test('rtpengine fails the callee\'s 200: refuse ends the call on both legs, unanchored passes it on', async () => {
  for (const policy of ['refuse', 'unanchored']) {
    await withMedia({ media: `${NG_QUICK} on_failure = "${policy}";` }, async (ctx) => {
      const { r, d, bob, phone } = ctx;
      const callId = `ans-${policy}-${rand(6)}`;
      const inv = await offer(ctx, callId, 'pa');
      assert.match(inv.body, /UDP\/TLS\/RTP\/SAVPF/);
      await r.stop(); // the answer will find nobody
      bob.respond(inv, 200, 'OK', { toTag: 'ba', body: WEBRTC_SDP });
      const fin = await phone.final(callId, 5000);
      if (policy === 'refuse') {
        assert.strictEqual(fin.status_code, 503);
        assert.strictEqual(fin.reason_phrase, 'Media Relay Unavailable');
        const ack = await bob.expectRequest('ACK');
        assert.strictEqual(tagOf(ack.getHeader('to')), 'ba');
        assert.strictEqual(ack.getHeader('cseq'), '1 ACK');
        const bye = await bob.expectRequest('BYE');
        assert.strictEqual(tagOf(bye.getHeader('to')), 'ba');
        assert.strictEqual(tagOf(bye.getHeader('from')), 'pa');
        assert.match(bye.getHeader('reason'), /cause=503/);
        bob.respond(bye, 200, 'OK');
        assert.match(d.log(), new RegExp(`media: call ${callId}: rtpengine ${r.ng} failed the answer \\(no answer\\): 503`));
        assert.match(d.log(), new RegExp(`proxy: call ${callId}: the callee's 200 could not be anchored: 503 to the caller, ACK and BYE to the callee`));
        assert.strictEqual((await d.metrics()).sipedge_media_answers_refused_total, 1);
        assert.strictEqual(await phone.next((m) => m.status_code === 200 && m.call_id === callId, 300), null,
          'the callee\'s 200 never reaches the caller');
      } else {
        assert.strictEqual(fin.status_code, 200);
        assert.strictEqual(mediaOf(fin.body).port, 41000, 'the callee\'s own SDP');
        assert.match(d.log(), new RegExp(`media: call ${callId}: rtpengine ${r.ng} failed the answer \\(no answer\\): going on unanchored`));
        await bob.expectNothing((m) => m.method === 'BYE', 300);
      }
      assert.strictEqual((await d.metrics()).sipedge_media_sessions, 0);
    });
  }
});

test('a next hop looked up in DNS at call time is anchored too', async () => {
  const { startDns } = require('../lib/dnsmasq');
  const r = await startRtpengine();
  const dns = await startDns(['--host-record=edge.far.test,127.0.0.1']);
  const peer = await SipUdp.open({ port: 1 });
  const d = await startDaemon({
    listen: ['ws:127.0.0.1:0', 'udp:127.0.0.1:0'], args: ['--no-auth'],
    config: `http = { web_root = ""; };\nauth = { trusted_peers = [ "127.0.0.0/8" ]; };\n` +
      `routing = { resolv_conf = "${dns.conf}"; };\nmedia = { rtpengine = [ "${r.ng}" ]; };\n`,
  });
  peer.port = d.ports.udp; // where its responses go
  const alice = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}`, { user: 'alice', domain: 'example.com' });
  try {
    assert.strictEqual((await alice.register()).status_code, 200);
    const callId = `dns-${rand(6)}`;
    alice.send(alice.request({ method: 'INVITE', ruri: 'sip:bob@far.test', to: 'sip:bob@far.test', fromTag: 'ad',
      callId, cseq: 1, headers: [`Route: <sip:edge.far.test:${peer.local.port};lr>`],
      body: WEBRTC_SDP.replace('a=setup:active', 'a=setup:actpass') }).text);
    const inv = await peer.next((m) => m.method === 'INVITE' && m.call_id === callId, 5000);
    assert.ok(inv, 'the INVITE reached the host the name stands for');
    assertPlain(inv.body);
    assertEnginePort(r, mediaOf(inv.body).port);
    assert.deepStrictEqual(await r.calls(), [callId]);
    await phoneRespond(peer, inv, 486, 'Busy Here', '', 'pd');
    assert.strictEqual((await alice.expectResponse('INVITE', 486, 5000)).status_code, 486);
    assert.deepStrictEqual(await waitNoCalls(r), [], 'no session after 486');
  } finally {
    await alice.close();
    await peer.close();
    await d.stop();
    await dns.stop();
    await r.stop();
  }
});
