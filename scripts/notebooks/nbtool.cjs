#!/usr/bin/env node
// Authoring helper for the committed notebooks (which stay clean: no outputs, null counts).
//
//   node scripts/notebooks/nbtool.cjs from-percent SRC.ts OUT.ipynb   build a notebook from a percent-format file
//   node scripts/notebooks/nbtool.cjs to-percent NB.ipynb             print a notebook in percent format
//   node scripts/notebooks/nbtool.cjs clean NB.ipynb ...              strip outputs and execution counts in place
//
// Percent format: a line `// %%` starts a code cell, `// %% [markdown]` a markdown cell whose
// lines are written as `// text` comments.
'use strict';
const fs = require('node:fs');
const crypto = require('node:crypto');

const KERNEL = {
  kernelspec: { display_name: 'TypeScript', language: 'typescript', name: 'tslab' },
  language_info: { codemirror_mode: { mode: 'typescript', name: 'javascript', typescript: true }, file_extension: '.ts', mimetype: 'text/typescript', name: 'typescript', version: '3.7.2' },
};

const lines = (s) => s.split('\n').map((l, i, a) => (i < a.length - 1 ? l + '\n' : l)).filter((l, i, a) => !(i === a.length - 1 && l === ''));
const id = (text, i) => crypto.createHash('sha1').update(`${i}:${text}`).digest('hex').slice(0, 8);

function fromPercent(src) {
  const cells = [];
  let cur = null;
  const flush = () => {
    if (!cur) return;
    let body = cur.body.join('\n').replace(/^\n+|\n+$/g, '');
    if (cur.type === 'markdown') body = body.split('\n').map((l) => l.replace(/^\/\/ ?/, '')).join('\n');
    if (body.trim()) cells.push(cur.type === 'markdown'
      ? { cell_type: 'markdown', id: id(body, cells.length), metadata: {}, source: lines(body) }
      : { cell_type: 'code', execution_count: null, id: id(body, cells.length), metadata: {}, outputs: [], source: lines(body) });
    cur = null;
  };
  for (const line of src.split('\n')) {
    const m = /^\/\/ %%(.*)$/.exec(line);
    if (m) {
      flush();
      cur = { type: /\[markdown\]/.test(m[1]) ? 'markdown' : 'code', body: [] };
    } else {
      if (!cur) cur = { type: 'code', body: [] };
      cur.body.push(line);
    }
  }
  flush();
  return { cells, metadata: KERNEL, nbformat: 4, nbformat_minor: 5 };
}

function toPercent(nb) {
  return nb.cells.map((c) => {
    const src = Array.isArray(c.source) ? c.source.join('') : c.source;
    return c.cell_type === 'markdown'
      ? `// %% [markdown]\n${src.split('\n').map((l) => (l ? `// ${l}` : '//')).join('\n')}\n`
      : `// %%\n${src}\n`;
  }).join('\n');
}

function clean(nb) {
  nb.cells.forEach((c, i) => {
    if (c.cell_type === 'code') {
      c.outputs = [];
      c.execution_count = null;
    }
    if (!c.id) c.id = id(Array.isArray(c.source) ? c.source.join('') : c.source, i);
  });
  if (nb.metadata) delete nb.metadata.gpulab;
  if (nb.metadata) delete nb.metadata.signature;
  return nb;
}

const write = (file, nb) => {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(nb, null, 1) + '\n');
  fs.renameSync(tmp, file);
};

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'from-percent' && args.length === 2) write(args[1], fromPercent(fs.readFileSync(args[0], 'utf8')));
else if (cmd === 'to-percent' && args.length === 1) process.stdout.write(toPercent(JSON.parse(fs.readFileSync(args[0], 'utf8'))));
else if (cmd === 'clean' && args.length) for (const f of args) write(f, clean(JSON.parse(fs.readFileSync(f, 'utf8'))));
else {
  console.error('usage: nbtool.cjs from-percent SRC.ts OUT.ipynb | to-percent NB.ipynb | clean NB.ipynb ...');
  process.exit(2);
}
