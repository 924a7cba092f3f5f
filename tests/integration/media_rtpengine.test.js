'use strict';
// media.rtpengine: the daemon pings every configured rtpengine (Debian's real rtpengine on
// loopback), reports each one's health per rtpengine at /metrics, and follows one that goes
// down and comes back.
const test = require('node:test');
const assert = require('node:assert');
const { startDaemon } = require('../lib/daemon');
const { until } = require('../lib/until');
const { startRtpengine } = require('../lib/rtpengine');
const { freeUdpPort } = require('../lib/ports');

async function metricsText(d) {
  const res = await fetch(`http://127.0.0.1:${d.ports.ws}/metrics`);
  return res.text();
}

function labeled(text, name, engine) {
  const m = new RegExp(`^${name}\\{rtpengine="${engine.replace(/[.[\]]/g, '\\$&')}"\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

test('pings each rtpengine, marks the silent one down and follows one that restarts', async () => {
  const live = await startRtpengine();
  const deadPort = await freeUdpPort();
  const dead = `udp:127.0.0.1:${deadPort}`;
  const d = await startDaemon({
    listen: ['ws:127.0.0.1:0'],
    config: `http = { web_root = ""; };\nmedia = { rtpengine = [ "${dead}", "${live.ng}" ]; ping_interval = 1; ng_timeout = 300; };\n`,
  });
  try {
    assert.match(d.log(), /media: 2 rtpengines, relay cross/);
    await until('the live one up and the dead one down', async () => {
      const t = await metricsText(d);
      return labeled(t, 'sipedge_rtpengine_up', live.ng) === 1 && labeled(t, 'sipedge_rtpengine_up', dead) === 0;
    }, { ms: 8000 });
    let t = await metricsText(d);
    assert.ok(labeled(t, 'sipedge_rtpengine_requests_total', live.ng) >= 1);
    assert.ok(labeled(t, 'sipedge_rtpengine_latency_seconds_count', live.ng) >= 1);
    assert.ok(labeled(t, 'sipedge_rtpengine_timeouts_total', dead) >= 1);
    assert.strictEqual(labeled(t, 'sipedge_rtpengine_latency_seconds_count', dead), 0);
    assert.match(d.log(), new RegExp(`rtpengine ${dead} is down \\(no answer to ping\\)`));
    assert.match(live.log(), /Received command 'ping'/);
    const m = await d.metrics();
    assert.strictEqual(m.sipedge_media_rtpengines_up, 1);

    // the live one stops: it goes down; a new rtpengine on the same port brings it back
    await live.stop();
    await until('both down', async () => labeled(await metricsText(d), 'sipedge_rtpengine_up', live.ng) === 0, { ms: 8000 });
    assert.match(d.log(), new RegExp(`rtpengine ${live.ng} is down`));
    const again = await startRtpengine({ port: live.port });
    try {
      await until('up again', async () => labeled(await metricsText(d), 'sipedge_rtpengine_up', live.ng) === 1, { ms: 8000 });
      assert.strictEqual((await d.metrics()).sipedge_media_rtpengines_up, 1);
      t = await metricsText(d);
      assert.strictEqual(labeled(t, 'sipedge_rtpengine_up', dead), 0);
    } finally {
      await again.stop();
    }
  } finally {
    await d.stop();
  }
});

test('bad media settings stop the daemon at start with the reason', async () => {
  for (const [text, why] of [
    ['media = { rtpengine = [ "tcp:127.0.0.1:22222" ]; };', /media.rtpengine\[0\] 'tcp:127.0.0.1:22222' is not udp:HOST:PORT/],
    ['media = { rtpengine = [ "udp:rtpengine.example:22222" ]; };', /is not udp:HOST:PORT/],
    ['media = { relay = "sometimes"; };', /media.relay must be "cross", "always" or "never"/],
    ['media = { on_failure = "ignore"; };', /media.on_failure must be "refuse" or "unanchored"/],
    ['media = { ng_timeout = 5; };', /media.ng_timeout must be 30..30000 ms/],
  ]) {
    await assert.rejects(startDaemon({ listen: ['ws:127.0.0.1:0'], config: `http = { web_root = ""; };\n${text}\n` }),
      (e) => { assert.match(e.message, why); assert.match(e.message, /exited \(2\)/); return true; });
  }
});
