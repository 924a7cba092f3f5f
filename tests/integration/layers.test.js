'use strict';
// The daemon's folders are layers (doc/architecture.md, "Layers"): an #include may name a file
// of its own folder or of a lower layer, never of a higher one or of another folder on the
// same layer, so calls go one way and no two folders depend on each other.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { ROOT } = require('../lib/daemon');

// Lowest first. Folders on one rank are neighbours that must not include each other.
const LAYERS = [
  ['base'],
  ['transport'],
  ['sip'],
  ['registrar', 'media'],
  ['cluster'],
  ['proxy'],
  ['auth'],
  ['app'],
];
const rank = new Map(LAYERS.flatMap((folders, i) => folders.map((f) => [f, i])));
// Not part of the daemon: they may include anything (ctl/ is sipedgectl, a client of the API).
const OUTSIDE = new Set(['ctl', 'tests', 'fuzz', 'web', 'web-src', 'doc', 'etc', 'tools', 'packaging', 'm4', 'build',
  'build-aux', 'node_modules', 'autom4te.cache']);

function sourceFolders() {
  return fs.readdirSync(ROOT, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('.') && !OUTSIDE.has(d.name))
    .filter((d) => fs.readdirSync(path.join(ROOT, d.name)).some((f) => /\.[ch]$/.test(f)))
    .map((d) => d.name);
}

function includes() {
  const edges = [];
  for (const folder of sourceFolders()) {
    for (const file of fs.readdirSync(path.join(ROOT, folder)).filter((f) => /\.[ch]$/.test(f))) {
      const text = fs.readFileSync(path.join(ROOT, folder, file), 'utf8');
      for (const m of text.matchAll(/^\s*#\s*include\s+"([^"/]+)\/[^"]+"/gm))
        edges.push({ file: `${folder}/${file}`, from: folder, to: m[1], line: m[0].trim() });
    }
  }
  return edges;
}

test('every folder of the daemon has a layer', () => {
  const unplaced = sourceFolders().filter((f) => !rank.has(f));
  assert.deepEqual(unplaced, [], 'folders missing from LAYERS (and from doc/architecture.md)');
});

test('includes go down the layers only', () => {
  const edges = includes();
  assert.ok(edges.length > 100, 'the sources were read');
  const wrong = edges
    .filter((e) => e.from !== e.to && rank.has(e.to) && rank.get(e.to) >= rank.get(e.from))
    .map((e) => `${e.file}: ${e.line} (${e.from} is ${rank.get(e.to) > rank.get(e.from) ? 'below' : 'beside'} ${e.to})`);
  assert.deepEqual(wrong, [], 'upward or sideways includes');
});

test('no cycle between folders', () => {
  const graph = new Map();
  for (const e of includes())
    if (e.from !== e.to) graph.set(e.from, new Set([...(graph.get(e.from) || []), e.to]));
  const state = new Map();
  const cycles = [];
  const visit = (node, trail) => {
    if (state.get(node) === 'done') return;
    if (state.get(node) === 'open') {
      cycles.push([...trail.slice(trail.indexOf(node)), node].join(' -> '));
      return;
    }
    state.set(node, 'open');
    for (const next of graph.get(node) || []) visit(next, [...trail, node]);
    state.set(node, 'done');
  };
  for (const node of graph.keys()) visit(node, []);
  assert.deepEqual(cycles, []);
});

test('the documented map names the same layers', () => {
  const doc = fs.readFileSync(path.join(ROOT, 'doc', 'architecture.md'), 'utf8');
  const missing = [...rank.keys()].filter((f) => f !== 'media' && !doc.includes(`\`${f}/\``));
  assert.deepEqual(missing, [], 'folders doc/architecture.md does not describe');
});
