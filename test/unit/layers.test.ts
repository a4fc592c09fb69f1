/**
 * The layers of lib/, and the check that keeps them: every import points down (to its own layer
 * or a lower one), and no files import each other in a circle. The layers are declared here, once,
 * bottom first; a new file of lib/ must be given its layer (the test names the file otherwise).
 *
 * Imports are read with TypeScript's own scanner (static imports, `export … from`, `import type`,
 * `require` and `import()` with a literal path), so comments and strings are never taken for code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { ROOT } from '../support/helpers';

const LIB = path.join(ROOT, 'lib');

/**
 * The layers, from the bottom up. A path ending in `/` holds a whole folder; the most specific
 * entry wins (data/image-set.ts is base although data/ is the data layer).
 */
const LAYERS: readonly { layer: string; holds: readonly string[] }[] = [
  { layer: 'base', holds: ['env.ts', 'fsutil.ts', 'random.ts', 'display.ts', 'commands.ts', 'units.ts', 'float-formats.ts', 'data/image-set.ts'] },
  // The backends: providers register themselves with the registry; device ranks what registered
  // and imports none of them; backends/index.ts imports them all.
  { layer: 'backends: registry', holds: ['backends/registry.ts'] },
  { layer: 'backends: device', holds: ['backends/device.ts'] },
  { layer: 'backends: providers and patches', holds: ['backends/'] },
  { layer: 'backends, assembled', holds: ['backends/index.ts'] },
  { layer: 'measurement', holds: ['timing.ts', 'monitor/', 'flops.ts', 'results.ts', 'charts.ts', 'notebook.ts'] },
  { layer: 'data', holds: ['data/'] },
  { layer: 'models and training', holds: ['train.ts', 'fused-step.ts', 'model-io.ts', 'accumulate.ts', 'checkpoint.ts'] },
  // memory measures training steps (stepMemory, the batch-size finder), so it stands above train.
  { layer: 'techniques', holds: ['memory.ts', 'precision.ts', 'transfer.ts', 'pruning.ts', 'complexity.ts', 'roofline.ts'] },
  { layer: 'experiments', holds: ['experiments/'] },
  { layer: 'the entry', holds: ['index.ts'] },
];

/** file → the files it imports, as paths relative to `root` ('/'-separated). */
type ImportGraph = Map<string, string[]>;

/** The import graph of the TypeScript files under `root` (relative imports only; `dist/` and `.d.ts` skipped). */
function importGraph(root: string): ImportGraph {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'dist' && e.name !== 'node_modules') walk(full);
      } else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) {
        files.push(path.relative(root, full).split(path.sep).join('/'));
      }
    }
  };
  walk(root);
  const known = new Set(files);
  const graph: ImportGraph = new Map();
  for (const file of files.sort()) {
    const info = ts.preProcessFile(fs.readFileSync(path.join(root, file), 'utf8'), true, true);
    const targets = new Set<string>();
    for (const { fileName: spec } of info.importedFiles) {
      if (!spec.startsWith('.')) continue;
      const base = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec));
      const hit = [`${base}.ts`, `${base}/index.ts`, base].find((f) => known.has(f));
      if (!hit) throw new Error(`lib/${file}: import '${spec}' names no TypeScript file of lib/`);
      targets.add(hit);
    }
    graph.set(file, [...targets]);
  }
  return graph;
}

/** The index in {@link LAYERS} of `file` (most specific entry), or -1 when no layer holds it. */
function layerOf(file: string, layers = LAYERS): number {
  let best = -1;
  let bestLength = -1;
  layers.forEach((l, i) => {
    for (const h of l.holds) {
      const hit = h.endsWith('/') ? file.startsWith(h) : file === h;
      if (hit && h.length > bestLength) {
        best = i;
        bestLength = h.length;
      }
    }
  });
  return best;
}

/** Every import that climbs: from a file to one in a higher layer, in words. */
function climbingImports(graph: ImportGraph, layers = LAYERS): string[] {
  const out: string[] = [];
  for (const [from, targets] of graph) {
    for (const to of targets) {
      const a = layerOf(from, layers);
      const b = layerOf(to, layers);
      if (a >= 0 && b > a) out.push(`lib/${from} (${layers[a].layer}) imports lib/${to} (${layers[b].layer}), which stands above it`);
    }
  }
  return out;
}

/** Every circle of files that import each other (Tarjan's strongly connected components), each as a path a → b → a. */
function importCycles(graph: ImportGraph): string[] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const members: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      members.push(w);
    } while (w !== v);
    if (members.length > 1 || (graph.get(v) ?? []).includes(v)) {
      members.reverse();
      cycles.push([...members, members[0]].map((f) => `lib/${f}`).join(' → '));
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return cycles;
}

const graph = importGraph(LIB);

test('every file of lib/ has a declared layer', () => {
  const undeclared = [...graph.keys()].filter((f) => layerOf(f) < 0);
  assert.deepEqual(undeclared, [], `give these files a layer in test/unit/layers.test.ts: ${undeclared.join(', ')}`);
  assert.ok(graph.size > 30, `lib/ read: ${graph.size} files`);
});

test('no import cycle in lib/', () => {
  assert.deepEqual(importCycles(graph), []);
});

test('every import in lib/ points down (to its own layer or a lower one)', () => {
  assert.deepEqual(climbingImports(graph), []);
});

test('the check sees a planted cycle and a planted climb', () => {
  // The circle this issue broke (device required native, native imported onActivate from device)
  // and a base module that would reach up for a chart.
  const planted: ImportGraph = new Map([
    ['backends/device.ts', ['backends/native.ts', 'backends/registry.ts']],
    ['backends/native.ts', ['backends/device.ts']],
    ['backends/registry.ts', []],
    ['env.ts', ['charts.ts']],
    ['charts.ts', []],
  ]);
  assert.deepEqual(importCycles(planted), ['lib/backends/device.ts → lib/backends/native.ts → lib/backends/device.ts']);
  assert.deepEqual(climbingImports(planted), [
    'lib/backends/device.ts (backends: device) imports lib/backends/native.ts (backends: providers and patches), which stands above it',
    'lib/env.ts (base) imports lib/charts.ts (measurement), which stands above it',
  ]);
});
