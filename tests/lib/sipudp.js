'use strict';
// A scripted SIP peer over UDP for tests: sends the exact text a test writes, collects every
// datagram that comes back and parses it with JsSIP's parser.
//   const p = await SipUdp.open({ port: d.ports.udp });
//   p.send(p.options().text); const r = await p.expectStatus('OPTIONS');
const dgram = require('node:dgram');
const Parser = require('jssip/lib/Parser');
const { rand } = require('./sipws');
const { MessageQueue } = require('./msgqueue');

class SipUdp {
  constructor(sock, { host, port, domain }) {
    this.sock = sock;
    this.host = host;
    this.port = port;
    this.domain = domain || 'example.com';
    this.local = sock.address();
    this.inbox = new MessageQueue();
    sock.on('message', (buf) => {
      const text = buf.toString('latin1');
      const msg = /^\s*$/.test(text) ? null : Parser.parseMessage(text, null);
      if (!msg) return;
      msg.text = text;
      this.inbox.push(msg);
    });
  }

  static open({ host = '127.0.0.1', port, domain }) {
    const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    return new Promise((resolve) => sock.bind(0, host, () => resolve(new SipUdp(sock, { host, port, domain }))));
  }

  close() { return new Promise((resolve) => this.sock.close(resolve)); }

  send(text) {
    return new Promise((resolve, reject) =>
      this.sock.send(Buffer.isBuffer(text) ? text : Buffer.from(text, 'latin1'), this.port, this.host,
        (e) => (e ? reject(e) : resolve())));
  }

  // The next received message matching pred; null after timeout ms (silence is an answer too).
  next(pred = () => true, timeout = 3000) {
    return this.inbox.wait(pred, timeout, () => null);
  }

  // The final response for this Call-ID (or any final response), null on silence.
  final(callId, timeout) {
    return this.next((m) => m.status_code >= 200 && (!callId || m.call_id === callId), timeout);
  }

  // A request as text. opts: method, ruri, to, callId, cseq, headers, body, user
  request(opts = {}) {
    const method = opts.method || 'OPTIONS';
    const ruri = opts.ruri || `sip:${this.domain}`;
    const callId = opts.callId || rand(10);
    const body = opts.body || '';
    const lines = [
      `${method} ${ruri} SIP/2.0`,
      `Via: SIP/2.0/UDP ${this.local.address.includes(':') ? `[${this.local.address}]` : this.local.address}:${this.local.port};rport;branch=z9hG4bK${rand()}`,
      'Max-Forwards: 70',
      `To: <${opts.to || ruri}>`,
      `From: <sip:${opts.user || 'probe'}@${this.domain}>;tag=${rand(4)}`,
      `Call-ID: ${callId}`,
      `CSeq: ${opts.cseq || 1} ${method}`,
      ...(opts.headers || []),
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ];
    return { text: lines.join('\r\n'), callId };
  }
}

module.exports = { SipUdp };
