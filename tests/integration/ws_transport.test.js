'use strict';
// The WebSocket transport (RFC 6455, RFC 7118) driven by a raw WebSocket client: the handshake
// rules, framing, size limit, pings, keep-alives, WSS, IPv6 and the HTTP endpoints on the same port.
const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const WebSocket = require('ws');
const { startDaemon } = require('../lib/daemon');
const { SipWs, rand, handshake } = require('../lib/sipws');
const { until } = require('../lib/until');

const DOMAIN = 'example.com';


function optionsRequest(ua) {
  return ua.request({ method: 'OPTIONS', ruri: `sip:${DOMAIN}`, to: `sip:${DOMAIN}` }).text;
}

// A raw WebSocket with the sip subprotocol, once open: for what SipWs would not send.
async function openSip(port, options) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, 'sip', options);
  await new Promise((resolve) => ws.once('open', resolve));
  return ws;
}

function closed(ws) {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

function httpGet(url) {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let body = '';
      res.on('data', (b) => { body += b; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    }).on('error', reject);
  });
}

async function stillServes(port, host = '127.0.0.1') {
  const ua = await SipWs.connect(`ws://${host}:${port}/`, { user: 'probe', domain: DOMAIN });
  ua.send(optionsRequest(ua));
  const r = await ua.expectResponse('OPTIONS');
  assert.equal(r.status_code, 200);
  await ua.close();
}

test('handshake: sip is required and echoed; no or another subprotocol gets HTTP 400 with a reason', async (t) => {
  const d = await startDaemon({ domains: [DOMAIN], args: ['--no-auth'] });
  t.after(() => d.stop());
  const url = `ws://127.0.0.1:${d.ports.ws}/`;

  const none = await handshake(url, undefined);
  assert.equal(none.status, 400);
  assert.match(none.body, /Sec-WebSocket-Protocol: sip is required/);

  const other = await handshake(url, ['chat']);
  assert.equal(other.status, 400);
  assert.match(other.body, /only the sip WebSocket subprotocol/);

  const ok = await handshake(url, ['chat', 'sip']);
  assert.ok(ok.ws, 'handshake with sip among the offers succeeds');
  assert.equal(ok.ws.protocol, 'sip');
  ok.ws.close();

  const metrics = await httpGet(`http://127.0.0.1:${d.ports.ws}/metrics`);
  assert.match(metrics.body, /^sipedge_ws_handshake_rejected_total 2$/m);
});

test('Origin allowlist: a listed Origin is accepted, another gets 403', async (t) => {
  const d = await startDaemon({
    domains: [DOMAIN], args: ['--no-auth'],
    config: 'http = { web_root = ""; };\nwebsocket = { origins = [ "https://phone.example.com" ]; };\n',
  });
  t.after(() => d.stop());
  const url = `ws://127.0.0.1:${d.ports.ws}/`;
  const bad = await handshake(url, ['sip'], { origin: 'https://evil.example.net' });
  assert.equal(bad.status, 403);
  const good = await handshake(url, ['sip'], { origin: 'https://phone.example.com' });
  assert.ok(good.ws);
  good.ws.close();
});

