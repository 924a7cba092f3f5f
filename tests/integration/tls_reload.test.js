'use strict';
// SIGHUP reloads tls.cert and tls.key: a new WSS or SIP-over-TLS connection sees the new
// certificate while one opened before keeps working on the old; a broken pair leaves the one in
// force. Connections sipedge opens present the new client certificate.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const tls = require('node:tls');
const { execFileSync } = require('node:child_process');
const { startDaemon } = require('../lib/daemon');
const { SipWs } = require('../lib/sipws');

const DOMAIN = 'example.com';

function makeCert(dir, name) {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'subjectAltName=IP:127.0.0.1,IP:::1'], { stdio: 'ignore' });
  return { cert, key };
}

// The certificate a fresh TLS connection is shown: its CN.
function servedName(host, port, alpn = ['http/1.1']) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host, port, rejectUnauthorized: false, ALPNProtocols: alpn }, () => {
      const cn = s.getPeerCertificate().subject.CN;
      s.destroy();
      resolve(cn);
    });
    s.once('error', reject);
  });
}

async function waitLog(d, re) {
  for (let i = 0; i < 50 && !re.test(d.log()); i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(d.log(), re);
}

// A SIP-over-TLS connection that answers OPTIONS one at a time: send() resolves the status.
function sipTls(port) {
  return new Promise((resolve, reject) => {
    let data = '';
    let waiting = null;
    let n = 0;
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => resolve({
      socket: s,
      send() {
        n++;
        s.write(`OPTIONS sip:${DOMAIN} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5099;branch=z9hG4bK-r${n}\r\n` +
          `Max-Forwards: 70\r\nFrom: <sip:a@${DOMAIN}>;tag=f${n}\r\nTo: <sip:${DOMAIN}>\r\n` +
          `Call-ID: reload${n}-${Date.now()}\r\nCSeq: ${n} OPTIONS\r\nContent-Length: 0\r\n\r\n`);
        return new Promise((res) => { waiting = res; });
      },
    }));
    s.on('data', (b) => {
      data += b;
      const m = /^SIP\/2\.0 (\d+)[^]*?\r\n\r\n/m.exec(data);
      if (m && waiting) {
        data = data.slice(m.index + m[0].length);
        const w = waiting;
        waiting = null;
        w(Number(m[1]));
      }
    });
    s.once('error', reject);
  });
}

function options(ua) {
  ua.send(ua.request({ method: 'OPTIONS', ruri: `sip:${DOMAIN}`, to: `sip:${DOMAIN}` }).text);
  return ua.expectResponse('OPTIONS');
}

// Two certificates, first and second, and the live pair the daemon is told to read (first's
// for now), in a scratch directory.
function certificates(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipedge-tls-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const live = { cert: path.join(dir, 'live.crt'), key: path.join(dir, 'live.key') };
  const first = makeCert(dir, 'first');
  const second = makeCert(dir, 'second');
  fs.copyFileSync(first.cert, live.cert);
  fs.copyFileSync(first.key, live.key);
  return { dir, live, first, second };
}

