'use strict';
// Hostile input: malformed SIP over UDP and WebSocket, and malformed WebSocket traffic over raw
// TCP. Every message gets its defined answer (or, where none can be sent, silence), the daemon
// keeps serving, a binding registered before the barrage is still there afterwards, and the
// sanitizers stay quiet (d.stop() fails on any report).
const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const crypto = require('node:crypto');
const { startDaemon } = require('../lib/daemon');
const { SipWs, rand } = require('../lib/sipws');
const { SipUdp } = require('../lib/sipudp');

const DOMAIN = 'example.com';
const CONFIG = 'web_root = "";\nlimits = { requests_per_second = 0; };\nwebsocket = { handshake_timeout = 2; };\n';

// A well-formed OPTIONS to us with this Via; each case bends it.
function baseRequest(via, opts = {}) {
  const method = opts.method || 'OPTIONS';
  const ruri = opts.ruri || `sip:${DOMAIN}`;
  return [
    `${method} ${ruri} SIP/2.0`,
    `Via: ${via};branch=z9hG4bK${rand()}`,
    'Max-Forwards: 70',
    `To: <sip:${DOMAIN}>`,
    `From: <sip:mallory@${DOMAIN}>;tag=${rand(4)}`,
    `Call-ID: ${rand(10)}`,
    `CSeq: 1 ${method}`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

const swap = (name, value) => (t) => t.replace(new RegExp(`^${name}:.*$`, 'm'), value);
const drop = (name) => (t) => t.replace(new RegExp(`^${name}:.*\\r\\n`, 'm'), '');
const add = (after, line) => (t) => t.replace(new RegExp(`^(${after}:.*\\r\\n)`, 'm'), `$1${line}\r\n`);
const vias = (n) => Array.from({ length: n }, (_, i) => `Via: SIP/2.0/UDP 192.0.2.${i % 250 + 1}:5060;branch=z9hG4bK${i}hop`).join('\r\n');

// [name, bend, expected status (null: no answer), reason pattern, request options]
const CORPUS = [
  ['missing From', drop('From'), 400, /Missing From/],
  ['missing To', drop('To'), 400, /Missing To/],
  ['missing Call-ID', drop('Call-ID'), 400, /Missing Call-ID/],
  ['missing CSeq', drop('CSeq'), 400, /Missing CSeq/],
  ['missing Via', drop('Via'), null],
  ['duplicate From', add('From', `From: <sip:eve@${DOMAIN}>;tag=x`), 400, /Duplicate From/],
  ['duplicate To', add('To', '<sip:eve@example.com>'.replace(/^/, 'To: ')), 400, /Duplicate To/],
  ['duplicate Call-ID', add('Call-ID', 'Call-ID: second'), 400, /Duplicate Call-ID/],
  ['duplicate CSeq', add('CSeq', 'CSeq: 7 OPTIONS'), 400, /Duplicate CSeq/],
  ['duplicate Max-Forwards', add('Max-Forwards', 'Max-Forwards: 3'), 400, /Duplicate Max-Forwards/],
  ['CSeq number not a number', swap('CSeq', 'CSeq: abc OPTIONS'), 400, /Malformed CSeq/],
  ['CSeq number out of range', swap('CSeq', 'CSeq: 4294967296 OPTIONS'), 400, /CSeq/],
  ['CSeq method differs', swap('CSeq', 'CSeq: 1 INVITE'), 400, /CSeq method/],
  ['negative Content-Length', swap('Content-Length', 'Content-Length: -5'), 400, /Malformed Content-Length/],
  ['Content-Length not a number', swap('Content-Length', 'Content-Length: ten'), 400, /Malformed Content-Length/],
  ['Content-Length beyond the body', swap('Content-Length', 'Content-Length: 500'), 400, /Body shorter than Content-Length/],
  ['NUL byte in a header', swap('Max-Forwards', 'Max-Forwards: 70\r\nSubject: a\0b'), 400, /NUL byte/],
  ['huge header', add('Call-ID', `X-Huge: ${'a'.repeat(40000)}`), 513, /Message Too Large/],
  ['70 Via hops and Max-Forwards 0', (t) => add('Via', vias(69))(swap('Max-Forwards', 'Max-Forwards: 0')(t)), 483, /Too Many Hops/, { ruri: `sip:bob@${DOMAIN}` }],
  ['71 Via hops', add('Via', vias(70)), 483, /Too many Via/],
  ['long Record-Route within limits', add('Call-ID', `Record-Route: ${Array.from({ length: 300 }, (_, i) => `<sip:h${i}.example.net;lr>`).join(', ')}`), 200, /OK/],
  ['very long Record-Route', add('Call-ID', `Record-Route: ${Array.from({ length: 2000 }, (_, i) => `<sip:h${i}.example.net;lr>`).join(', ')}`), 513, /Message Too Large/],
  ['Record-Route that does not parse', add('Call-ID', 'Record-Route: <sip:a;lr, <<<'), 400, /Malformed Route|Malformed Record-Route/],
  ['Request-URI of another scheme', (t) => t, 416, /Unsupported URI Scheme/, { ruri: 'http://example.com/x' }],
  ['Request-URI that does not parse', (t) => t, 400, /Malformed Request-URI/, { ruri: 'sip:@@:::' }],
  ['Request-URI with LWS inside (RFC 4475 §3.1.2.8)', (t) => t, 400, /Malformed Request-URI/, { ruri: 'sip:bob@example.com; lr' }],
  ['Via that does not parse (RFC 4475 §3.1.2.1)', (t) => t.replace(/^(Via: [^;\r]*)/m, '$1;;,;,,'), 400, /Malformed Via header/],
  ['NUL inside a quoted-pair', swap('To', 'To: "a\\\0b" <sip:example.com>'), 200, /OK/],
  ['From URI that does not parse', swap('From', 'From: "unterminated <sip:a@example.com>;tag=1'), 400, /Malformed From/],
  ['Contact that does not parse', add('Call-ID', 'Contact: <sip:a@b;;;>>>'), 400, /Malformed Contact/],
  ['SIP version 3.0', (t) => t.replace(/ SIP\/2\.0\r\n/, ' SIP/3.0\r\n'), 505, /Version Not Supported/],
  ['unknown method to us', (t) => t, 501, /Not Implemented/, { method: 'BREW' }],
  ['request line only', () => 'OPTIONS sip:example.com SIP/2.0\r\n\r\n', null],
  ['not SIP at all', () => 'GET / HTTP/1.0\r\n\r\n', null],
];

async function registerAlice(d) {
  const alice = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}/`, { user: 'alice', domain: DOMAIN });
  assert.equal((await alice.register({ expires: 3600 })).status_code, 200);
  return alice;
}

// A query REGISTER (no Contact) lists the AOR's bindings.
async function bindingsOf(ua) {
  const { text } = ua.request({ method: 'REGISTER', ruri: `sip:${DOMAIN}`, to: ua.aor, callId: ua.regCallId, cseq: ++ua.regCseq });
  ua.send(text.replace(/^Contact: .*\r\n/m, ''));
  const r = await ua.expectResponse('REGISTER');
  assert.equal(r.status_code, 200);
  return r.getHeaders('contact');
}

async function assertServing(d, alice) {
  const probe = await SipUdp.open({ port: d.ports.udp });
  const { text, callId } = probe.request({ method: 'OPTIONS' });
  await probe.send(text);
  const r = await probe.final(callId);
  await probe.close();
  assert.equal(r && r.status_code, 200, 'OPTIONS is still answered');
  const contacts = await bindingsOf(alice);
  assert.equal(contacts.length, 1, 'the binding registered before is still there');
  assert.ok(contacts[0].includes(alice.contactUri));
}

// A daemon for one test, with alice registered before the hostile traffic starts.
async function setup(t) {
  const d = await startDaemon({ listen: ['ws:127.0.0.1:0', 'udp:127.0.0.1:0'], domains: [DOMAIN], args: ['--no-auth'], config: CONFIG });
  t.after(() => d.stop());
  const alice = await registerAlice(d);
  t.after(() => alice.ws.terminate());
  return { d, alice };
}

// r is the final answer a corpus case got (null: none): the one it must get.
function assertAnswer(name, r, status, reason) {
  if (status === null) {
    assert.equal(r, null, `${name}: no answer expected, got ${r && r.status_code}`);
    return;
  }
  assert.ok(r, `${name}: no answer`);
  assert.equal(r.status_code, status, `${name}: ${r.status_code} ${r.reason_phrase}`);
  assert.match(r.reason_phrase, reason, name);
}

test('malformed SIP over UDP: each message gets its defined answer', async (t) => {
  const { d, alice } = await setup(t);
  const peer = await SipUdp.open({ port: d.ports.udp });
  t.after(() => peer.close());
  const via = `SIP/2.0/UDP 127.0.0.1:${peer.local.port};rport`;
  for (const [name, bend, status, reason, opts] of CORPUS) {
    await peer.send(bend(baseRequest(via, opts)));
    const r = await peer.next((m) => m.status_code >= 200, status === null ? 800 : 3000);
    assertAnswer(name, r, status, reason);
  }
  await assertServing(d, alice);
});

test('malformed SIP over WebSocket: the same answers on the connection, which stays open', async (t) => {
  const { d, alice } = await setup(t);
  const mallory = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}/`, { user: 'mallory', domain: DOMAIN });
  t.after(() => mallory.ws.terminate());
  const via = `SIP/2.0/WS ${rand(4)}.invalid`;
  for (const [name, bend, status, reason, opts] of CORPUS) {
    if (name === 'huge header') continue; // a WebSocket message that big closes with 1009 (below)
    mallory.send(bend(baseRequest(via, opts)));
    let r = null;
    try {
      r = await mallory.expect((m) => m.status_code >= 200, name, status === null ? 800 : 3000);
    } catch (e) {
      if (!/timed out/.test(e.message)) throw e;
    }
    assertAnswer(name, r, status, reason);
  }
  assert.equal(mallory.ws.readyState, 1, 'the connection stays open');
  await assertServing(d, alice);
});

