'use strict';
// SIP over TCP and TLS (RFC 3261 §18.3) meets the browser side: SIPp over TCP calls a WebSocket
// user, a WebSocket user calls a SIPp UAS over TCP behind an upstream route (double
// Record-Route ws <-> tcp both ways), and the stream rules are checked with raw sockets:
// Content-Length framing across reads and pipelined messages, CRLF keep-alives, a message
// without Content-Length, tcp.idle_timeout, TLS with and without client certificates.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const net = require('node:net');
const tls = require('node:tls');
const fs = require('node:fs');
const os = require('node:os');
const { execFileSync } = require('node:child_process');
const { sipp } = require('../lib/sipp');
const { startDaemon } = require('../lib/daemon');
const { until } = require('../lib/until');
const { freePort } = require('../lib/ports');
const { SipWs, sdp, routeSet, tagOf, rand } = require('../lib/sipws');

const DOMAIN = 'example.com';
const TRUST = 'auth = { trusted_peers = [ "127.0.0.0/8", "::1" ]; };\n';
const SCEN = path.resolve(__dirname, '..', 'sipp', 'scenarios');
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'sipedge-tcp-'));
test.after(() => fs.rmSync(TMP, { recursive: true, force: true }));

// The UDP UAS scenario, expecting TCP in sipedge's Via and Record-Route.
const UAS_TCP = path.join(TMP, 'uas_tcp.xml');
fs.writeFileSync(UAS_TCP, fs.readFileSync(path.join(SCEN, 'uas.xml'), 'utf8')
  .replace('transport=udp;lr', 'transport=tcp;lr').replace('SIP/2.0/UDP ', 'SIP/2.0/TCP '));

