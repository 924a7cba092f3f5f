// The status page of sipedge's operator's console (web/admin/): numbers, charts of the last hour
// and the registration table, read every few seconds from the admin API with the token the
// operator typed (kept in sessionStorage: it goes when the tab closes).
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

const KEY = 'sipedge-admin-token';
const REFRESH_MS = 3000;
const $ = (id) => document.getElementById(id);
let charts = {};
let lastWarning = 0;
let registrations = [];
let timer = null;

async function get(path) {
  const res = await fetch(path, { headers: { authorization: `Bearer ${sessionStorage.getItem(KEY)}` } });
  const body = await res.json();
  if (res.status === 401) throw Object.assign(new Error(body.error), { unauthorized: true });
  if (!res.ok) throw new Error(body.error || `${res.status}`);
  return body;
}

function showLogin(message) {
  clearTimeout(timer);
  sessionStorage.removeItem(KEY);
  document.body.dataset.state = 'login';
  $('login-error').textContent = message || '';
}

function chart(id, label, color) {
  const el = $(id);
  return new uPlot({
    width: Math.max(300, el.clientWidth || 360), height: 160,
    series: [{}, { label, stroke: color, width: 2, fill: `${color}22` }],
    axes: [{}, { size: 40 }], legend: { show: false },
    // Always the last hour, and a y axis from 0 that small counts do not stretch.
    scales: { x: { time: true, range: () => [Date.now() / 1000 - 3600, Date.now() / 1000] },
      y: { range: (u, min, max) => [0, Math.max(5, Math.ceil(max * 1.2))] } },
  }, [[], []], el);
}

// The daemon's samples (every 10 s) and, last, the numbers of this update.
function drawHistory(h, status) {
  const c = status.counts;
  const samples = [...h.samples, { t: Date.now() / 1000, connections: c.flows, bindings: c.bindings, calls: c.calls }];
  const t = samples.map((s) => s.t);
  for (const name of ['connections', 'bindings', 'calls']) {
    charts[name].setData([t, samples.map((s) => s[name])]);
    document.body.dataset[`chart${name[0].toUpperCase()}${name.slice(1)}`] = String(samples.at(-1)[name]);
  }
}

function showStatus(s) {
  const c = s.counts;
  $('version').textContent = `version ${s.version}`;
  $('uptime').textContent = `up ${Math.floor(s.uptime_seconds / 60)} min`;
  $('n-connections').textContent = c.flows;
  $('n-ws').textContent = c.connections.ws + c.connections.wss;
  $('n-bindings').textContent = c.bindings;
  $('n-calls').textContent = c.calls;
  $('n-transactions').textContent = c.transactions.server + c.transactions.client;
  $('n-banned').textContent = c.banned;
}

function cell(text, cls) {
  const td = document.createElement('td');
  td.textContent = text ?? '-';
  if (cls) td.className = cls;
  return td;
}

function showRegistrations() {
  const q = $('search').value.trim().toLowerCase();
  const rows = registrations.filter((b) => !q ||
    [b.aor, b.peer, b.user_agent, b.contact].some((v) => v && v.toLowerCase().includes(q)));
  rows.sort((x, y) => x.aor.localeCompare(y.aor));
  $('registrations').replaceChildren(...rows.map((b) => {
    const tr = document.createElement('tr');
    tr.append(cell(b.aor), cell(b.transport), cell(b.peer), cell(b.registered_at), cell(`${b.expires_in} s`),
      cell(b.user_agent, 'ua'));
    return tr;
  }));
  document.body.dataset.registrations = String(rows.length);
}

function showWarnings(w) {
  for (const line of w.warnings) {
    const li = document.createElement('li');
    li.className = line.level;
    li.textContent = `${line.time} ${line.level} ${line.text}`;
    $('warnings').prepend(li);
  }
  while ($('warnings').children.length > 50) $('warnings').lastChild.remove();
  lastWarning = w.last;
}

async function refresh() {
  try {
    const [status, regs, history, warnings] = await Promise.all([
      get('/api/v1/status'), get('/api/v1/registrations'), get('/api/v1/history'),
      get(`/api/v1/warnings?after=${lastWarning}`)]);
    document.body.dataset.state = 'live';
    showStatus(status);
    registrations = regs.registrations;
    showRegistrations();
    drawHistory(history, status);
    showWarnings(warnings);
    $('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  } catch (e) {
    if (e.unauthorized) return showLogin('wrong token');
    $('updated').textContent = `update failed: ${e.message}`;
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

function start() {
  document.body.dataset.state = 'live';
  if (!charts.connections) {
    charts = {
      connections: chart('chart-connections', 'connections', '#2f6fdf'),
      bindings: chart('chart-bindings', 'bindings', '#1a9a5a'),
      calls: chart('chart-calls', 'calls', '#d0631a'),
    };
  }
  refresh();
}

$('login-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(KEY, $('token').value.trim());
  $('token').value = '';
  start();
});
$('search').addEventListener('input', showRegistrations);
if (sessionStorage.getItem(KEY)) start();