test('an unknown method to a user is proxied to that user', async (t) => {
  const { d, alice } = await setup(t);
  const peer = await SipUdp.open({ port: d.ports.udp });
  t.after(() => peer.close());
  const { text, callId } = peer.request({ method: 'BREW', ruri: `sip:alice@${DOMAIN}`, user: 'mallory' });
  await peer.send(text);
  const req = await alice.expectRequest('BREW');
  alice.respond(req, 501, 'Not Implemented');
  const r = await peer.final(callId);
  assert.equal(r && r.status_code, 501);
});

/* ---- malformed WebSocket traffic over raw TCP ------------------------------------------- */

function frame(opcode, payload, { mask = true, fin = true, len } = {}) {
  payload = Buffer.from(payload);
  const n = len ?? payload.length;
  let hdr;
  if (n < 126) { hdr = Buffer.alloc(2); hdr[1] = n; }
  else if (n < 65536) { hdr = Buffer.alloc(4); hdr[1] = 126; hdr.writeUInt16BE(n, 2); }
  else { hdr = Buffer.alloc(10); hdr[1] = 127; hdr.writeBigUInt64BE(BigInt(n), 2); }
  hdr[0] = (fin ? 0x80 : 0) | opcode;
  if (!mask) return Buffer.concat([hdr, payload]);
  hdr[1] |= 0x80;
  const key = crypto.randomBytes(4);
  return Buffer.concat([hdr, key, Buffer.from(payload.map((b, i) => b ^ key[i % 4]))]);
}

