import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { flowFromDirectory } from '../../../lib/data/image-directory';
import * as imageTree from '../../../lib/data/image-tree';
import { tempDir } from '../../support/helpers';
import { CLASS_NAMES, type FashionMnist } from '../../../lib/data/fashion-mnist';

test('writeImageTree writes a class-per-folder PNG tree that streams back pixel-exact, and reuses a complete tree', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const n = 30;
    const images = new Uint8Array(n * 28 * 28);
    for (let i = 0; i < images.length; i++) images[i] = (i * 7) % 251;
    const labels = Uint8Array.from({ length: n }, (_, i) => i % 3);
    const names = ['T-shirt/top', 'Trouser', 'Ankle boot'];
    const set = { images, labels, count: n, height: 28, width: 28 };
    const out = path.join(dir, 'tree');
    const info = await imageTree.writeImageTree(set, names, out, { limit: 24, key: 'test' });
    assert.deepEqual(info.classDirs, ['0_T-shirt-top', '1_Trouser', '2_Ankle-boot']);
    assert.equal(info.count, 24);
    assert.equal(info.reused, false);
    assert.deepEqual(fs.readdirSync(path.join(out, '0_T-shirt-top')).length, 8);
    const again = await imageTree.writeImageTree(set, names, out, { limit: 24, key: 'test' });
    assert.equal(again.reused, true);
    const flow = await flowFromDirectory(out, { targetSize: [28, 28], colorMode: 'grayscale', classMode: 'sparse' });
    const all = await flow.loadAll();
    assert.equal(all.count, 24);
    // listing order is class by class; find each image's original by its file name
    flow.files.forEach((f, k) => {
      const i = Number(path.basename(f.path, '.png'));
      assert.equal(f.label, labels[i]);
      assert.deepEqual(all.images.subarray(k * 784, (k + 1) * 784), images.subarray(i * 784, (i + 1) * 784));
    });
    assert.ok(!fs.readdirSync(path.join(out, '1_Trouser')).some((f) => f.endsWith('.tmp')));
    assert.equal(imageTree.classFolderName(3, 'a b/c', 12), '03_a-b-c');
    await assert.rejects(imageTree.writeImageTree({ ...set, labels: Uint8Array.from({ length: n }, () => 9) }, names, path.join(dir, 't2')), /image 0 has label 9, outside 0\.\.2/);
  } finally {
    cleanup();
  }
});

test('writeFashionMnistTree writes under the data dir, named after the source, split and count', async () => {
  const { dir, cleanup } = tempDir();
  const old = process.env.GPULAB_DATA_DIR;
  process.env.GPULAB_DATA_DIR = dir;
  try {
    const set = { images: new Uint8Array(20 * 784).fill(3), labels: Uint8Array.from({ length: 20 }, (_, i) => i % 10), count: 20, height: 28, width: 28 };
    const ds: FashionMnist = { train: set, test: set, classNames: CLASS_NAMES, source: 'generated-stand-in', label: 'generated stand-in (not Fashion-MNIST)', dir: '' };
    const info = await imageTree.writeFashionMnistTree({ ds, limit: 12 });
    assert.equal(info.dir, path.join(dir, 'fashion-mnist-png', 'generated-stand-in', 'train-12'));
    assert.equal(info.count, 12);
    assert.equal(info.source, 'generated-stand-in');
    assert.equal(info.classDirs[0], '0_T-shirt-top');
    const flow = await flowFromDirectory(info.dir, { targetSize: [28, 28], colorMode: 'grayscale' });
    assert.equal(flow.samples, 12);
    assert.equal(flow.classNames.length, 10);
    const t = await imageTree.writeFashionMnistTree({ ds, split: 'test' });
    assert.match(t.dir, /generated-stand-in[\\/]test-20$/);
  } finally {
    if (old === undefined) delete process.env.GPULAB_DATA_DIR;
    else process.env.GPULAB_DATA_DIR = old;
    cleanup();
  }
});
