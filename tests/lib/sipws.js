'use strict';
// A scripted SIP user agent over WebSocket for call-flow tests: it sends exactly the messages a
// test writes and lets the test assert on every message it receives. Messages are parsed with
// JsSIP's own parser (the same grammar browsers use).
const crypto = require('node:crypto');
const WebSocket = require('ws');
const Parser = require('jssip/lib/Parser');
const { MessageQueue } = require('./msgqueue');

const rand = (n = 8) => crypto.randomBytes(n).toString('hex');

class SipWs {
  constructor(ws, { user, domain }) {
    this.ws = ws;
    this.user = user;
    this.domain = domain;
    this.host = `${rand(5)}.invalid`;
    this.contactUri = `sip:${user}-${rand(4)}@${this.host};transport=ws`;
    this.inbox = new MessageQueue();
    this.raw = [];
    this.closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
    ws.on('message', (data) => {
      const text = data.toString();
      this.raw.push(text);
      if (/^\s*$/.test(text)) return;
      const msg = Parser.parseMessage(text, null);
      if (!msg) throw new Error(`unparsable message from sipedge:\n${text}`);
      msg.text = text;
      this.inbox.push(msg);
    });
  }

  static async connect(url, opts) {
    const ws = new WebSocket(url, 'sip', opts.wsOptions || {});
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    return new SipWs(ws, opts);
  }

  get aor() { return `sip:${this.user}@${this.domain}`; }

  // Wait for the next received message matching pred (already queued ones count).
  expect(pred, what = 'message', timeout = 5000) {
    return this.inbox.wait(pred, timeout, () => {
      const seen = this.inbox.queue.map((m) => (m.method && !m.status_code ? m.method : `${m.status_code} ${m.reason_phrase}`)).join(', ');
      throw new Error(`${this.user}: timed out waiting for ${what} (queued: ${seen || 'none'})`);
    });
  }

  expectRequest(method, timeout) {
    return this.expect((m) => !m.status_code && m.method === method, `${method} request`, timeout);
  }

  // The response to method with this status, or (status undefined) the next final response.
  expectResponse(method, status, timeout) {
    return this.expect(
      (m) => m.status_code && m.cseq !== undefined && m.method === method &&
        (status === undefined ? m.status_code >= 200 : m.status_code === status),
      `${status || 'final'} response to ${method}`, timeout);
  }

  // Nothing matching pred arrives within ms.
  async expectNothing(pred, ms = 1000) {
    try {
      const m = await this.expect(pred, 'nothing', ms);
      throw new Error(`${this.user}: unexpected message:\n${m.text}`);
    } catch (e) {
      if (!/timed out/.test(e.message)) throw e;
    }
  }

  send(text) { this.ws.send(text); }

  close() { this.ws.close(); return this.closed; }

  // Build a request. opts: method, ruri, to, toTag, fromTag, callId, cseq, routes, headers, body, branch
  request(opts) {
    const method = opts.method;
    const body = opts.body || '';
    const branch = opts.branch || `z9hG4bK${rand()}`;
    const lines = [
      `${method} ${opts.ruri} SIP/2.0`,
      `Via: SIP/2.0/WS ${this.host};branch=${branch}`,
      `Max-Forwards: ${opts.maxForwards ?? 70}`,
      ...(opts.routes || []).map((r) => `Route: ${r}`),
      `To: <${opts.to || opts.ruri}>${opts.toTag ? `;tag=${opts.toTag}` : ''}`,
      `From: <${this.aor}>;tag=${opts.fromTag || rand(4)}`,
      `Call-ID: ${opts.callId || rand(10)}`,
      `CSeq: ${opts.cseq || 1} ${opts.cseqMethod || method}`,
      `Contact: <${this.contactUri}>${opts.contactParams || ''}`,
      ...(opts.headers || []),
    ];
    if (body) lines.push('Content-Type: application/sdp');
    lines.push(`Content-Length: ${Buffer.byteLength(body)}`, '', body);
    return { text: lines.join('\r\n'), branch };
  }

