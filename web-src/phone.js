// The sipedge demo softphone: JsSIP over the WebSocket of the server that served this page.
//
// State is written to <body> as data attributes (data-reg-state, data-call-state, data-error) so
// that people see it through CSS and tests can wait on it. window.phone exposes the UA, the
// current session and its RTCPeerConnection for tests (getStats).
import JsSIP from 'jssip';

const $ = (id) => document.getElementById(id);
const body = document.body;

// Per-tab memory that survives a reload (sessionStorage): the form values, whether we were
// registered, and the RFC 5626 instance id. Keeping the instance id across a reload makes the
// new REGISTER replace the binding of the page that went away instead of adding a second one.
const store = {
  get(key) {
    try { return sessionStorage.getItem(`sipedge.${key}`); } catch { return null; }
  },
  set(key, value) {
    try {
      if (value === null) sessionStorage.removeItem(`sipedge.${key}`);
      else sessionStorage.setItem(`sipedge.${key}`, value);
    } catch { /* storage disabled: the page still works, a reload just forgets */ }
  },
};

// The WebSocket is on the same host and port as the page, path "/": wss behind https.
function defaultServer() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/`;
}

// An RFC 4122 version 4 UUID; crypto.randomUUID exists only in secure contexts.
function uuid() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function instanceId() {
  let id = store.get('instance');
  if (!id) {
    id = uuid();
    store.set('instance', id);
  }
  return id;
}

function log(text) {
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  $('log').prepend(li);
  while ($('log').children.length > 100) $('log').lastChild.remove();
}

function showError(text) {
  $('error').textContent = text || '';
  if (text) body.dataset.error = text;
  else delete body.dataset.error;
  if (text) log(`error: ${text}`);
}

// "404 Not Found" when a response caused it, else JsSIP's cause ("Canceled", "Connection Error").
function describe(e) {
  const msg = e && e.message;
  if (msg && msg.status_code) return `${msg.status_code} ${msg.reason_phrase || ''}`.trim();
  if (e && e.response && e.response.status_code)
    return `${e.response.status_code} ${e.response.reason_phrase || ''}`.trim();
  return (e && e.cause) || 'unknown error';
}

let ua = null;
let session = null;
let localStream = null;

function setRegState(state, text) {
  body.dataset.regState = state;
  $('reg-state').textContent = text || state;
  $('reg-badge').textContent = state === 'registered' ? `${ua.configuration.uri}` : 'not registered';
  $('reg-badge').className = `badge ${state}`;
  const up = state === 'registered' || state === 'registering';
  $('register').disabled = up;
  $('unregister').disabled = !up;
  for (const id of ['server', 'user', 'password', 'domain']) $(id).disabled = up;
  updateCallButtons();
}

function setCallState(state, detail) {
  body.dataset.callState = state;
  $('call-state').textContent = state;
  $('peer').textContent = detail || '';
  updateCallButtons();
}

function updateCallButtons() {
  const call = body.dataset.callState;
  const busy = ['calling', 'ringing', 'incoming', 'answering', 'confirmed'].includes(call);
  $('call-button').disabled = body.dataset.regState !== 'registered' || busy;
  $('answer').disabled = call !== 'incoming';
  $('hangup').disabled = !busy;
}

function mediaConstraints() {
  return { audio: true, video: $('video').checked };
}

async function getLocalStream() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia)
    throw new Error('camera and microphone need a secure page (https, or http on localhost)');
  if (!localStream) {
    localStream = await navigator.mediaDevices.getUserMedia(mediaConstraints());
    $('local-video').srcObject = localStream;
  }
  return localStream;
}

function releaseLocalStream() {
  if (localStream) for (const t of localStream.getTracks()) t.stop();
  localStream = null;
  $('local-video').srcObject = null;
}

function watchPeerConnection(pc) {
  pc.addEventListener('track', (ev) => {
    const stream = ev.streams[0] || new MediaStream([ev.track]);
    if ($('remote-video').srcObject !== stream) $('remote-video').srcObject = stream;
  });
  pc.addEventListener('iceconnectionstatechange', () => log(`ICE ${pc.iceConnectionState}`));
}

function endSession(s) {
  if (session !== s) return;
  session = null;
  releaseLocalStream();
  $('remote-video').srcObject = null;
}

function onNewSession({ session: s, originator, request }) {
  const peer = s.remote_identity.uri.toString();
  if (session) {
    // One call at a time: a second caller hears busy.
    if (originator === 'remote') s.terminate({ status_code: 486, reason_phrase: 'Busy Here' });
    return;
  }
  session = s;
  showError('');
  if (s.connection) watchPeerConnection(s.connection);
  else s.on('peerconnection', (e) => watchPeerConnection(e.peerconnection));

  if (originator === 'remote') {
    log(`incoming call from ${peer} (${request.call_id})`);
    setCallState('incoming', `from ${peer}`);
  } else {
    setCallState('calling', `to ${peer}`);
  }
  s.on('progress', (e) => {
    if (originator === 'local') setCallState('ringing', `${describe(e)} from ${peer}`);
  });
  s.on('accepted', () => setCallState('answering', `with ${peer}`));
  s.on('confirmed', () => {
    log(`call with ${peer} confirmed`);
    setCallState('confirmed', `with ${peer}`);
  });
  s.on('ended', (e) => {
    log(`call with ${peer} ended by ${e.originator}: ${e.cause}`);
    setCallState('ended', `${e.cause} (by ${e.originator})`);
    endSession(s);
  });
  s.on('failed', (e) => {
    const what = describe(e);
    log(`call with ${peer} failed (${e.originator}): ${what}`);
    setCallState('failed', `${what} (${e.originator})`);
    // A call we cancel or reject ourselves, or one the caller gave up on, is no error.
    if (e.originator !== 'local' && e.cause !== JsSIP.C.causes.CANCELED) showError(what);
    endSession(s);
  });
}

function register(ev) {
  ev.preventDefault();
  showError('');
  const server = $('server').value.trim() || defaultServer();
  const user = $('user').value.trim();
  const domain = $('domain').value.trim();
  if (!user || !domain) {
    showError('user and domain are required');
    return;
  }
  for (const id of ['server', 'user', 'password', 'domain']) store.set(id, $(id).value);
  if (ua) ua.stop();
  let socket;
  try {
    socket = new JsSIP.WebSocketInterface(server);
    ua = new JsSIP.UA({
      sockets: [socket],
      uri: `sip:${user}@${domain}`,
      password: $('password').value,
      instance_id: instanceId(),
      register: true,
      register_expires: 300,
      session_timers: false,
      user_agent: 'sipedge-phone JsSIP',
    });
  } catch (err) {
    showError(`bad settings: ${err.message || err}`);
    return;
  }
  window.phone.ua = ua;
  const me = ua;
  ua.on('connecting', () => me === ua && setRegState('registering', `connecting to ${server}`));
  ua.on('connected', () => {
    log(`connected to ${server}`);
    if (me === ua && /^cannot connect/.test($('error').textContent)) showError('');
  });
  ua.on('disconnected', (e) => {
    if (me !== ua) return;
    log(`disconnected${e && e.error ? ' (error)' : ''}`);
    // JsSIP keeps retrying; say why nothing happens meanwhile.
    if (e && e.error) showError(`cannot connect to ${server}`);
    if (body.dataset.regState === 'registered' || body.dataset.regState === 'registering')
      setRegState('registering', 'connection lost, reconnecting');
  });
  ua.on('registered', (e) => {
    if (me !== ua) return;
    // The 200 lists every binding of the AOR; show how many devices are reachable.
    const contacts = (e.response.headers.Contact || []).reduce((a, h) => a.concat(h.parsed), []);
    body.dataset.bindings = String(contacts.length);
    $('bindings').hidden = false;
    $('bindings').textContent = `(${contacts.length} device${contacts.length === 1 ? '' : 's'})`;
    log(`registered ${ua.configuration.uri}`);
    store.set('registered', '1');
    setRegState('registered', `registered as ${ua.configuration.uri}`);
  });
  ua.on('unregistered', () => {
    if (me !== ua) return;
    log('unregistered');
    setRegState('unregistered');
  });
  ua.on('registrationFailed', (e) => {
    if (me !== ua) return;
    const what = describe(e);
    showError(`registration failed: ${what}`);
    setRegState('failed', `failed: ${what}`);
  });
  ua.on('newRTCSession', onNewSession);
  setRegState('registering');
  ua.start();
}

function unregister() {
  store.set('registered', null);
  if (session) session.terminate();
  if (ua) {
    const old = ua;
    old.on('unregistered', () => old.stop());
    if (old.isRegistered()) old.unregister();
    else old.stop();
  }
  setRegState('unregistered');
}

async function call(ev) {
  ev.preventDefault();
  showError('');
  let target = $('target').value.trim();
  if (!target) return;
  if (!/^sips?:/.test(target)) {
    if (!target.includes('@')) target = `${target}@${$('domain').value.trim()}`;
    target = `sip:${target}`;
  }
  // Calling from the click on, while the camera is being opened.
  setCallState('calling', `to ${target}`);
  let stream;
  try {
    stream = await getLocalStream();
  } catch (err) {
    showError(`no media: ${err.message || err}`);
    setCallState('failed', target);
    return;
  }
  try {
    ua.call(target, {
      mediaStream: stream,
      pcConfig: { iceServers: [] },
      rtcOfferConstraints: { offerToReceiveAudio: true, offerToReceiveVideo: $('video').checked },
    });
  } catch (err) {
    releaseLocalStream();
    showError(`cannot call ${target}: ${err.message || err}`);
    setCallState('failed', target);
  }
}

async function answer() {
  const s = session;
  if (!s || body.dataset.callState !== 'incoming') return;
  let stream;
  try {
    stream = await getLocalStream();
  } catch (err) {
    showError(`no media: ${err.message || err}`);
    s.terminate({ status_code: 488, reason_phrase: 'Not Acceptable Here' });
    return;
  }
  setCallState('answering', $('peer').textContent);
  s.answer({ mediaStream: stream, pcConfig: { iceServers: [] } });
}

function hangup() {
  if (session) session.terminate();
}

window.phone = {
  ua: null,
  get session() { return session; },
  // The current call's RTCPeerConnection, for getStats in tests.
  get pc() { return session ? session.connection : null; },
  JsSIP,
};

function init() {
  const params = new URLSearchParams(location.search);
  $('server').value = store.get('server') || params.get('server') || defaultServer();
  for (const id of ['user', 'password', 'domain']) {
    const v = store.get(id) ?? params.get(id);
    if (v !== null) $(id).value = v;
  }
  if (params.get('target')) $('target').value = params.get('target');
  $('reg-form').addEventListener('submit', register);
  $('unregister').addEventListener('click', unregister);
  $('call-form').addEventListener('submit', call);
  $('answer').addEventListener('click', answer);
  $('hangup').addEventListener('click', hangup);
  // Leaving the page needs nothing: the browser closes the WebSocket (1001), and the server
  // drops the bindings of that connection. An un-REGISTER sent on the way out could even arrive
  // after the reloaded page's REGISTER, which has the same instance id, and remove its binding.
  setRegState('unregistered');
  setCallState('idle');
  // Browsers give camera and microphone only to secure pages: https, or http on 127.0.0.1 or
  // localhost. Say so before the first call fails.
  if (!window.isSecureContext)
    $('notice').textContent = 'This page is not secure (plain http on a non-local address): '
      + 'calls need the camera and microphone, which browsers give only to https pages '
      + '(or http://127.0.0.1, http://localhost). Use the wss listener\'s https:// address.';
  // A reload of a registered tab registers again (same instance id, so the binding is replaced).
  if (store.get('registered') === '1') $('register').click();
}

init();
