'use strict';
// Per-source limits (transport/limits.c): requests per second with a temporary ban (503 with
// Retry-After or silence), the ban's end, trusted peers exempt, WebSocket and TCP connections
// per address, and bindings per AOR.
const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { startDaemon } = require('../lib/daemon');
const { SipWs, handshake } = require('../lib/sipws');
const { SipUdp } = require('../lib/sipudp');

const DOMAIN = 'example.com';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The daemon's stderr arrives on its own schedule: wait for a line rather than race it.
async function waitLog(d, re) {
  for (let i = 0; i < 50 && !re.test(d.log()); i++) await sleep(100);
  assert.match(d.log(), re);
}


// Send n OPTIONS at once; the final statuses (null for silence), in order of sending.
async function burst(peer, n, timeout = 1500) {
  const reqs = [];
  for (let i = 0; i < n; i++) reqs.push(peer.request({ method: 'OPTIONS' }));
  for (const r of reqs) await peer.send(r.text);
  return Promise.all(reqs.map(async (r) => {
    const m = await peer.final(r.callId, timeout);
    return m ? m : null;
  }));
}

const LIMITS = (extra = '') => `web_root = "";\nlimits = { requests_per_second = 5; burst = 5; ban_seconds = 2; ${extra} };\n`;

test('a source over requests_per_second is banned: 503 with Retry-After, WS handshakes refused, then the ban ends', async (t) => {
  const d = await startDaemon({ listen: ['ws:127.0.0.1:0', 'udp:127.0.0.1:0'], domains: [DOMAIN], args: ['--no-auth'], config: LIMITS() });
  t.after(() => d.stop());
  const peer = await SipUdp.open({ port: d.ports.udp });
  t.after(() => peer.close());
  const replies = await burst(peer, 12);
  const statuses = replies.map((m) => m && m.status_code);
  assert.deepEqual(statuses.slice(0, 5), [200, 200, 200, 200, 200], `the burst passes: ${statuses}`);
  assert.deepEqual(statuses.slice(5), Array(7).fill(503), `then 503: ${statuses}`);
  const retry = Number(replies[11].getHeader('Retry-After'));
  assert.ok(retry >= 1 && retry <= 2, `Retry-After ${retry}`);
  await waitLog(d, /limits: 127\.0\.0\.1 sent more than 5 requests\/s .*banned for 2 s/);
  assert.equal((await d.metrics()).sipedge_limits_bans_total, 1);
  assert.equal((await d.metrics()).sipedge_limits_banned_sources, 1);
  assert.ok((await d.metrics()).sipedge_limits_rejected_total >= 7);
  // The same address cannot open a WebSocket while banned.
  const h = await handshake(`ws://127.0.0.1:${d.ports.ws}/`, 'sip');
  assert.equal(h.status, 503);
  assert.match(h.body, /banned/);
  await sleep(3100);
  await waitLog(d, /limits: ban on 127\.0\.0\.1 ended/);
  assert.equal((await d.metrics()).sipedge_limits_banned_sources, 0);
  const after = await burst(peer, 1);
  assert.equal(after[0] && after[0].status_code, 200, 'served again once the ban is over');
  const ok = await handshake(`ws://127.0.0.1:${d.ports.ws}/`, 'sip');
  assert.ok(ok.ws, 'handshakes accepted again');
  ok.ws.terminate();
});

test('a paced source stays under the limit', async (t) => {
  const d = await startDaemon({ listen: ['ws:127.0.0.1:0', 'udp:127.0.0.1:0'], domains: [DOMAIN], args: ['--no-auth'], config: LIMITS() });
  t.after(() => d.stop());
  const peer = await SipUdp.open({ port: d.ports.udp });
  t.after(() => peer.close());
  for (let i = 0; i < 12; i++) {
    const r = await burst(peer, 1);
    assert.equal(r[0] && r[0].status_code, 200, `request ${i}`);
    await sleep(250); // 4 per second against a limit of 5
  }
  assert.equal((await d.metrics()).sipedge_limits_bans_total, 0);
});

