'use strict';
// Wait for a condition that the daemon reaches on its own time (a metric, a log line, a state):
//   const v = await until('what is awaited', async () => value || false, { ms: 5000, every: 100 })
// resolves the first truthy value of pred, which is tried once more at the deadline; after it,
// the test fails naming what it waited for.
async function until(what, pred, { ms = 5000, every = 100 } = {}) {
  const end = Date.now() + ms;
  for (;;) {
    const last = Date.now() >= end;
    const v = await pred();
    if (v) return v;
    if (last) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

module.exports = { until };
