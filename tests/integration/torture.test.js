'use strict';
// The torture messages of RFC 4475 (SIP) and RFC 5118 (SIP over IPv6), byte for byte as the RFCs
// define them (tests/torture/<rfc>/<section>-<name>.dat), sent over UDP to the real daemon. Each
// gets the answer the RFC expects of a proxy and registrar for the domain example.com; where the
// RFC allows two behaviours, doc/testing.md says which one sipedge chose.
//
// The messages are not rewritten, so their Via headers name hosts of the RFCs' example networks:
// without rport, RFC 3261 §18.2.2 sends the answer to the source address at the Via's port
// (5060 unless it says otherwise). The test sends from a random 127/8 address and listens there
// on every port the messages' Vias name.
const test = require('node:test');
const assert = require('node:assert/strict');
const dgram = require('node:dgram');
const fs = require('node:fs');
const path = require('node:path');
const { startDaemon } = require('../lib/daemon');

const DIR = path.join(__dirname, '..', 'torture');
const VIA_PORTS = [5060, 5050, 6050, 19823];
const CONFIG = 'http = { web_root = ""; };\nlimits = { requests_per_second = 0; };\n';

// [file, status (null: no answer may come), reason pattern, message whose answer it gets]
const RFC4475 = [
  // §3.1.1 valid messages: parsed and routed (users of example.com are not registered: 404; other
  // domains are not relayed for an unauthenticated stranger: 403)
  ['3.1.1.1-wsinv', 403, /Relaying Denied/],
  ['3.1.1.2-intmeth', 400, /Malformed Request-Line/], // sofia-sip refuses + and ` in a method: see doc/testing.md
  ['3.1.1.3-esc01', 403, /Relaying Denied/],
  ['3.1.1.4-escnull', 200, /OK/],
  ['3.1.1.5-esc02', 403, /Relaying Denied/],
  ['3.1.1.6-lwsdisp', 404, /Not Found/],
  ['3.1.1.7-longreq', 404, /Not Found/],
  ['3.1.1.8-dblreq', 200, /OK/],
  ['3.1.1.9-semiuri', 404, /Not Found/],
  ['3.1.1.10-transports', 404, /Not Found/],
  ['3.1.1.11-mpart01', 403, /Relaying Denied/], // a body with NUL octets is a body
  ['3.1.1.12-unreason', null], // responses that match no transaction are dropped
  ['3.1.1.13-noreason', null],
  // §3.1.2 invalid messages
  ['3.1.2.1-badinv01', 400, /Malformed Via header/],
  ['3.1.2.2-clerr', 400, /Body shorter than Content-Length/],
  ['3.1.2.3-ncl', 400, /Malformed Content-Length header/],
  ['3.1.2.4-scalar02', 400, /Malformed CSeq header/],
  ['3.1.2.5-scalarlg', null],
  ['3.1.2.6-quotbal', 400, /Malformed To header/],
  ['3.1.2.7-ltgtruri', 400, /Malformed Request-URI/],
  ['3.1.2.8-lwsruri', 400, /Malformed Request-URI/],
  ['3.1.2.9-lwsstart', 404, /Not Found/], // liberal: the extra SP are ignored
  ['3.1.2.10-trws', 404, /Not Found/], // liberal: the trailing SP are ignored
  ['3.1.2.11-escruri', 400, /Request-URI must not have headers/],
  ['3.1.2.12-baddate', 404, /Not Found/], // liberal: Date is not used
  ['3.1.2.13-regbadct', 400, /Malformed Contact header/],
  ['3.1.2.14-badaspec', 403, /Relaying Denied/], // liberal: the spaces are ignored
  ['3.1.2.15-baddn', 400, /Malformed From header/],
  ['3.1.2.16-badvers', 505, /Version Not Supported/],
  ['3.1.2.17-mismatch01', 400, /CSeq method does not match/],
  ['3.1.2.18-mismatch02', 400, /CSeq method does not match/],
  ['3.1.2.19-bigcode', null],
  // §3.2 transaction layer, §3.3 application layer, §3.4 backward compatibility
  ['3.2.1-badbranch', 404, /Not Found/],
  ['3.3.1-insuf', 400, /Missing From header/],
  ['3.3.2-unkscm', 416, /Unsupported URI Scheme/],
  ['3.3.3-novelsc', 416, /Unsupported URI Scheme/],
  ['3.3.4-unksm2', 400, /To must be a sip or sips URI/],
  ['3.3.5-bext01', 420, /Bad Extension/],
  ['3.3.6-invut', 404, /Not Found/],
  ['3.3.7-regaut01', 200, /OK/], // --no-auth: the unknown scheme is not looked at
  ['3.3.8-multi01', 400, /Duplicate CSeq header/],
  ['3.3.9-mcl01', 400, /Malformed Content-Length header/],
  ['3.3.10-bcast', null],
  ['3.3.11-zeromf', 483, /Too Many Hops/],
  ['3.3.12-cparam01', 200, /OK/],
  // Same branch, sent-by and method as §3.3.12: by RFC 3261 §17.2.3 a retransmission of it, so
  // the answer to §3.3.12 is sent again.
  ['3.3.13-cparam02', 200, /OK/, '3.3.12-cparam01'],
  ['3.3.14-regescrt', 200, /OK/, '3.1.1.4-escnull'], // likewise: §3.1.1.4's branch and sent-by
  ['3.3.15-sdp01', 404, /Not Found/],
  ['3.4.1-inv2543', 404, /Not Found/],
];