test('ban_action = "drop": a banned source hears nothing', async (t) => {
  const d = await startDaemon({ listen: ['ws:127.0.0.1:0', 'udp:127.0.0.1:0'], domains: [DOMAIN], args: ['--no-auth'], config: LIMITS('ban_action = "drop";') });
  t.after(() => d.stop());
  const peer = await SipUdp.open({ port: d.ports.udp });
  t.after(() => peer.close());
  const statuses = (await burst(peer, 10, 1000)).map((m) => m && m.status_code);
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, null, null, null, null, null]);
  assert.equal((await d.metrics()).sipedge_limits_bans_total, 1);
  assert.ok((await d.metrics()).sipedge_limits_rejected_total >= 5);
});

test('trusted peers are never limited', async (t) => {
  const d = await startDaemon({ listen: ['ws:127.0.0.1:0', 'udp:127.0.0.1:0'], domains: [DOMAIN], args: ['--no-auth'],
    config: `${LIMITS()}auth = { trusted_peers = [ "127.0.0.0/8" ]; };\n` });
  t.after(() => d.stop());
  const peer = await SipUdp.open({ port: d.ports.udp });
  t.after(() => peer.close());
  const statuses = (await burst(peer, 30)).map((m) => m && m.status_code);
  assert.deepEqual(statuses, Array(30).fill(200));
  assert.equal((await d.metrics()).sipedge_limits_bans_total, 0);
});

test('WebSocket: a banned client gets 503 on its own connection too', async (t) => {
  const d = await startDaemon({ domains: [DOMAIN], args: ['--no-auth'], config: LIMITS() });
  t.after(() => d.stop());
  const ua = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}/`, { user: 'alice', domain: DOMAIN });
  t.after(() => ua.ws.terminate());
  const calls = [];
  for (let i = 0; i < 8; i++) {
    const { text } = ua.request({ method: 'OPTIONS', ruri: `sip:${DOMAIN}`, to: `sip:${DOMAIN}`, callId: `c${i}` });
    ua.send(text);
    calls.push(`c${i}`);
  }
  const statuses = [];
  for (const id of calls) {
    const m = await ua.expect((x) => x.status_code >= 200 && x.call_id === id, `answer to ${id}`);
    statuses.push(m.status_code);
    if (m.status_code === 503) assert.ok(Number(m.getHeader('Retry-After')) >= 1);
  }
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, 503, 503, 503]);
});

test('max_connections_per_ip: the next handshake gets 503 until one closes', async (t) => {
  const d = await startDaemon({ domains: [DOMAIN], args: ['--no-auth'],
    config: 'web_root = "";\nlimits = { max_connections_per_ip = 2; };\n' });
  t.after(() => d.stop());
  const url = `ws://127.0.0.1:${d.ports.ws}/`;
  const a = await handshake(url, 'sip');
  const b = await handshake(url, 'sip');
  assert.ok(a.ws && b.ws);
  const c = await handshake(url, 'sip');
  assert.equal(c.status, 503);
  assert.match(c.body, /too many connections/);
  assert.equal((await d.metrics()).sipedge_limits_connections_refused_total, 1);
  await new Promise((resolve) => { a.ws.once('close', resolve); a.ws.close(); });
  // The daemon counts the connection gone when lws reports it closed: try for a while.
  let e = await handshake(url, 'sip');
  for (let i = 0; i < 20 && !e.ws; i++) {
    await sleep(100);
    e = await handshake(url, 'sip');
  }
  assert.ok(e.ws, 'a slot is free again');
  b.ws.terminate();
  e.ws.terminate();
});

// A raw TCP connection: resolves { sock, answer } once OPTIONS is answered on it, or
// { closed: true } if sipedge closes it first (refused right after accept).
function tcpProbe(port, n) {
  return new Promise((resolve, reject) => {
    let data = '';
    const sock = net.connect(port, '127.0.0.1', () => {
      sock.write(`OPTIONS sip:${DOMAIN} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5099;branch=z9hG4bK-lim${n}\r\n` +
        `Max-Forwards: 70\r\nFrom: <sip:a@${DOMAIN}>;tag=f${n}\r\nTo: <sip:${DOMAIN}>\r\n` +
        `Call-ID: lim${n}-${Date.now()}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`);
    });
    sock.on('data', (b) => {
      data += b;
      const m = /^SIP\/2\.0 (\d+)/m.exec(data);
      if (m) resolve({ sock, status: Number(m[1]) });
    });
    sock.once('close', () => resolve({ closed: true, data }));
    sock.once('error', (e) => { if (e.code !== 'ECONNRESET' && e.code !== 'EPIPE') reject(e); });
  });
}