  // Respond to a received request: Via, From, To (+tag), Call-ID, CSeq copied; Record-Route
  // copied for dialog-creating responses (§12.1.1).
  respond(req, status, reason, opts = {}) {
    const lines = [`SIP/2.0 ${status} ${reason}`];
    for (const v of req.getHeaders('via')) lines.push(`Via: ${v}`);
    if (req.method === 'INVITE' && status > 100 && status < 300)
      for (const rr of req.getHeaders('record-route')) lines.push(`Record-Route: ${rr}`);
    let to = req.getHeader('to');
    if (status > 100 && !/;\s*tag=/.test(to)) to += `;tag=${opts.toTag || rand(4)}`;
    lines.push(`To: ${to}`, `From: ${req.getHeader('from')}`, `Call-ID: ${req.call_id}`,
      `CSeq: ${req.getHeader('cseq')}`);
    if (status >= 200 && status < 300 || status === 180)
      lines.push(`Contact: <${this.contactUri}>`);
    for (const h of opts.headers || []) lines.push(h);
    const body = opts.body || '';
    if (body) lines.push('Content-Type: application/sdp');
    lines.push(`Content-Length: ${Buffer.byteLength(body)}`, '', body);
    this.send(lines.join('\r\n'));
  }

  // The callee's end of a call: ring, answer inv with 200 (To tag toTag), then wait for the ACK
  // and the caller's BYE, which is answered 200. Resolves { ack, bye }.
  async answerCall(inv, toTag = 'at') {
    this.respond(inv, 180, 'Ringing', { toTag });
    this.respond(inv, 200, 'OK', { toTag, body: sdp(toTag) });
    const ack = await this.expectRequest('ACK', 10000);
    const bye = await this.expectRequest('BYE', 10000);
    this.respond(bye, 200, 'OK');
    return { ack, bye };
  }

  // The caller's end of a call answered 200 (ok: the 200 to the INVITE it sent to ruri with
  // fromTag and callId): ACK along the route set, then BYE. Resolves the BYE's final response.
  async ackAndBye(ok, { ruri, fromTag, callId }) {
    const routes = routeSet(ok, true);
    const contact = /<([^>]+)>/.exec(ok.getHeader('contact'))[1];
    const toTag = tagOf(ok.getHeader('to'));
    this.send(this.request({ method: 'ACK', ruri: contact, to: ruri, toTag, fromTag, callId, cseq: 1, routes }).text);
    await new Promise((r) => setTimeout(r, 200));
    this.send(this.request({ method: 'BYE', ruri: contact, to: ruri, toTag, fromTag, callId, cseq: 2, routes }).text);
    return this.expectResponse('BYE', undefined, 10000);
  }

  async register(opts = {}) {
    const expires = opts.expires ?? 600;
    const params = opts.instance
      ? `;+sip.instance="<urn:uuid:${opts.instance}>";reg-id=1;expires=${expires}`
      : `;expires=${expires}`;
    const { text } = this.request({
      method: 'REGISTER', ruri: `sip:${this.domain}`, to: this.aor, callId: this.regCallId ||= rand(10),
      cseq: this.regCseq = (this.regCseq || 0) + 1, contactParams: params,
      headers: opts.instance ? ['Supported: path, outbound, gruu'] : [],
    });
    this.send(text);
    return this.expectResponse('REGISTER', undefined, opts.timeout);
  }
}

function sdp(tag) {
  return ['v=0', `o=- ${Date.now()} 1 IN IP4 127.0.0.1`, `s=${tag}`, 'c=IN IP4 127.0.0.1', 't=0 0',
    'm=audio 40000 RTP/AVP 0', 'a=rtpmap:0 PCMU/8000', ''].join('\r\n');
}

// Route set from a dialog-creating message's Record-Route headers (UAC: reversed).
// Upgrade with the given subprotocols; resolves { status, body } for a refused handshake or
// { ws } for an accepted one.
function handshake(url, protocols, options = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, options);
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (b) => { body += b; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    ws.once('open', () => resolve({ ws }));
    ws.once('error', (e) => { if (!/Unexpected server response/.test(e.message)) reject(e); });
  });
}

function routeSet(msg, asUac) {
  const rr = msg.getHeaders('record-route').flatMap((h) => h.split(/,(?=\s*<)/).map((s) => s.trim()));
  return asUac ? rr.reverse() : rr;
}

function tagOf(header) {
  const m = /;\s*tag=([^;\s]+)/.exec(header);
  return m ? m[1] : undefined;
}

module.exports = { SipWs, sdp, routeSet, tagOf, rand, handshake };
