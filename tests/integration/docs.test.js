'use strict';
// What operators can see and set is written down: every metric in base/metrics.def is named in
// doc/, and every setting a module declares is in doc/configuration.md (in its section's table,
// or as a `section.name`) and in the shipped etc/sipedge.conf, which lists every setting.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { ROOT } = require('../lib/daemon');

const read = (...p) => fs.readFileSync(path.join(ROOT, ...p), 'utf8');
const docs = fs.readdirSync(path.join(ROOT, 'doc')).map((f) => read('doc', f)).join('\n');

test('every metric is documented', () => {
  const names = [...read('base', 'metrics.def').matchAll(/^X\(\w+, "(sipedge_\w+)"/gm)].map((m) => m[1]);
  assert.ok(names.length > 40, 'metrics.def was read');
  const missing = names.filter((n) => !docs.includes(n));
  assert.deepEqual(missing, [], 'metrics without a word in doc/');
});

test('every setting is documented and in the shipped configuration', () => {
  // Each module declares its settings in a table: SETTING_INT("section.name", ...) and so on.
  const sources = [];
  for (const dir of fs.readdirSync(ROOT, { withFileTypes: true })) {
    if (!dir.isDirectory() || /^(\.|node_modules|build|tests|fuzz|web)/.test(dir.name)) continue;
    for (const f of fs.readdirSync(path.join(ROOT, dir.name)))
      if (f.endsWith('.c')) sources.push(read(dir.name, f));
  }
  const settings = [...new Set(sources.flatMap((src) =>
    [...src.matchAll(/SETTING_(?:INT|BOOL|STRING|LIST|LIST_OF)\("([a-z_.]+)"/g)].map((m) => m[1])))];
  assert.ok(settings.length > 40, 'the settings tables were read');
  const reference = read('doc', 'configuration.md');
  const shipped = read('etc', 'sipedge.conf');
  const undocumented = settings.filter((s) => {
    const [section, name] = s.includes('.') ? s.split('.') : [null, s];
    if (reference.includes(`\`${s}\``)) return false;
    if (!section) return !reference.includes(`\`${name}\``);
    // In the table under "## section": a row for `name`.
    const start = reference.indexOf(`\n## ${section}\n`);
    if (start < 0) return true;
    const end = reference.indexOf('\n## ', start + 1);
    return !reference.slice(start, end < 0 ? undefined : end).includes(`| \`${name}\``);
  });
  assert.deepEqual(undocumented, [], 'settings doc/configuration.md does not describe');
  const unshipped = settings.filter((s) => !new RegExp(`^\\s*${s.split('.').pop()} = `, 'm').test(shipped));
  assert.deepEqual(unshipped, [], 'settings missing from etc/sipedge.conf');
});