test('max_connections_per_ip on TCP: the next connection is closed at once until one closes', async (t) => {
  const d = await startDaemon({ listen: ['tcp:127.0.0.1:0', 'ws:127.0.0.1:0'], domains: [DOMAIN], args: ['--no-auth'],
    config: 'web_root = "";\nlimits = { max_connections_per_ip = 2; };\n' });
  t.after(() => d.stop());
  const a = await tcpProbe(d.ports.tcp, 1);
  const b = await tcpProbe(d.ports.tcp, 2);
  assert.equal(a.status, 200);
  assert.equal(b.status, 200);
  t.after(() => { a.sock.destroy(); b.sock.destroy(); });
  const c = await tcpProbe(d.ports.tcp, 3);
  assert.equal(c.closed, true, 'the third connection is closed');
  assert.equal(c.data, '', 'and nothing is answered on it');
  await waitLog(d, /tcp: connection from 127\.0\.0\.1 refused: too many connections from this address/);
  assert.equal((await d.metrics()).sipedge_limits_connections_refused_total, 1);
  // WebSocket connections count against the same address.
  const w = await handshake(`ws://127.0.0.1:${d.ports.ws}/`, 'sip');
  assert.equal(w.status, 503);
  assert.equal((await d.metrics()).sipedge_limits_connections_refused_total, 2);
  // Closing one frees its slot once the daemon has seen the close.
  a.sock.destroy();
  let e = await tcpProbe(d.ports.tcp, 4);
  for (let i = 5; i < 25 && !e.sock; i++) {
    await sleep(100);
    e = await tcpProbe(d.ports.tcp, i);
  }
  assert.equal(e.status, 200, 'a slot is free again');
  e.sock.destroy();
});

test('max_connections_per_ip on TCP: trusted peers are not counted', async (t) => {
  const d = await startDaemon({ listen: ['tcp:127.0.0.1:0', 'ws:127.0.0.1:0'], domains: [DOMAIN], args: ['--no-auth'],
    config: 'web_root = "";\nlimits = { max_connections_per_ip = 1; };\nauth = { trusted_peers = [ "127.0.0.0/8" ]; };\n' });
  t.after(() => d.stop());
  const socks = [];
  t.after(() => socks.forEach((s) => s.destroy()));
  for (let i = 0; i < 3; i++) {
    const p = await tcpProbe(d.ports.tcp, 10 + i);
    assert.equal(p.status, 200, `connection ${i + 1} is served`);
    socks.push(p.sock);
  }
  assert.equal((await d.metrics()).sipedge_limits_connections_refused_total, 0);
});

test('registrar.max_bindings_per_aor: one binding too many is refused 403, the others stay', async (t) => {
  const d = await startDaemon({ domains: [DOMAIN], args: ['--no-auth'],
    config: 'web_root = "";\nregistrar = { max_bindings_per_aor = 2; };\n' });
  t.after(() => d.stop());
  const uas = [];
  for (let i = 0; i < 3; i++) {
    const ua = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}/`, { user: 'alice', domain: DOMAIN });
    t.after(() => ua.ws.terminate());
    uas.push(ua);
  }
  assert.equal((await uas[0].register()).status_code, 200);
  assert.equal((await uas[1].register()).status_code, 200);
  const third = await uas[2].register();
  assert.equal(third.status_code, 403);
  // A query (no Contact) lists the two that stayed.
  const { text } = uas[0].request({ method: 'REGISTER', ruri: `sip:${DOMAIN}`, to: uas[0].aor, callId: uas[0].regCallId, cseq: ++uas[0].regCseq });
  uas[0].send(text.replace(/^Contact: .*\r\n/m, ''));
  const q = await uas[0].expectResponse('REGISTER');
  assert.equal(q.status_code, 200);
  assert.equal(q.getHeaders('contact').join(',').split(/,\s*(?=<)/).length, 2);
});
