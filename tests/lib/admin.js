'use strict';
// The operator's console in tests: a token file, the admin settings, and a client of the API
// over Node's fetch.
//   const a = await adminSetup();           // { port, token, tokenFile, config }
//   const d = await startDaemon({ admin: true, config: a.config + '...' });
//   const r = await api(a, 'GET', '/api/v1/status');   // { status, json, headers }
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const { freePort } = require('./ports');

async function adminSetup({ webRoot = '' } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipedge-admin-'));
  const token = crypto.randomBytes(24).toString('base64url');
  const tokenFile = path.join(dir, 'admin-token');
  fs.writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  const port = await freePort();
  const config = `admin = { listen = "127.0.0.1:${port}"; token_file = "${tokenFile}"; web_root = "${webRoot}"; };\n`;
  return { dir, port, token, tokenFile, config, url: `http://127.0.0.1:${port}` };
}

// One request; the body is parsed as JSON whatever the status (every answer of the API is).
async function api(a, method, urlPath, { token = a.token, headers = {}, body } = {}) {
  const h = { ...headers };
  if (token !== null) h.authorization = `Bearer ${token}`;
  const res = await fetch(`${a.url}${urlPath}`, { method, headers: h, body });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`${method} ${urlPath}: ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`);
  }
  return { status: res.status, json, headers: res.headers };
}

module.exports = { adminSetup, api };
