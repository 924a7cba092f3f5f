'use strict';
// Real Chromium for tests: Debian's /usr/bin/chromium driven by playwright-core, fake camera and
// microphone, WebRTC allowed on loopback; and a throw-away CA with a server certificate for
// 127.0.0.1 and ::1 so that pages can be served over https/wss. See doc/testing.md for why each
// flag is there.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { ROOT } = require('./daemon');

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const ARTIFACTS = process.env.BROWSER_ARTIFACTS || path.join(ROOT, 'build', 'browser-artifacts');

function openssl(args, cwd) {
  return execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

// A CA and a server certificate it signed (P-256, valid two days, SAN IP:127.0.0.1 and IP:::1).
// Returns the file names and the base64 SHA-256 of the server key's SPKI, the form Chromium's
// --ignore-certificate-errors-spki-list takes.
function makeTestCA() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipedge-ca-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2',
    '-subj', '/CN=sipedge test CA', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'], dir);
  fs.writeFileSync(path.join(dir, 'server.ext'), [
    'subjectAltName=IP:127.0.0.1,IP:::1',
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
  ].join('\n'));
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key',
    '-CAcreateserial', '-days', '2', '-extfile', 'server.ext', '-out', 'server.crt'], dir);
  openssl(['verify', '-CAfile', 'ca.crt', 'server.crt'], dir);
  const pub = openssl(['x509', '-in', 'server.crt', '-noout', '-pubkey'], dir);
  const der = execFileSync('openssl', ['pkey', '-pubin', '-outform', 'der'], { input: pub });
  const spki = require('node:crypto').createHash('sha256').update(der).digest('base64');
  return {
    dir,
    ca: path.join(dir, 'ca.crt'),
    cert: path.join(dir, 'server.crt'),
    key: path.join(dir, 'server.key'),
    spki,
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

// options.spki: SPKI hashes of server certificates to trust (our test CA's server certificate).
async function launchBrowser(options = {}) {
  const args = [
    // Camera and microphone: a generated test pattern and tone, granted without a prompt.
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
    // Loopback ICE candidates: with only `lo` (a network namespace, a bare CI box) there are no
    // candidates at all without this.
    '--allow-loopback-in-peer-connection',
    // The machine has no way out: don't let Chromium try (each try is refused or times out).
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-gpu',
    '--no-first-run',
  ];
  if (options.spki && options.spki.length)
    args.push(`--ignore-certificate-errors-spki-list=${options.spki.join(',')}`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args });
}

function artifactPath(name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  return path.join(ARTIFACTS, `${name.replace(/[^\w.-]+/g, '_')}.png`);
}

// Packets received by a page's current call, per kind (inbound-rtp), and the ICE pair that
// carries them for diagnostics. The demo phone exposes its RTCPeerConnection as window.phone.pc,
// the SIP.js test page as window.sipjs.pc.
function inboundRtp(page) {
  return page.evaluate(async () => {
    const conn = (window.sipjs || window.phone || {}).pc;
    const out = { audio: 0, video: 0 };
    if (!conn) return out;
    const stats = await conn.getStats();
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp') out[s.kind] += s.packetsReceived || 0;
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

// Until the page's call receives audio and video, or fails after ms.
async function waitMedia(page, ms = 15000) {
  const until = Date.now() + ms;
  let got;
  while (Date.now() < until) {
    got = await inboundRtp(page);
    if (got.audio > 0 && got.video > 0) return got;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${page.who}: no media received: ${JSON.stringify(got)}`);
}

module.exports = { makeTestCA, launchBrowser, artifactPath, inboundRtp, waitMedia, ARTIFACTS, CHROMIUM };