const RFC5118 = [
  ['4.1-ipv6-good', 403, /Relaying Denied/],
  ['4.2-ipv6-bad', 400, /Malformed Request-URI/],
  ['4.3-port-ambiguous', 403, /Relaying Denied/],
  ['4.4-port-unambiguous', 403, /Relaying Denied/],
  ['4.5-via1-valid', 403, /Relaying Denied/],
  ['4.5-via2-valid', 403, /Relaying Denied/],
  ['4.6-ipv6-in-sdp', 403, /Relaying Denied/],
  ['4.7-mult-ip-in-header', 403, /Relaying Denied/],
  ['4.8-mult-ip-in-sdp', 403, /Relaying Denied/],
  ['4.9-ipv4-mapped-ipv6', 404, /Not Found/],
  ['4.10-ipv6-bug-abnf-3-colons', 403, /Relaying Denied/], // accepted too: see doc/testing.md
  ['4.10-ipv6-correct-abnf-2-colons', 403, /Relaying Denied/],
];

// The Call-ID and CSeq number of a message, read from its raw text (long or compact form,
// folded or not), to pick out the answer to it among retransmissions of earlier ones.
function ids(text) {
  const unfolded = text.split(/\r?\n\r?\n/)[0].replace(/\r?\n[ \t]+/g, ' ');
  const callId = /^(?:Call-ID|i)[ \t]*:[ \t]*(\S+)/im.exec(unfolded);
  const cseq = /^CSeq[ \t]*:[ \t]*0*(\d+)/im.exec(unfolded);
  return { callId: callId && callId[1], cseq: cseq && cseq[1] };
}

async function listen(host) {
  const socks = [];
  const inbox = [];
  for (const port of VIA_PORTS) {
    const s = dgram.createSocket('udp4');
    await new Promise((resolve, reject) => { s.once('error', reject); s.bind(port, host, resolve); });
    s.on('message', (b) => inbox.push(b.toString('latin1')));
    socks.push(s);
  }
  return { socks, inbox };
}

// The first final answer to the message with these ids, or null after wait ms.
async function answerTo({ callId, cseq }, inbox, wait) {
  const deadline = Date.now() + wait;
  for (;;) {
    const hit = inbox.find((t) => {
      const r = ids(t);
      return /^SIP\/2\.0 [2-6]\d\d /.test(t) && r.callId === callId && (r.cseq === cseq || !r.cseq);
    });
    if (hit || Date.now() > deadline) return hit || null;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function runCorpus(t, rfc, corpus) {
  const d = await startDaemon({ listen: ['udp:127.0.0.1:0', 'ws:127.0.0.1:0'], args: ['--no-auth'], config: CONFIG });
  t.after(() => d.stop());
  const host = `127.${1 + Math.floor(Math.random() * 254)}.${Math.floor(Math.random() * 256)}.${1 + Math.floor(Math.random() * 254)}`;
  const { socks, inbox } = await listen(host);
  t.after(() => socks.forEach((s) => s.close()));
  const files = fs.readdirSync(path.join(DIR, rfc)).map((f) => f.replace(/\.dat$/, '')).sort();
  assert.deepEqual(files, corpus.map((c) => c[0]).sort(), `every ${rfc} message has an expected answer`);
  const read = (name) => fs.readFileSync(path.join(DIR, rfc, `${name}.dat`));
  for (const [name, status, reason, answeredAs] of corpus) {
    const raw = read(name);
    inbox.length = 0;
    await new Promise((resolve, reject) => socks[0].send(raw, d.ports.udp, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
    const answer = await answerTo(ids((answeredAs ? read(answeredAs) : raw).toString('latin1')), inbox, status === null ? 600 : 3000);
    const line = answer && answer.split('\r\n')[0];
    if (status === null) {
      assert.equal(line, null, `${rfc} §${name}: no answer expected`);
      continue;
    }
    assert.ok(line, `${rfc} §${name}: no answer; got ${JSON.stringify(inbox.map((x) => x.slice(0, 400)))}`);
    const m = /^SIP\/2\.0 (\d+) (.*)$/.exec(line);
    assert.equal(Number(m[1]), status, `${rfc} §${name}: ${line}`);
    assert.match(m[2], reason, `${rfc} §${name}: ${line}`);
  }
  // Every 400 the log reports was sent, and nothing was refused for a NUL inside a body or a
  // quoted-pair.
  assert.doesNotMatch(d.log(), /NUL byte/);
  const options = `OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP ${host}:5060;branch=z9hG4bKalive\r\n` +
    'Max-Forwards: 70\r\nTo: <sip:example.com>\r\nFrom: <sip:probe@example.com>;tag=1\r\nCall-ID: alive\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n';
  inbox.length = 0;
  socks[0].send(options, d.ports.udp, '127.0.0.1');
  const alive = await answerTo({ callId: 'alive', cseq: '1' }, inbox, 3000);
  assert.match(alive || '', /^SIP\/2\.0 200 /, 'still serving after the corpus');
}

test('RFC 4475 torture messages over UDP: each gets the answer the RFC expects', (t) => runCorpus(t, 'rfc4475', RFC4475));
test('RFC 5118 IPv6 torture messages over UDP: each gets the answer the RFC expects', (t) => runCorpus(t, 'rfc5118', RFC5118));
