'use strict';
// Media across the edge, end to end: the demo phone (JsSIP) in headless Chromium and a plain SIP
// phone over UDP with a small RTP peer, through sipedge and Debian's real rtpengine
// (media.relay "cross"). The browser calls the plain phone and is called by it; in each call
// media flows both ways (the browser's getStats counts inbound RTP packets, the RTP peer counts
// PCMU packets from rtpengine's address and port), and the SDP each side sees is checked: the
// plain side gets RTP/AVP on rtpengine's address without ICE or DTLS, the browser
// UDP/TLS/RTP/SAVPF with ICE and a fingerprint.
//
// Everything runs in a network namespace of the test's own whose only interface is `lo`: when
// this file is started anywhere else it runs itself again under `unshare --net` (root), so the
// daemon, rtpengine, Chromium and the peers only ever use 127.0.0.1 of that namespace.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const dgram = require('node:dgram');
const os = require('node:os');
const path = require('node:path');
const { startDaemon, ROOT } = require('../lib/daemon');
const { startRtpengine } = require('../lib/rtpengine');
const { launchBrowser, artifactPath } = require('../lib/browser');
const { SipUdp } = require('../lib/sipudp');
const { rand, routeSet, tagOf } = require('../lib/sipws');

const INSIDE = 'SIPEDGE_TEST_NETNS';
const DOMAIN = 'sipedge.test';
const WAIT = 15000;

const onlyLoopback = () => Object.keys(os.networkInterfaces()).every((name) => name === 'lo');

if (!onlyLoopback() && !process.env[INSIDE]) {
  // Not in a namespace of our own yet: run this file again inside a new one, with lo up.
  const can = spawnSync('unshare', ['--net', 'true'], { stdio: 'ignore' }).status === 0;
  test('media through rtpengine, browser and plain phone in a private network namespace', async (t) => {
      // The suite runs as root (make check installs packages); a namespace is part of the test.
      assert.ok(can, 'unshare --net failed: this test needs root for a network namespace with only lo');
      const env = { ...process.env, [INSIDE]: '1' };
      delete env.NODE_TEST_CONTEXT; // the inner run reports for itself, in plain text
      const child = spawn('unshare', ['--net', '--', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh',
        process.execPath, '--test-reporter=spec', __filename], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (b) => { out += b; });
      child.stderr.on('data', (b) => { out += b; });
      const code = await new Promise((resolve) => child.on('exit', (c, s) => resolve(s || c)));
      assert.equal(code, 0, `the run inside the namespace failed:\n${out.slice(-12000)}`);
      for (const line of out.split('\n').filter((l) => /^\s*(✔|ℹ (tests|pass|fail))/.test(l)))
        t.diagnostic(line.trim());
    });
} else {
  inside();
}

// ---- a plain SIP phone's media: an RTP peer that sends PCMU and counts what comes back ----

class RtpPeer {
  static open() {
    const sock = dgram.createSocket('udp4');
    return new Promise((resolve) => sock.bind(0, '127.0.0.1', () => resolve(new RtpPeer(sock))));
  }

  constructor(sock) {
    this.sock = sock;
    this.port = sock.address().port;
    this.from = new Map(); // "addr:port" -> PCMU RTP packets received from there
    this.seq = 0;
    this.ssrc = Math.floor(Math.random() * 0xffffffff);
    sock.on('message', (buf, rinfo) => {
      // RTP version 2, payload type 0 (PCMU); RTCP (demultiplexed by rtpengine) is not counted.
      if (buf.length < 12 || buf[0] >> 6 !== 2 || (buf[1] & 0x7f) !== 0) return;
      const key = `${rinfo.address}:${rinfo.port}`;
      this.from.set(key, (this.from.get(key) || 0) + 1);
    });
  }

  received(addr, port) { return this.from.get(`${addr}:${port}`) || 0; }

  // 20 ms PCMU packets (160 samples of a 1 kHz tone) to addr:port until stop().
  start(addr, port) {
    const tone = Buffer.alloc(160);
    for (let i = 0; i < 160; i++) tone[i] = [0xff, 0xa3, 0x95, 0xa3, 0xff, 0x23, 0x15, 0x23][i % 8];
    this.timer = setInterval(() => {
      const h = Buffer.alloc(12);
      h[0] = 0x80;
      h[1] = this.seq === 0 ? 0x80 : 0x00; // marker on the first packet, PT 0
      h.writeUInt16BE(this.seq & 0xffff, 2);
      h.writeUInt32BE((this.seq * 160) >>> 0, 4);
      h.writeUInt32BE(this.ssrc >>> 0, 8);
      this.seq++;
      this.sock.send(Buffer.concat([h, tone]), port, addr);
    }, 20);
  }