const UPGRADE = () => 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
  'Sec-WebSocket-Protocol: sip\r\n\r\n';

// A raw connection after a real handshake: { s, rest } (bytes after the 101 headers).
function rawWebSocket(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(UPGRADE()));
    let buf = Buffer.alloc(0);
    const onData = (b) => {
      buf = Buffer.concat([buf, b]);
      const i = buf.indexOf('\r\n\r\n');
      if (i < 0) return;
      s.off('data', onData);
      assert.match(buf.slice(0, i).toString(), /^HTTP\/1\.1 101 /);
      resolve({ s, rest: buf.slice(i + 4) });
    };
    s.on('data', onData);
    s.on('error', reject);
  });
}

// Wait for the server's close frame (answering it as a client would) and the end of the
// connection; resolves { code, closed } where code is the close status or null.
function serverClose(s, rest, ms) {
  return new Promise((resolve) => {
    let buf = rest;
    let code = null;
    let answered = false;
    const timer = setTimeout(() => resolve({ code, closed: false }), ms);
    const look = () => {
      if (!answered && buf.length >= 2 && (buf[0] & 0x0f) === 8) {
        code = buf.length >= 4 && (buf[1] & 0x7f) >= 2 ? buf.readUInt16BE(2) : null;
        answered = true;
        if (!s.destroyed) s.write(frame(8, code ? buf.slice(2, 4) : Buffer.alloc(0)));
      }
    };
    look();
    s.on('data', (b) => { buf = Buffer.concat([buf, b]); look(); });
    s.on('error', () => {});
    s.on('close', () => { clearTimeout(timer); resolve({ code, closed: true }); });
  });
}

const WS_CORPUS = [
  ['reserved data opcode 0x3', frame(0x3, 'x'), 1002],
  ['reserved control opcode 0xB', frame(0xB, 'x'), 1002],
  ['fragmented control frame', frame(0x9, 'x', { fin: false }), 1002],
  ['RSV bits without an extension', (() => { const f = frame(0x1, 'x'); f[0] |= 0x40; return f; })(), 1002],
  ['continuation with nothing to continue', frame(0x0, 'x'), 1002],
  ['message over the size limit', frame(0x2, Buffer.alloc(70000, 0x41)), 1009],
  ['frame header announcing a terabyte', frame(0x2, Buffer.alloc(16, 0x41), { len: 2 ** 40 }), 1009],
  ['invalid UTF-8 in a text frame', frame(0x1, Buffer.from('OPTIONS \xc3\x28', 'latin1')), 1007],
  ['close with code 999', frame(0x8, Buffer.from([0x03, 0xe7])), 1002],
  ['close with reserved code 1005', frame(0x8, Buffer.from([0x03, 0xed])), 1002],
];