test('SIGHUP: new WSS and TLS connections get the new certificate, open ones stay up', async (t) => {
  const { dir, live, first, second } = certificates(t);
  const d = await startDaemon({ listen: ['wss:127.0.0.1:0', 'wss:[::1]:0', 'tls:127.0.0.1:0'], domains: [DOMAIN],
    args: ['--no-auth', '--tls-cert', live.cert, '--tls-key', live.key] });
  t.after(() => d.stop());
  assert.equal(await servedName('127.0.0.1', d.ports.wss), 'first');

  const before = await SipWs.connect(`wss://127.0.0.1:${d.ports.wss}/`, { user: 'alice', domain: DOMAIN,
    wsOptions: { rejectUnauthorized: false } });
  t.after(() => before.ws.terminate());
  assert.equal(before.ws._socket.getPeerCertificate().subject.CN, 'first');
  assert.equal((await options(before)).status_code, 200);
  assert.equal(await servedName('127.0.0.1', d.ports.tls, null), 'first');
  const sipBefore = await sipTls(d.ports.tls);
  t.after(() => sipBefore.socket.destroy());
  assert.equal(sipBefore.socket.getPeerCertificate().subject.CN, 'first');
  assert.equal(await sipBefore.send(), 200);

  // The files are replaced (as certbot does) and the daemon told.
  fs.copyFileSync(second.cert, live.cert);
  fs.copyFileSync(second.key, live.key);
  d.child.kill('SIGHUP');
  await waitLog(d, /tls: wss listener 127\.0\.0\.1 port \d+: certificate reloaded/);
  await waitLog(d, /tls: wss listener ::1 port \d+: certificate reloaded/);
  await waitLog(d, /tls: tls listener 127\.0\.0\.1 port \d+: certificate reloaded/);
  assert.equal(await servedName('127.0.0.1', d.ports.tls, null), 'second');
  assert.equal(await servedName('127.0.0.1', d.ports.wss), 'second');
  assert.equal(await servedName('::1', d.ports.wss6), 'second');
  // The connection from before is still open and served.
  assert.equal(before.ws.readyState, 1);
  assert.equal((await options(before)).status_code, 200);
  // So is the SIP-over-TLS one, still on the first certificate.
  assert.equal(sipBefore.socket.getPeerCertificate().subject.CN, 'first');
  assert.equal(await sipBefore.send(), 200);
  const sipAfter = await sipTls(d.ports.tls);
  t.after(() => sipAfter.socket.destroy());
  assert.equal(sipAfter.socket.getPeerCertificate().subject.CN, 'second');
  assert.equal(await sipAfter.send(), 200);

  // A certificate without its key: refused, the second certificate stays.
  fs.copyFileSync(first.cert, live.cert);
  d.child.kill('SIGHUP');
  await waitLog(d, /tls: cannot reload .*keeping the certificate in force/);
  assert.equal(await servedName('127.0.0.1', d.ports.wss), 'second');
  assert.equal(await servedName('127.0.0.1', d.ports.tls, null), 'second');
  assert.equal((d.log().match(/tls: cannot reload/g) || []).length, 1, 'the pair is checked once');
  const after = await SipWs.connect(`wss://127.0.0.1:${d.ports.wss}/`, { user: 'bob', domain: DOMAIN,
    wsOptions: { rejectUnauthorized: false } });
  t.after(() => after.ws.terminate());
  assert.equal((await options(after)).status_code, 200);
});

// A SIP-over-TLS upstream that asks for a client certificate, notes its CN, answers each request
// 200 and then closes, so that every request needs a new connection from sipedge.
async function certNotingUpstream(dir) {
  const server = makeCert(dir, 'upstream');
  const seen = [];
  const srv = tls.createServer({ cert: fs.readFileSync(server.cert), key: fs.readFileSync(server.key),
    requestCert: true, rejectUnauthorized: false }, (s) => {
    seen.push(s.getPeerCertificate().subject?.CN ?? null);
    let data = '';
    s.on('data', (b) => {
      data += b;
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = data.slice(0, end).split('\r\n');
      const keep = head.filter((l) => /^(Via|From|To|Call-ID|CSeq):/i.test(l));
      s.end(['SIP/2.0 200 OK', ...keep, 'Content-Length: 0', '', ''].join('\r\n'));
    });
    s.on('error', () => {});
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return { port: srv.address().port, seen, close: () => srv.close() };
}

test('SIGHUP: connections sipedge opens present the new client certificate', async (t) => {
  const { dir, live, first, second } = certificates(t);
  const upstream = await certNotingUpstream(dir);
  t.after(() => upstream.close());
  // No tls or wss listener: the certificate is only the one sipedge shows as a client.
  const d = await startDaemon({ listen: ['ws:127.0.0.1:0'], domains: [DOMAIN], args: ['--no-auth'],
    config: 'http = { web_root = ""; };\nauth = { trusted_peers = [ "127.0.0.0/8" ]; };\n' +
      `tls = { cert = "${live.cert}"; key = "${live.key}"; verify_peer = false; };\n` +
      `routing = { upstreams = [ "sip:127.0.0.1:${upstream.port};transport=tls" ]; };\n` });
  t.after(() => d.stop());
  const alice = await SipWs.connect(`ws://127.0.0.1:${d.ports.ws}`, { user: 'alice', domain: DOMAIN });
  t.after(() => alice.ws.terminate());
  assert.equal((await alice.register()).status_code, 200);
  const message = async () => {
    alice.send(alice.request({ method: 'MESSAGE', ruri: 'sip:7001@pbx.example.net' }).text);
    return (await alice.expectResponse('MESSAGE', undefined, 10000)).status_code;
  };

  assert.equal(await message(), 200);
  assert.deepEqual(upstream.seen, ['first']);
  fs.copyFileSync(second.cert, live.cert);
  fs.copyFileSync(second.key, live.key);
  d.child.kill('SIGHUP');
  await waitLog(d, /tls: connections we open: certificate reloaded from /);
  assert.equal(await message(), 200);
  assert.deepEqual(upstream.seen, ['first', 'second']);

  // A certificate without its key: the context in force stays.
  fs.copyFileSync(first.cert, live.cert);
  d.child.kill('SIGHUP');
  await waitLog(d, /tls: connections we open keep the certificate and CAs in force/);
  assert.equal(await message(), 200);
  assert.deepEqual(upstream.seen, ['first', 'second', 'second']);
});