// A self-signed certificate for 127.0.0.1 (its own CA).
function makeCert(name) {
  const key = path.join(TMP, `${name}.key`);
  const cert = path.join(TMP, `${name}.pem`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { key, cert };
}

async function phone(t, d, user) {
  const p = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}`, { user, domain: DOMAIN });
  t.after(() => p.ws.terminate());
  const r = await p.register();
  assert.equal(r.status_code, 200, `${user} registers`);
  return p;
}

function options(n, { contentLength = true } = {}) {
  return `OPTIONS sip:${DOMAIN} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5099;branch=z9hG4bK-${n}\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:a@${DOMAIN}>;tag=f${n}\r\nTo: <sip:${DOMAIN}>\r\nCall-ID: c${n}-${rand(4)}\r\n` +
    `CSeq: 1 OPTIONS\r\n${contentLength ? 'Content-Length: 0\r\n' : ''}\r\n`;
}

// A raw connection that collects what sipedge sends and notes when it closes.
function rawConnect(connect) {
  return new Promise((resolve, reject) => {
    const s = connect();
    const c = { s, data: '', closed: false };
    c.closedP = new Promise((r) => s.on('close', () => { c.closed = true; r(); }));
    s.on('data', (b) => { c.data += b; });
    s.once('error', (e) => { c.error = e; });
    s.once(s instanceof tls.TLSSocket ? 'secureConnect' : 'connect', () => resolve(c));
    s.once('error', reject);
  });
}

const statusLines = (text) => text.split('\r\n').filter((l) => l.startsWith('SIP/2.0 '));

test('SIPp over TCP calls a WebSocket user: double Record-Route tcp/ws, BYE back', async (t) => {
  const d = await startDaemon({ listen: ['ws:127.0.0.1:0', 'tcp:127.0.0.1:0'], domains: [DOMAIN], args: ['--no-auth'], config: TRUST });
  t.after(() => d.stop());
  const alice = await phone(t, d, 'alice');
  const uac = sipp(['-sf', path.join(SCEN, 'uac.xml'), '-t', 't1', '-s', 'alice', '-key', 'domain', DOMAIN,
    '-i', '127.0.0.1', '-p', String(await freePort('127.0.0.1')), '-m', '1', `127.0.0.1:${d.ports.tcp}`]);
  t.after(() => uac.child.kill());

  const inv = await alice.expectRequest('INVITE', 10000);
  const vias = inv.getHeaders('via');
  assert.equal(vias.length, 2);
  assert.match(vias[0], /^SIP\/2\.0\/WS 127\.0\.0\.1:\d+;branch=z9hG4bK/);
  assert.match(vias[1], /^SIP\/2\.0\/TCP 127\.0\.0\.1:(\d+);branch=[^;]+;rport=\1;received=127\.0\.0\.1$/);
  const rr = routeSet(inv, false);
  assert.equal(rr.length, 2, 'double Record-Route: the legs\' transports differ');
  assert.match(rr[0], new RegExp(`^<sip:[0-9a-f]{32}@127\\.0\\.0\\.1:${d.ports.ws};transport=ws;lr>$`));
  assert.match(rr[1], new RegExp(`^<sip:[0-9a-f]{32}@127\\.0\\.0\\.1:${d.ports.tcp};transport=tcp;lr>$`));
  const { bye } = await alice.answerCall(inv);
  assert.equal(tagOf(bye.getHeader('to')), 'at');
  const r = await uac.done;
  assert.equal(r.code, 0, `sipp UAC failed:\n${r.errors}\n${r.out.slice(-3000)}`);
});

test('a WebSocket user calls through a TCP upstream to a SIPp UAS: connection opened, double Record-Route', async (t) => {
  const upstream = await freePort('127.0.0.1');
  const d = await startDaemon({
    listen: ['ws:127.0.0.1:0', 'udp:127.0.0.1:0'], domains: [DOMAIN], args: ['--no-auth'],
    config: `${TRUST}routing = { upstreams = [ "sip:127.0.0.1:${upstream};transport=tcp" ]; };\n`,
  });
  t.after(() => d.stop());
  const uas = sipp(['-sf', UAS_TCP, '-t', 't1', '-s', 'pbx', '-i', '127.0.0.1', '-p', String(upstream),
    '-m', '1', `127.0.0.1:${d.ports.udp}`]);
  t.after(() => uas.child.kill());
  await new Promise((r) => setTimeout(r, 300)); // sipp listens
  const alice = await phone(t, d, 'alice');

  const ruri = 'sip:7001@pbx.example.net';
  const fromTag = rand(4);
  const callId = rand(10);
  alice.send(alice.request({ method: 'INVITE', ruri, fromTag, callId, body: sdp('alice') }).text);
  const ok = await alice.expectResponse('INVITE', 200, 10000);
  const routes = routeSet(ok, true);
  assert.equal(routes.length, 2, 'double Record-Route on the way back');
  assert.match(routes[0], /transport=ws;lr>$/);
  assert.match(routes[1], /transport=tcp;lr>$/);
  assert.equal((await alice.ackAndBye(ok, { ruri, fromTag, callId })).status_code, 200);
  const r = await uas.done;
  assert.equal(r.code, 0, `sipp UAS failed:\n${r.errors}\n${r.out.slice(-3000)}`);
  const m = await d.metrics();
  assert.equal(m.sipedge_tcp_connections_opened_total, 1, 'one connection to the upstream');
});

test('TCP framing: messages split across reads and pipelined, CRLF keep-alive, missing Content-Length, idle timeout', async (t) => {
  const d = await startDaemon({
    listen: ['ws:127.0.0.1:0', 'tcp:127.0.0.1:0'], domains: [DOMAIN], args: ['--no-auth'],
    config: `${TRUST}tcp = { idle_timeout = 1; };\n`,
  });
  t.after(() => d.stop());
  const c = await rawConnect(() => net.connect(d.ports.tcp, '127.0.0.1'));
  t.after(() => c.s.destroy());
  const two = options(1) + options(2);
  c.s.write(two.slice(0, 40));
  await new Promise((r) => setTimeout(r, 100));
  c.s.write(two.slice(40, 200));
  await new Promise((r) => setTimeout(r, 100));
  c.s.write(two.slice(200));
  await until('two answers', () => statusLines(c.data).length === 2, { every: 20 });
  assert.deepEqual(statusLines(c.data), ['SIP/2.0 200 OK', 'SIP/2.0 200 OK']);
  assert.match(c.data, /branch=z9hG4bK-1\r\n[\s\S]*branch=z9hG4bK-2\r\n/);
  c.data = '';
  c.s.write('\r\n\r\n');
  await until('the CRLF pong', () => c.data === '\r\n', { every: 20 });

  // Without Content-Length a stream cannot be framed: 400 and the connection goes.
  const bad = await rawConnect(() => net.connect(d.ports.tcp, '127.0.0.1'));
  t.after(() => bad.s.destroy());
  bad.s.write(options(3, { contentLength: false }) + options(4));
  await bad.closedP;
  assert.deepEqual(statusLines(bad.data), ['SIP/2.0 400 Missing Content-Length header']);

  // Idle for tcp.idle_timeout (1 s): closed by sipedge.
  const t0 = Date.now();
  await c.closedP;
  assert.ok(Date.now() - t0 < 3000, 'closed within the idle timeout');
  const m = await d.metrics();
  assert.ok(m.sipedge_tcp_idle_closed_total >= 1);
  assert.equal(m.sipedge_tcp_framing_errors_total, 1);
  assert.equal(m.sipedge_tcp_connections, 0);
});

test('TLS listener: TLS 1.2+, a client certificate required by tls.verify_client', async (t) => {
  const server = makeCert('server');
  const client = makeCert('client');
  // One CA file for client certificates: the client's own (self-signed) certificate.
  const d = await startDaemon({
    listen: ['ws:127.0.0.1:0', 'tls:127.0.0.1:0'], domains: [DOMAIN],
    args: ['--no-auth', '--tls-cert', server.cert, '--tls-key', server.key],
    config: `${TRUST}tls = { ca = "${client.cert}"; verify_client = true; };\n`,
  });
  t.after(() => d.stop());
  const base = { host: '127.0.0.1', port: d.ports.tls, ca: fs.readFileSync(server.cert), checkServerIdentity: () => undefined };

  const good = await rawConnect(() => tls.connect({ ...base, key: fs.readFileSync(client.key), cert: fs.readFileSync(client.cert) }));
  t.after(() => good.s.destroy());
  assert.match(good.s.getProtocol(), /^TLSv1\.[23]$/);
  good.s.write(options(5));
  await until('an answer over TLS', () => statusLines(good.data).length === 1, { every: 20 });
  assert.deepEqual(statusLines(good.data), ['SIP/2.0 200 OK']);

  // Without a certificate the handshake (TLS 1.3: the first read) fails and nothing is answered.
  let anon;
  try {
    anon = await rawConnect(() => tls.connect(base));
    anon.s.write(options(6));
    await anon.closedP;
    assert.equal(statusLines(anon.data).length, 0, 'no answer without a client certificate');
  } catch (e) {
    assert.match(String(e.code || e.message), /ECONNRESET|alert|certificate/i);
  } finally {
    if (anon) anon.s.destroy();
  }
  await assert.rejects(rawConnect(() => tls.connect({ ...base, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' })),
    'TLS 1.1 is refused');
});

test('RFC 5923 alias: a PBX connected over TCP gets calls to its Via address on that connection', async (t) => {
  // Nobody listens at the PBX's advertised port: only the aliased connection reaches it.
  const pbxPort = await freePort('127.0.0.1');
  const d = await startDaemon({
    listen: ['ws:127.0.0.1:0', 'tcp:127.0.0.1:0'], domains: [DOMAIN], args: ['--no-auth'],
    config: `${TRUST}routing = { upstreams = [ "sip:127.0.0.1:${pbxPort};transport=tcp" ]; };\n`,
  });
  t.after(() => d.stop());
  const pbx = await rawConnect(() => net.connect(d.ports.tcp, '127.0.0.1'));
  t.after(() => pbx.s.destroy());
  // Its first request names its listening address in Via, with "alias".
  pbx.s.write(options(7).replace('127.0.0.1:5099;branch=z9hG4bK-7', `127.0.0.1:${pbxPort};branch=z9hG4bK-7;alias`));
  await until('the OPTIONS answer', () => statusLines(pbx.data).length === 1, { every: 20 });
  pbx.data = '';

  const alice = await phone(t, d, 'alice');
  alice.send(alice.request({ method: 'MESSAGE', ruri: 'sip:7001@pbx.example.net', fromTag: rand(4), callId: rand(10) }).text);
  await until('the MESSAGE on the PBX connection', () => /^MESSAGE sip:7001@pbx\.example\.net SIP\/2\.0\r\n/.test(pbx.data), { every: 20 });
  const via = /^Via: (SIP\/2\.0\/TCP [^\r]+)\r\n/m.exec(pbx.data)[1];
  assert.match(via, new RegExp(`^SIP/2\\.0/TCP 127\\.0\\.0\\.1:${d.ports.tcp};branch=z9hG4bK[^;]+;rport;alias$`),
    'our Via offers the connection back (RFC 5923)');
  const m = await d.metrics();
  assert.equal(m.sipedge_tcp_connections_opened_total, 0, 'no new connection was opened');
});

test('§18.2.2: when the request\'s connection has closed, the response goes over a new one to the Via', async (t) => {
  const d = await startDaemon({ listen: ['ws:127.0.0.1:0', 'tcp:127.0.0.1:0'], domains: [DOMAIN], args: ['--no-auth'], config: TRUST });
  t.after(() => d.stop());
  const alice = await phone(t, d, 'alice');
  // The calling phone listens for connections at its Via's sent-by port.
  let back = '';
  const server = net.createServer((s) => s.on('data', (b) => { back += b; }));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const sentBy = server.address().port;
  const caller = await rawConnect(() => net.connect(d.ports.tcp, '127.0.0.1'));
  caller.s.write([`INVITE sip:alice@${DOMAIN} SIP/2.0`, `Via: SIP/2.0/TCP 127.0.0.1:${sentBy};branch=z9hG4bK-back1`,
    'Max-Forwards: 70', `From: <sip:pbx@${DOMAIN}>;tag=pbx1`, `To: <sip:alice@${DOMAIN}>`, 'Call-ID: back-1',
    'CSeq: 1 INVITE', `Contact: <sip:pbx@127.0.0.1:${sentBy};transport=tcp>`, 'Content-Length: 0', '', ''].join('\r\n'));
  await until('the 100 on the first connection', () => statusLines(caller.data).includes('SIP/2.0 100 Trying'), { every: 20 });
  const invite = await alice.expectRequest('INVITE', 5000);
  caller.s.end(); // the phone drops its connection while alice's phone rings
  await caller.closedP;
  await new Promise((r) => setTimeout(r, 100));
  alice.respond(invite, 200, 'OK', { body: sdp('alice') });
  await until('the 200 over a new connection to the sent-by port', () => /^SIP\/2\.0 200 OK\r\n/.test(back), { every: 20 });
  assert.match(back, /^CSeq: 1 INVITE\r$/m);
  assert.match(back, /^Via: SIP\/2\.0\/TCP 127\.0\.0\.1:\d+;branch=z9hG4bK-back1/m);
  assert.equal((await d.metrics()).sipedge_tcp_connections_opened_total, 1);
  assert.match(d.log(), /response sent over a new connection/);
});