test('one SIP message per WebSocket message: text, binary and fragmented messages are answered', async (t) => {
  const d = await startDaemon({ domains: [DOMAIN], args: ['--no-auth'] });
  t.after(() => d.stop());
  const ua = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}/`, { user: 'alice', domain: DOMAIN });
  t.after(() => ua.close());

  ua.send(optionsRequest(ua));
  const text = await ua.expectResponse('OPTIONS');
  assert.equal(text.status_code, 200);
  assert.match(text.getHeader('allow'), /INVITE/);

  // Three fragments (continuation frames) make one message.
  const msg = optionsRequest(ua);
  const a = Math.floor(msg.length / 3);
  ua.ws.send(msg.slice(0, a), { fin: false });
  ua.ws.send(msg.slice(a, 2 * a), { fin: false });
  ua.ws.send(msg.slice(2 * a), { fin: true });
  const frag = await ua.expectResponse('OPTIONS');
  assert.equal(frag.status_code, 200);

  // A binary message is answered in a binary message.
  const gotBinary = new Promise((resolve) => ua.ws.once('message', (data, isBinary) => resolve(isBinary)));
  ua.ws.send(Buffer.from(optionsRequest(ua)), { binary: true });
  assert.equal(await gotBinary, true);
  assert.equal((await ua.expectResponse('OPTIONS')).status_code, 200);
});

test('a message over the size limit closes with 1009; other connections keep working', async (t) => {
  const d = await startDaemon({
    domains: [DOMAIN], args: ['--no-auth'], config: 'http = { web_root = ""; };\nwebsocket = { max_message_size = 8192; };\n',
  });
  t.after(() => d.stop());
  const ua = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}/`, { user: 'alice', domain: DOMAIN });
  const done = closed(ua.ws);
  const big = ua.request({ method: 'MESSAGE', ruri: `sip:bob@${DOMAIN}`, body: 'x'.repeat(9000) }).text;
  ua.send(big);
  const { code } = await done;
  assert.equal(code, 1009);
  await stillServes(d.ports.ws);
  const metrics = await httpGet(`http://127.0.0.1:${d.ports.ws}/metrics`);
  assert.match(metrics.body, /^sipedge_ws_oversize_total 1$/m);
});

test('a peer that stops reading is closed with 1008 once 1 MiB waits for it; the others keep working', async (t) => {
  const d = await startDaemon({ domains: [DOMAIN], args: ['--no-auth'] });
  t.after(() => d.stop());
  const url = `ws://127.0.0.1:${d.ports.ws}/`;
  const slow = await SipWs.connect(url, { user: 'slow', domain: DOMAIN });
  assert.equal((await slow.register()).status_code, 200);
  const sender = await SipWs.connect(url, { user: 'sender', domain: DOMAIN });
  const gone = closed(slow.ws);
  slow.ws._socket.pause(); // the kernel's buffers fill, then the daemon's queue
  // 45 MESSAGEs of 40 kB: about 1.8 MB for a peer that reads nothing, within the default burst.
  const body = 'x'.repeat(40000);
  for (let i = 0; i < 45; i++)
    sender.send(sender.request({ method: 'MESSAGE', ruri: slow.aor, body }).text);
  await until('the daemon gives up on the peer', async () => (await d.metrics()).sipedge_ws_send_queue_full_total === 1);
  assert.match(d.log(), /ws: flow \d+ from 127\.0\.0\.1:\d+ is not reading \(\d+ bytes queued\): closing/);
  // What the kernel held arrives, then the end. The close frame (1008) is written only if the
  // socket has room for it when the daemon gives up, and a peer that reads nothing has left it
  // none: the connection ends without one (1006) unless the peer had begun reading again.
  slow.ws._socket.resume();
  const { code } = await gone;
  assert.ok(code === 1006 || code === 1008, `closed with ${code}`);
  const got = slow.raw.filter((m) => m.startsWith('MESSAGE ')).length;
  assert.ok(got > 0 && got < 45, `${got} of 45 MESSAGEs reached the peer: the rest was dropped, not buffered`);
  // The sender and newcomers are still served.
  sender.send(optionsRequest(sender));
  assert.equal((await sender.expectResponse('OPTIONS')).status_code, 200);
  await stillServes(d.ports.ws);
  await sender.close();
});

test('garbage is answered 400 or closed, and the daemon keeps serving', async (t) => {
  const d = await startDaemon({ domains: [DOMAIN], args: ['--no-auth'] });
  t.after(() => d.stop());
  for (const junk of ['hello there\r\n\r\n', '\x00\x01\x02 SIP/2.0', 'INVITE\r\n\r\n',
    'SIP/2.0 200 OK\r\n\r\n', `OPTIONS sip:${DOMAIN} SIP/2.0\r\nVia: SIP/2.0/WS x.invalid\r\n\r\n`]) {
    const ws = await openSip(d.ports.ws);
    const outcome = new Promise((resolve) => {
      ws.once('message', (data) => resolve(data.toString()));
      ws.once('close', (code) => resolve(`closed ${code}`));
      setTimeout(() => resolve('silence'), 1500);
    });
    ws.send(junk);
    const got = await outcome;
    // A request-like message gets 400; what cannot be answered is dropped or closed.
    assert.ok(/^SIP\/2\.0 400 /.test(got) || /^closed/.test(got) || got === 'silence', `reply to ${JSON.stringify(junk)}: ${got}`);
    ws.close();
  }
  await stillServes(d.ports.ws);
});

