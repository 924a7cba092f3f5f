// A SIP.js phone for the browser tests: SIP.js's own Web.SimpleUser with its default settings;
// only what a user must give is set (server, AOR, credentials, the media elements, and video).
// Bundled with esbuild by tests/browser/sipjs_call.test.js; the bundle is not committed.
import { Web } from 'sip.js';

const $ = (id) => document.getElementById(id);
const body = document.body;

function log(text) {
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  $('log').prepend(li);
}

function setError(text) {
  $('error').textContent = text || '';
  if (text) body.dataset.error = text;
  else delete body.dataset.error;
  if (text) log(`error: ${text}`);
}

function setRegState(state) {
  body.dataset.regState = state;
  $('reg-state').textContent = state;
}

function setCallState(state, peer) {
  body.dataset.callState = state;
  $('call-state').textContent = state;
  if (peer !== undefined) $('peer').textContent = peer;
}

let user = null;

const delegate = {
  onServerConnect: () => log('connected'),
  onServerDisconnect: (e) => log(`disconnected${e ? `: ${e.message}` : ''}`),
  onRegistered: () => { log('registered'); setRegState('registered'); },
  onUnregistered: () => { log('unregistered'); if (body.dataset.regState !== 'failed') setRegState('unregistered'); },
  onCallCreated: () => log('call created'),
  onCallReceived: () => {
    const from = user.session && user.session.remoteIdentity.uri.toString();
    log(`incoming call from ${from}`);
    setCallState('incoming', `from ${from}`);
  },
  onCallAnswered: () => { log('call answered'); setCallState('confirmed'); },
  onCallHangup: () => { log('call ended'); setCallState('ended'); },
};

async function register(ev) {
  ev.preventDefault();
  setError('');
  const domain = $('domain').value.trim();
  const name = $('user').value.trim();
  user = new Web.SimpleUser($('server').value.trim(), {
    aor: `sip:${name}@${domain}`,
    delegate,
    media: {
      constraints: { audio: true, video: true },
      local: { video: $('local-video') },
      remote: { video: $('remote-video') },
    },
    userAgentOptions: {
      authorizationUsername: name,
      authorizationPassword: $('password').value,
      logLevel: 'warn',
    },
  });
  window.sipjs.user = user;
  setRegState('registering');
  try {
    await user.connect();
    await user.register({
      requestDelegate: {
        onReject: (r) => {
          const m = r.message;
          setError(`registration failed: ${m.statusCode} ${m.reasonPhrase}`);
          setRegState('failed');
        },
      },
    });
  } catch (err) {
    setError(`cannot register: ${err.message || err}`);
    setRegState('failed');
  }
}

async function unregister() {
  if (!user) return;
  await user.unregister();
}

async function call(ev) {
  ev.preventDefault();
  setError('');
  const target = $('target').value.trim();
  setCallState('calling', `to ${target}`);
  try {
    await user.call(target, undefined, {
      requestDelegate: {
        onReject: (r) => setError(`${r.message.statusCode} ${r.message.reasonPhrase}`),
      },
    });
  } catch (err) {
    setError(`cannot call ${target}: ${err.message || err}`);
    setCallState('ended');
  }
}

async function answer() {
  try {
    await user.answer();
  } catch (err) {
    setError(`cannot answer: ${err.message || err}`);
  }
}

async function hangup() {
  try {
    await user.hangup();
  } catch (err) {
    setError(`cannot hang up: ${err.message || err}`);
  }
}

window.sipjs = {
  user: null,
  // The current call's RTCPeerConnection, for getStats in tests.
  get pc() {
    const s = user && user.session;
    return (s && s.sessionDescriptionHandler && s.sessionDescriptionHandler.peerConnection) || null;
  },
};

const params = new URLSearchParams(location.search);
for (const id of ['server', 'user', 'password', 'domain', 'target']) $(id).value = params.get(id) || '';
$('reg-form').addEventListener('submit', register);
$('unregister').addEventListener('click', unregister);
$('call-form').addEventListener('submit', call);
$('answer').addEventListener('click', answer);
$('hangup').addEventListener('click', hangup);
