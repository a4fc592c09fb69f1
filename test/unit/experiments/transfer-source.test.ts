import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../../lib/backends';
import * as ts from '../../../lib/experiments/transfer-source';
import { tempDir } from '../../support/helpers';

before(async () => {
  await useBackend('wasm');
});

function fakeDataset(n: number, seed = 1) {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const make = (count: number) => {
    const labels = Uint8Array.from({ length: count }, (_, i) => i % 10);
    // Class-dependent brightness so the task is learnable.
    const images = Uint8Array.from({ length: count * 784 }, (_, j) => Math.min(255, Math.floor(labels[Math.floor(j / 784)] * 20 + rand() * 60)));
    return { images, labels, count, height: 28, width: 28 };
  };
  return {
    train: make(n), test: make(n / 2), classNames: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'],
    source: 'generated-stand-in' as const, label: 'tiny test set', dir: '/nowhere',
  };
}

test('ensureSourceBase trains and saves the base once, with where it came from; trainOnTarget runs all three methods', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const ds = fakeDataset(200);
    const lines: string[] = [];
    const first = await ts.ensureSourceBase({ ds, dir: path.join(dir, 'base'), trainExamples: 100, epochs: 1, log: (l) => lines.push(l) });
    assert.equal(first.trainedNow, true);
    assert.equal(first.metadata.trainExamples, 100); // the 100 rows of classes 0–4
    assert.deepEqual(first.metadata.sourceClasses, [0, 1, 2, 3, 4]);
    assert.match(first.metadata.sourceTask, /tiny test set, classes 0, 1, 2, 3, 4 \(a, b, c, d, e\)/);
    assert.ok(first.metadata.sourceTestAccuracy >= 0 && first.metadata.sourceTestAccuracy <= 1);
    assert.ok(lines.some((l) => /source base saved to/.test(l)));
    const again = await ts.ensureSourceBase({ ds, dir: path.join(dir, 'base') });
    assert.equal(again.trainedNow, false);
    assert.deepEqual(again.metadata, first.metadata);

    const train = ts.relabel(ds.train, ts.TARGET_CLASSES);
    const test2 = ts.relabel(ds.test, ts.TARGET_CLASSES);
    for (const method of ['frozen', 'fine-tune', 'scratch'] as const) {
      const before = tf.memory().numTensors;
      const r = await ts.trainOnTarget({ method, baseDir: first.dir, train, test: test2, numClasses: 5, epochs: 2, headUnits: 16 });
      assert.equal(tf.memory().numTensors, before, `${method} leaked tensors`);
      assert.equal(r.examples, 100);
      assert.equal(r.trainableParams, method === 'frozen' ? 64 * 16 + 16 + 16 * 5 + 5 : r.totalParams);
      assert.ok(r.accuracy >= 0 && r.accuracy <= 1 && r.fitSeconds > 0 && r.epochSeconds > 0);
    }
  } finally {
    cleanup();
  }
});