test('a request with a bad header gets 400 with a reason that says what is wrong', async (t) => {
  const d = await startDaemon({ domains: [DOMAIN], args: ['--no-auth'] });
  t.after(() => d.stop());
  const ua = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}/`, { user: 'alice', domain: DOMAIN });
  t.after(() => ua.close());
  const text = optionsRequest(ua).replace(/CSeq: 1 OPTIONS/, 'CSeq: 1 INVITE');
  ua.send(text);
  const r = await ua.expectResponse('INVITE').catch(() => ua.expectResponse('OPTIONS'));
  assert.equal(r.status_code, 400);
  assert.match(r.reason_phrase, /CSeq/i);
});

test('CRLFCRLF keep-alive is answered with CRLF', async (t) => {
  const d = await startDaemon({ domains: [DOMAIN], args: ['--no-auth'] });
  t.after(() => d.stop());
  const ws = await openSip(d.ports.ws);
  const reply = new Promise((resolve) => ws.once('message', (data) => resolve(data.toString())));
  ws.send('\r\n\r\n');
  assert.equal(await reply, '\r\n');
  ws.close();
});

test('server pings: a client that answers stays, one that does not is closed', async (t) => {
  const d = await startDaemon({
    domains: [DOMAIN], args: ['--no-auth'], config: 'http = { web_root = ""; };\nwebsocket = { ping_interval = 1; pong_timeout = 1; };\n',
  });
  t.after(() => d.stop());
  const url = `ws://127.0.0.1:${d.ports.ws}/`;
  const good = new WebSocket(url, 'sip');
  const bad = new WebSocket(url, 'sip', { autoPong: false });
  let goodPings = 0;
  good.on('ping', () => { goodPings++; });
  const badClosed = closed(bad);
  await Promise.all([good, bad].map((ws) => new Promise((resolve) => ws.once('open', resolve))));
  const { code, reason } = await badClosed;
  assert.equal(code, 1001);
  assert.equal(reason, 'ping timeout');
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.ok(goodPings >= 2, `pings seen: ${goodPings}`);
  assert.equal(good.readyState, WebSocket.OPEN);
  good.close();
  const metrics = await httpGet(`http://127.0.0.1:${d.ports.ws}/metrics`);
  assert.match(metrics.body, /^sipedge_ws_ping_timeout_total 1$/m);
});

test('invalid UTF-8 in a text frame closes with 1007', async (t) => {
  const d = await startDaemon({ domains: [DOMAIN], args: ['--no-auth'] });
  t.after(() => d.stop());
  const ws = await openSip(d.ports.ws);
  const done = closed(ws);
  ws.send(Buffer.from([0x4f, 0x50, 0xc3, 0x28, 0xff]), { binary: false });
  assert.equal((await done).code, 1007);
  await stillServes(d.ports.ws);

  // Deep in a message, past long runs of ASCII, and in a frame of a fragmented message: the
  // same. A sequence cut by the end of the message is invalid too.
  const cases = [
    Buffer.concat([Buffer.from('OPTIONS sip:x SIP/2.0\r\n'.repeat(20)), Buffer.from([0xe2, 0x28, 0xa1])]),
    Buffer.concat([Buffer.from('x'.repeat(61)), Buffer.from([0xf0, 0x9f, 0x98])]),
  ];
  for (const bad of cases) {
    const w = await openSip(d.ports.ws);
    const gone = closed(w);
    w.send(bad, { binary: false });
    assert.equal((await gone).code, 1007);
  }
  const frag = await openSip(d.ports.ws);
  const fragGone = closed(frag);
  frag.send(Buffer.from('y'.repeat(40)), { binary: false, fin: false });
  frag.send(Buffer.concat([Buffer.from('z'.repeat(17)), Buffer.from([0xc3])]), { binary: false, fin: false });
  frag.send(Buffer.from([0x41]), { binary: false, fin: true }); // 0xc3 then "A": not a sequence
  assert.equal((await fragGone).code, 1007);
  await stillServes(d.ports.ws);
});

