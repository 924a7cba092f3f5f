'use strict';
// JsSIP from npm as a phone in node tests: a UA on ws://127.0.0.1:PORT that registers at once.
//   const alice = startUa({ port: d.ports.ws, user: 'alice', domain, password });
//   await alice.registration  -> { ok: true } or { ok: false, status, cause }
//   alice.ua.sendMessage(...); alice.ua.stop();
global.WebSocket = global.WebSocket || require('ws');
const JsSIP = require('jssip');

JsSIP.debug.disable('JsSIP:*');

function startUa({ port, user, domain, password }) {
  const ua = new JsSIP.UA({
    sockets: [new JsSIP.WebSocketInterface(`ws://127.0.0.1:${port}`)], uri: `sip:${user}@${domain}`,
    password, register: true, session_timers: false, connection_recovery_min_interval: 1,
  });
  const registration = new Promise((resolve) => {
    ua.once('registered', () => resolve({ ok: true }));
    ua.once('registrationFailed', (e) => resolve({ ok: false, status: e.response && e.response.status_code, cause: e.cause }));
  });
  ua.start();
  return { ua, registration };
}

module.exports = { startUa, JsSIP };