test('malformed WebSocket frames: each gets its close code, other clients are served', async (t) => {
  const { d, alice } = await setup(t);
  // All at once: after its close frame lws may wait up to 5 s for the peer's (a frame that
  // announced a terabyte swallows ours as payload).
  const results = await Promise.all(WS_CORPUS.map(async ([name, bytes]) => {
    const { s, rest } = await rawWebSocket(d.ports.ws);
    s.write(bytes);
    const r = await serverClose(s, rest, 7000);
    s.destroy();
    return r;
  }));
  WS_CORPUS.forEach(([name, , code], i) => {
    assert.equal(results[i].code, code, `${name}: close code`);
    assert.ok(results[i].closed, `${name}: connection closed`);
  });
  await assertServing(d, alice);
});

// RFC 6455 §5.1: the server closes on any frame the client did not mask. Debian 12's
// libwebsockets 4.1.6 needs packaging/libwebsockets/ for this (tools/install-libwebsockets).
const UNMASKED = [
  ['an unmasked text frame', frame(0x1, 'OPTIONS', { mask: false })],
  ['an unmasked empty binary frame', frame(0x2, '', { mask: false })],
  ['an unmasked ping', frame(0x9, 'x', { mask: false })],
  ['an unmasked close', frame(0x8, Buffer.from([0x03, 0xe8]), { mask: false })],
  ['a masked first fragment, then an unmasked continuation',
    Buffer.concat([frame(0x1, 'OPTIONS ', { fin: false }), frame(0x0, 'sip:x SIP/2.0', { mask: false })])],
  ['a masked frame, then an unmasked one', Buffer.concat([frame(0xA, 'pong'), frame(0x1, 'x', { mask: false })])],
];

test('unmasked client frames are closed with 1002, their requests unanswered', async (t) => {
  const d = await startDaemon({ listen: ['ws:127.0.0.1:0', 'udp:127.0.0.1:0'], domains: [DOMAIN], args: ['--no-auth'], config: CONFIG });
  t.after(() => d.stop());
  assert.equal((await d.metrics()).sipedge_ws_unmasked_frames_refused, 1,
    'the libwebsockets in use refuses unmasked frames (tools/install-libwebsockets)');
  const alice = await registerAlice(d);
  t.after(() => alice.ws.terminate());

  // A whole SIP request in an unmasked frame: never parsed, never answered.
  {
    const { s, rest } = await rawWebSocket(d.ports.ws);
    let seen = rest;
    s.on('data', (b) => { seen = Buffer.concat([seen, b]); });
    s.write(frame(0x1, baseRequest(`SIP/2.0/WS ${rand(4)}.invalid`), { mask: false }));
    const r = await serverClose(s, rest, 7000);
    s.destroy();
    assert.equal(r.code, 1002, 'unmasked SIP request: close code');
    assert.ok(r.closed, 'unmasked SIP request: connection closed');
    assert.doesNotMatch(seen.toString('latin1'), /SIP\/2\.0 \d{3}/, 'unmasked SIP request was answered');
  }
  const results = await Promise.all(UNMASKED.map(async ([, bytes]) => {
    const { s, rest } = await rawWebSocket(d.ports.ws);
    s.write(bytes);
    const r = await serverClose(s, rest, 7000);
    s.destroy();
    return r;
  }));
  UNMASKED.forEach(([name], i) => {
    assert.equal(results[i].code, 1002, `${name}: close code`);
    assert.ok(results[i].closed, `${name}: connection closed`);
  });
  await assertServing(d, alice);
});

test('slowloris: a handshake trickled byte by byte is closed after websocket.handshake_timeout', async (t) => {
  const { d, alice } = await setup(t);
  const s = net.connect(d.ports.ws, '127.0.0.1');
  s.on('error', () => {});
  const started = Date.now();
  const closed = new Promise((resolve) => s.on('close', () => resolve(Date.now() - started)));
  const text = UPGRADE();
  let i = 0;
  const trickle = setInterval(() => { if (i < text.length - 4 && !s.destroyed) s.write(text[i++]); }, 200);
  t.after(() => clearInterval(trickle));
  // Meanwhile others are served.
  await assertServing(d, alice);
  const after = await Promise.race([closed, new Promise((r) => setTimeout(() => r(null), 8000))]);
  clearInterval(trickle);
  assert.ok(after !== null, 'the trickling connection is closed');
  assert.ok(after >= 1500 && after < 6000, `closed after ${after} ms (handshake_timeout 2 s)`);
  assert.ok(i < text.length - 4, 'before the handshake could complete');
  await assertServing(d, alice);
});