  stop() { clearInterval(this.timer); }

  close() { this.stop(); return new Promise((r) => this.sock.close(r)); }
}

function plainSdp(rtpPort) {
  return ['v=0', `o=- ${Date.now()} 1 IN IP4 127.0.0.1`, 's=plain', 'c=IN IP4 127.0.0.1', 't=0 0',
    `m=audio ${rtpPort} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', 'a=ptime:20', 'a=sendrecv', ''].join('\r\n');
}

// The audio stream of an SDP: port, protocol, address (media-level c= first).
function audioOf(sdp) {
  const m = /^m=audio (\d+) (\S+)[^\n]*\n((?:(?!m=)[^\n]*\n?)*)/m.exec(sdp);
  const c = (m && /^c=IN IP4 (\S+)/m.exec(m[3])) || /^c=IN IP4 (\S+)/m.exec(sdp);
  return { port: m && Number(m[1]), proto: m && m[2], addr: c && c[1], section: m ? m[3] : '' };
}

// What the plain side must see: rtpengine's RTP/AVP on 127.0.0.1, nothing of WebRTC.
function assertPlainSdp(sdp, r) {
  const a = audioOf(sdp);
  assert.equal(a.proto, 'RTP/AVP', sdp);
  assert.equal(a.addr, '127.0.0.1', sdp);
  assert.ok(a.port >= r.portMin && a.port < r.portMin + 100, `port ${a.port} is rtpengine's\n${sdp}`);
  assert.doesNotMatch(sdp, /^a=ice-/m, sdp);
  assert.doesNotMatch(sdp, /^a=fingerprint:/m, sdp);
  assert.doesNotMatch(sdp, /^a=candidate:/m, sdp);
  assert.doesNotMatch(sdp, /SAVP/, sdp);
  return a;
}

// What the browser must see: WebRTC on rtpengine's address.
function assertWebrtcSdp(sdp, r) {
  const a = audioOf(sdp);
  assert.equal(a.proto, 'UDP/TLS/RTP/SAVPF', sdp);
  assert.match(sdp, /^a=ice-ufrag:/m, sdp);
  assert.match(sdp, /^a=ice-pwd:/m, sdp);
  assert.match(sdp, /^a=fingerprint:sha-\d+ [0-9A-F:]+/m, sdp);
  assert.match(sdp, /^a=rtcp-mux/m, sdp);
  const cand = /^a=candidate:\S+ 1 UDP \d+ (\S+) (\d+) typ host/mi.exec(sdp);
  assert.ok(cand, `a host candidate\n${sdp}`);
  assert.equal(cand[1], '127.0.0.1', sdp);
  const port = Number(cand[2]);
  assert.ok(port >= r.portMin && port < r.portMin + 100, `candidate port ${port} is rtpengine's\n${sdp}`);
  return a;
}

function inside() {
  let daemon;
  let rtpengine;
  let browser;
  let base;
  const pageErrors = [];

  test.before(async () => {
    rtpengine = await startRtpengine();
    daemon = await startDaemon({
      listen: ['ws:127.0.0.1:0', 'udp:127.0.0.1:0'],
      domains: [DOMAIN],
      args: ['--no-auth'],
      config: `http = { web_root = "${path.join(ROOT, 'web')}"; };\n` +
        `media = { rtpengine = [ "${rtpengine.ng}" ]; relay = "cross"; };\n`,
    });
    base = `http://127.0.0.1:${daemon.ports.ws}`;
    browser = await launchBrowser();
  });

  test.after(async () => {
    if (browser) await browser.close();
    if (daemon) await daemon.stop(); // rejects on an unclean exit or a sanitizer report
    if (rtpengine) await rtpengine.stop();
    assert.deepEqual(pageErrors, []);
  });

  // The plain phone: a SIP UA over UDP registered as carol, with its RTP peer.
  async function plainPhone(t) {
    const sip = await SipUdp.open({ port: daemon.ports.udp, domain: DOMAIN });
    const rtp = await RtpPeer.open();
    t.after(async () => { await rtp.close(); await sip.close(); });
    sip.contact = `sip:carol@127.0.0.1:${sip.local.port}`;
    const reg = sip.request({
      method: 'REGISTER', ruri: `sip:${DOMAIN}`, to: `sip:carol@${DOMAIN}`, user: 'carol',
      headers: [`Contact: <${sip.contact}>;expires=300`],
    });
    await sip.send(reg.text);
    const ok = await sip.final(reg.callId);
    assert.equal(ok && ok.status_code, 200, 'carol registers');
    return { sip, rtp };
  }

  function respond(sip, req, status, reason, { toTag, body } = {}) {
    const lines = [`SIP/2.0 ${status} ${reason}`, ...req.getHeaders('via').map((v) => `Via: ${v}`)];
    if (req.method === 'INVITE' && status > 100 && status < 300)
      lines.push(...req.getHeaders('record-route').map((rr) => `Record-Route: ${rr}`));
    let to = req.getHeader('to');
    if (status > 100 && !/;\s*tag=/.test(to)) to += `;tag=${toTag}`;
    lines.push(`To: ${to}`, `From: ${req.getHeader('from')}`, `Call-ID: ${req.call_id}`,
      `CSeq: ${req.getHeader('cseq')}`, `Contact: <${sip.contact}>`);
    if (body) lines.push('Content-Type: application/sdp');
    lines.push(`Content-Length: ${Buffer.byteLength(body || '')}`, '', body || '');
    return sip.send(lines.join('\r\n'));
  }

  async function openPhone(who) {
    const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    const page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(`${who}: ${e.message}`));
    await page.goto(`${base}/phone/`);
    page.who = who;
    await page.fill('#user', who);
    await page.fill('#domain', DOMAIN);
    await page.uncheck('#video'); // a plain phone has audio only
    await page.click('#register');
    await page.waitForSelector('body[data-reg-state="registered"]', { state: 'attached', timeout: WAIT });
    return page;
  }

  const waitCall = (page, state) =>
    page.waitForSelector(`body[data-call-state="${state}"]`, { state: 'attached', timeout: WAIT });

  // The browser's view of the call: the SDP it was given and its inbound audio.
  function browserSide(page) {
    return page.evaluate(async () => {
      const pc = window.phone.pc;
      if (!pc) return null;
      const out = { remote: pc.remoteDescription && pc.remoteDescription.sdp, packets: 0, pair: '' };
      const stats = await pc.getStats();
      stats.forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'audio') out.packets += s.packetsReceived || 0;
        if (s.type === 'transport') out.dtls = `${s.dtlsState}/${s.iceState}/${pc.connectionState}`;
        if (s.type === 'transport' && s.selectedCandidatePairId) {
          const pair = stats.get(s.selectedCandidatePairId);
          const local = pair && stats.get(pair.localCandidateId);
          const remote = pair && stats.get(pair.remoteCandidateId);
          if (local && remote) out.pair = `${local.address}:${local.port} -> ${remote.address}:${remote.port}`;
        }
      });
      return out;
    });
  }

  // Media both ways: the browser receives RTP and the peer PCMU from rtpengine's addr:port.
  async function waitMedia(t, page, rtp, engine) {
    const until = Date.now() + WAIT;
    let seen;
    while (Date.now() < until) {
      seen = await browserSide(page);
      if (seen && seen.packets > 0 && rtp.received(engine.addr, engine.port) > 0) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const fromEngine = rtp.received(engine.addr, engine.port);
    t.diagnostic(`browser: ${seen && seen.packets} packets in over ${seen && seen.pair}; ` +
      `RTP peer: ${fromEngine} from ${engine.addr}:${engine.port}, all: ${JSON.stringify([...rtp.from])}`);
    const logs = () => `\n--- rtpengine ---\n${rtpengine.log().slice(-6000)}\n--- sipedge ---\n${daemon.log().slice(-4000)}`;
    assert.ok(seen && seen.packets > 0, `the browser receives audio: ${JSON.stringify(seen)}${logs()}`);
    assert.ok(fromEngine > 0, `the RTP peer receives PCMU from rtpengine ${engine.addr}:${engine.port}: ` +
      JSON.stringify([...rtp.from]) + logs());
    // Nothing reaches the peer from anywhere but rtpengine's plain-side port.
    for (const key of rtp.from.keys()) assert.equal(key, `${engine.addr}:${engine.port}`);
    return seen;
  }

  async function noSessionLeft() {
    for (let i = 0; i < 30 && (await rtpengine.calls()).length; i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await rtpengine.calls(), [], 'no session left in rtpengine');
  }

  test('the browser calls a plain RTP phone through rtpengine: media both ways, each side its SDP', async (t) => {
    const { sip, rtp } = await plainPhone(t);
    const alice = await openPhone('alice');
    t.after(() => alice.context().close());

    await alice.fill('#target', 'carol');
    await alice.click('#call-button');
    const inv = await sip.next((m) => m.method === 'INVITE', WAIT);
    assert.ok(inv, 'the INVITE reaches the plain phone');
    const engine = assertPlainSdp(inv.body, rtpengine);
    assert.deepEqual(await rtpengine.calls(), [inv.call_id], 'the call is anchored');

    await respond(sip, inv, 180, 'Ringing', { toTag: 'c1' });
    await respond(sip, inv, 200, 'OK', { toTag: 'c1', body: plainSdp(rtp.port) });
    const ack = await sip.next((m) => m.method === 'ACK' && m.call_id === inv.call_id, WAIT);
    assert.ok(ack, 'the ACK reaches the plain phone');
    await waitCall(alice, 'confirmed');
    rtp.start(engine.addr, engine.port);

    const seen = await waitMedia(t, alice, rtp, engine);
    assertWebrtcSdp(seen.remote, rtpengine);
    await alice.screenshot({ path: artifactPath('media-browser-calls-plain-alice'), fullPage: true });

    rtp.stop();
    await alice.click('#hangup');
    const bye = await sip.next((m) => m.method === 'BYE' && m.call_id === inv.call_id, WAIT);
    assert.ok(bye, 'the BYE reaches the plain phone');
    await respond(sip, bye, 200, 'OK');
    await waitCall(alice, 'ended');
    await noSessionLeft();
  });

  test('a plain RTP phone calls the browser through rtpengine: media both ways, each side its SDP', async (t) => {
    const { sip, rtp } = await plainPhone(t);
    const alice = await openPhone('alice');
    t.after(() => alice.context().close());

    const callId = `plain-${rand(8)}`;
    const l = sip.local;
    const body = plainSdp(rtp.port);
    await sip.send([`INVITE sip:alice@${DOMAIN} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${l.port};rport;branch=z9hG4bK${rand()}`, 'Max-Forwards: 70',
      `To: <sip:alice@${DOMAIN}>`, `From: <sip:carol@${DOMAIN}>;tag=p1`, `Call-ID: ${callId}`,
      'CSeq: 1 INVITE', `Contact: <${sip.contact}>`, 'Content-Type: application/sdp',
      `Content-Length: ${Buffer.byteLength(body)}`, '', body].join('\r\n'));
    await waitCall(alice, 'incoming');
    // The offer the browser was given, before it answers.
    const offer = await alice.evaluate(() => window.phone.session._request.body);
    assertWebrtcSdp(offer, rtpengine);
    await alice.click('#answer');

    const ok = await sip.next((m) => m.status_code === 200 && m.call_id === callId, WAIT);
    assert.ok(ok, 'the plain phone gets the 200');
    const engine = assertPlainSdp(ok.body, rtpengine);
    const routes = routeSet(ok, true);
    const contact = /<([^>]+)>/.exec(ok.getHeader('contact'))[1];
    const inDialog = (method, cseq) => [`${method} ${contact} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${l.port};rport;branch=z9hG4bK${rand()}`, 'Max-Forwards: 70',
      ...routes.map((r) => `Route: ${r}`), `To: <sip:alice@${DOMAIN}>;tag=${tagOf(ok.getHeader('to'))}`,
      `From: <sip:carol@${DOMAIN}>;tag=p1`, `Call-ID: ${callId}`, `CSeq: ${cseq} ${method}`,
      'Content-Length: 0', '', ''].join('\r\n');
    await sip.send(inDialog('ACK', 1));
    await waitCall(alice, 'confirmed');
    rtp.start(engine.addr, engine.port);

    const seen = await waitMedia(t, alice, rtp, engine);
    assertWebrtcSdp(seen.remote, rtpengine);
    await alice.screenshot({ path: artifactPath('media-plain-calls-browser-alice'), fullPage: true });

    rtp.stop();
    await sip.send(inDialog('BYE', 2));
    const done = await sip.next((m) => m.status_code >= 200 && m.call_id === callId && m.method === 'BYE', WAIT);
    assert.equal(done && done.status_code, 200, 'the BYE is answered');
    await waitCall(alice, 'ended');
    await noSessionLeft();
  });
}