test('UTF-8 in a text frame, past long ASCII and split across fragments, is read and answered', async (t) => {
  const d = await startDaemon({ domains: [DOMAIN], args: ['--no-auth'] });
  t.after(() => d.stop());
  const ua = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}/`, { user: 'alice', domain: DOMAIN });
  t.after(() => ua.close());
  // A sequence split across two fragments is read whole.
  const text = ua.request({ method: 'OPTIONS', ruri: `sip:${DOMAIN}`, to: `sip:${DOMAIN}`,
    headers: ['Subject: caf\u00e9 \u00fcber \u{1F600} \u4e2d\u6587'] }).text;
  const bytes = Buffer.from(text);
  const cut = bytes.indexOf(Buffer.from('\u{1F600}')) + 2;
  ua.ws.send(bytes.subarray(0, cut), { binary: false, fin: false });
  ua.ws.send(bytes.subarray(cut), { binary: false, fin: true });
  assert.equal((await ua.expectResponse('OPTIONS')).status_code, 200);
});

test('WSS with the configured certificate, and IPv6', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipedge-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
    '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,IP:::1'], { stdio: 'ignore' });
  const d = await startDaemon({
    listen: ['wss:127.0.0.1:0', 'ws:[::1]:0', 'wss:[::1]:0'], domains: [DOMAIN],
    args: ['--no-auth', '--tls-cert', cert, '--tls-key', key],
  });
  t.after(() => d.stop());
  const ca = fs.readFileSync(cert);

  const secure = await SipWs.connect(`wss://127.0.0.1:${d.ports.wss}/`, { user: 'alice', domain: DOMAIN, wsOptions: { ca } });
  secure.send(optionsRequest(secure));
  assert.equal((await secure.expectResponse('OPTIONS')).status_code, 200);
  assert.equal(secure.ws._socket.getProtocol ? /TLSv1\.[23]/.test(secure.ws._socket.getProtocol()) : true, true);
  await secure.close();

  await stillServes(d.ports.ws6, '[::1]');
  const secure6 = await SipWs.connect(`wss://[::1]:${d.ports.wss6}/`, { user: 'bob', domain: DOMAIN, wsOptions: { ca } });
  secure6.send(optionsRequest(secure6));
  assert.equal((await secure6.expectResponse('OPTIONS')).status_code, 200);
  await secure6.close();
  assert.match(d.log(), /flow \d+ open: wss from \[::1\]:\d+/);
  assert.match(d.log(), /flow \d+ open: wss from 127\.0\.0\.1:\d+/);

  // Plain TLS 1.1 is refused.
  const tls = require('node:tls');
  const old = await new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port: d.ports.wss, ca, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' });
    s.once('secureConnect', () => { s.destroy(); resolve('connected'); });
    s.once('error', () => resolve('refused'));
  });
  assert.equal(old, 'refused');
});

test('GET /healthz answers 200 and /metrics exposes counters on the WebSocket port', async (t) => {
  const d = await startDaemon({ domains: [DOMAIN], args: ['--no-auth'] });
  t.after(() => d.stop());
  const ua = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}/`, { user: 'alice', domain: DOMAIN });
  const h = await httpGet(`http://127.0.0.1:${d.ports.ws}/healthz`);
  assert.equal(h.status, 200);
  const m = await httpGet(`http://127.0.0.1:${d.ports.ws}/metrics`);
  assert.equal(m.status, 200);
  assert.match(m.headers['content-type'], /^text\/plain/);
  assert.match(m.body, /^sipedge_ws_connections 1$/m);
  assert.match(m.body, /^sipedge_flows 1$/m);
  await ua.close();
  const missing = await httpGet(`http://127.0.0.1:${d.ports.ws}/nothing-here`);
  assert.equal(missing.status, 404);
});

test('SIGTERM closes every connection with 1001 and exits cleanly', async () => {
  const d = await startDaemon({ domains: [DOMAIN], args: ['--no-auth'] });
  const ua = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}/`, { user: 'alice', domain: DOMAIN });
  await ua.register();
  const code = ua.closed;
  await d.stop();
  assert.equal(await code, 1001);
  assert.match(d.log(), /sipedge stopped/);
  void rand;
});
