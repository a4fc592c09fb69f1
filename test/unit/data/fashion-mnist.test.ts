import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import * as fm from '../../../lib/data/fashion-mnist';
import { encodeIdxGz, writeIdxFile } from '../../../lib/data/idx';
import { tempDir } from '../../support/helpers';

// ---- a local HTTP server on 127.0.0.1 serving small generated IDX files (never the internet) ----

const small = fm.generateStandIn({ seed: 3, trainCount: 50, testCount: 20 });
const served: Record<string, Uint8Array> = {
  'train-images-idx3-ubyte.gz': encodeIdxGz([50, 28, 28], small.train.images),
  'train-labels-idx1-ubyte.gz': encodeIdxGz([50], small.train.labels),
  't10k-images-idx3-ubyte.gz': encodeIdxGz([20, 28, 28], small.test.images),
  't10k-labels-idx1-ubyte.gz': encodeIdxGz([20], small.test.labels),
};
/** The small files with their true checksums, in the shape of FASHION_MNIST_FILES. */
const files: fm.FashionMnistFile[] = Object.entries(served).map(([name, b]) => ({ name, md5: fm.md5Hex(b), bytes: b.length }));

let server: http.Server;
let base = '';
const requests: string[] = [];

before(async () => {
  server = http.createServer((req, res) => {
    const url = req.url ?? '';
    requests.push(url);
    const name = url.split('/').pop() ?? '';
    if (url.startsWith('/missing/') || !(name in served)) {
      res.writeHead(404).end('not found');
    } else if (url.startsWith('/cut/')) {
      // announces the full length, sends half, then drops the connection
      const b = served[name];
      res.writeHead(200, { 'content-length': String(b.length) });
      res.write(b.subarray(0, b.length >> 1));
      setTimeout(() => res.destroy(), 20);
    } else {
      res.writeHead(200, { 'content-type': 'application/gzip' }).end(served[name]);
    }
  });
  // keep idle connections longer than the slowest test, so fetch's pooled sockets stay valid
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

test('CLASS_NAMES and the published files', () => {
  assert.equal(fm.CLASS_NAMES.length, 10);
  assert.equal(fm.CLASS_NAMES[0], 'T-shirt/top');
  assert.equal(fm.CLASS_NAMES[9], 'Ankle boot');
  assert.deepEqual(
    fm.FASHION_MNIST_FILES.map((f) => f.md5),
    ['8d4fb7e6c68d591d4c3dfef9ec88bf0d', '25c81989df183df01b3e8a0aad5dffbe', 'bef4ecab320f06d8554ea6380940ec79', 'bb300cfdad3c16e7a12a480ee83cd310'],
  );
  assert.equal(fm.md5Hex(new TextEncoder().encode('abc')), '900150983cd24fb0d6963f7d28e17f72');
});

test('downloadFashionMnist fetches, verifies checksums, writes the cache, then reuses it', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const lines: string[] = [];
    const n0 = requests.length;
    await fm.downloadFashionMnist({ dir, mirrors: [`${base}/ok/`], files, log: (l) => lines.push(l) });
    assert.equal(requests.length - n0, 4);
    assert.deepEqual(fs.readdirSync(dir).sort(), Object.keys(served).sort());
    for (const [name, b] of Object.entries(served)) assert.deepEqual(new Uint8Array(fs.readFileSync(path.join(dir, name))), b);
    assert.ok(lines.every((l) => /downloaded from .* ok/.test(l)), lines.join('\n'));
    // second call: everything cached, no request
    await fm.downloadFashionMnist({ dir, mirrors: [`${base}/ok/`], files, log: (l) => lines.push(l) });
    assert.equal(requests.length - n0, 4);
    // and the loader now reads the real path
    const ds = await fm.loadFashionMnist({ dir, download: false });
    assert.equal(ds.source, 'fashion-mnist');
    assert.equal(ds.label, fm.REAL_LABEL);
    assert.equal(ds.reason, undefined);
    assert.equal(ds.train.count, 50);
    assert.deepEqual(ds.train.images, small.train.images);
    assert.deepEqual(ds.test.labels, small.test.labels);
  } finally {
    cleanup();
  }
});

test('a bad checksum fails clearly and leaves no file behind', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const bad = files.map((f, i) => (i === 1 ? { ...f, md5: '0'.repeat(32) } : f));
    await assert.rejects(
      fm.downloadFashionMnist({ dir, mirrors: [`${base}/ok/`], files: bad }),
      (e: Error) => {
        assert.match(e.message, /Could not download Fashion-MNIST file train-labels-idx1-ubyte\.gz/);
        assert.match(e.message, /checksum mismatch for train-labels-idx1-ubyte\.gz \(MD5 [0-9a-f]{32}, expected 0{32}/);
        return true;
      },
    );
    // the first file was fine and stays; the bad one and any temp file are gone
    assert.deepEqual(fs.readdirSync(dir), ['train-images-idx3-ubyte.gz']);
  } finally {
    cleanup();
  }
});

test('downloadFile: HTTP errors, dropped connections and unreachable hosts leave nothing behind', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const dest = path.join(dir, 'train-labels-idx1-ubyte.gz');
    await assert.rejects(fm.downloadFile(`${base}/missing/x.gz`, dest), /download of http:\/\/127\.0\.0\.1:\d+\/missing\/x\.gz failed: HTTP 404/);
    await assert.rejects(fm.downloadFile(`${base}/cut/train-images-idx3-ubyte.gz`, dest), /download of .*\/cut\/train-images-idx3-ubyte\.gz failed/);
    // a port nobody listens on
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    await assert.rejects(fm.downloadFile(`http://127.0.0.1:${port}/f.gz`, dest), /failed: ECONNREFUSED \(offline, or the host is unreachable\)/);
    assert.deepEqual(fs.readdirSync(dir), []);
  } finally {
    cleanup();
  }
});

test('mirrors are tried in order: a 404 on the first falls through to the second', async () => {
  const { dir, cleanup } = tempDir();
  try {
    await fm.downloadFashionMnist({ dir, mirrors: [`${base}/missing/`, `${base}/ok`], files });
    assert.equal(fs.readdirSync(dir).length, 4);
  } finally {
    cleanup();
  }
});

test('loadFashionMnist falls back to the stand-in when the download fails, and says why', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const standInDir = path.join(dir, 'stand-in');
    const ds = await fm.loadFashionMnist({ dir: path.join(dir, 'real'), mirrors: [`${base}/missing/`], standInDir, seed: 5 });
    assert.equal(ds.source, 'generated-stand-in');
    assert.equal(ds.label, fm.STAND_IN_LABEL);
    assert.equal(ds.dir, standInDir);
    assert.match(ds.reason ?? '', /could not be downloaded .*HTTP 404/);
    assert.deepEqual([ds.train.count, ds.test.count, ds.train.height, ds.train.width], [60000, 10000, 28, 28]);
    assert.equal(ds.train.images.length, 60000 * 784);
    // nothing half-written in the real cache, only the record of the failed attempt
    assert.deepEqual(fs.readdirSync(path.join(dir, 'real')), [fm.DOWNLOAD_FAILED_FILE]);
    // the stand-in was written as real IDX .gz files and read back through the parser
    assert.deepEqual(fs.readdirSync(standInDir).sort(), [...Object.keys(served), 'stand-in.json'].sort());
    const mem = fm.generateStandIn({ seed: 5 });
    assert.deepEqual(ds.train.images, mem.train.images);
    assert.deepEqual(ds.test.labels, mem.test.labels);
    // cached: a second load reads the same files without regenerating
    const mtime = fs.statSync(path.join(standInDir, 'train-images-idx3-ubyte.gz')).mtimeMs;
    const again = await fm.loadFashionMnist({ dir: path.join(dir, 'real'), download: false, standInDir, seed: 5 });
    assert.equal(fs.statSync(path.join(standInDir, 'train-images-idx3-ubyte.gz')).mtimeMs, mtime);
    assert.match(again.reason ?? '', /download disabled/);
    assert.deepEqual(again.train.labels, ds.train.labels);
  } finally {
    cleanup();
  }
});

test('after a failed automatic download, loads skip the network for a while; download: true retries', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const real = path.join(dir, 'real');
    const standInDir = path.join(dir, 'stand-in');
    fm.writeStandIn(standInDir, { seed: 1, trainCount: 20, testCount: 10 });
    const opts = { dir: real, mirrors: [`${base}/missing/`], standInDir, seed: 1 };
    const n0 = requests.length;
    const first = await fm.loadFashionMnist(opts);
    assert.equal(requests.length - n0, 1);
    assert.match(first.reason ?? '', /could not be downloaded \(download of .* HTTP 404/);
    const second = await fm.loadFashionMnist(opts);
    assert.equal(requests.length - n0, 1, 'no request within the retry window');
    assert.match(second.reason ?? '', /could not be downloaded at .*not retried for an hour/);
    assert.equal(second.source, 'generated-stand-in');
    await fm.loadFashionMnist({ ...opts, download: true });
    assert.equal(requests.length - n0, 2, 'download: true retries at once');
    // a successful download clears the record, and the real data is used
    const ok = await fm.loadFashionMnist({ ...opts, download: true, mirrors: [`${base}/ok/`] }).catch((e: Error) => e);
    // (the official checksums do not match the small served files, so fetch them with theirs)
    assert.ok(ok instanceof Error || ok.source === 'generated-stand-in');
    await fm.downloadFashionMnist({ dir: real, mirrors: [`${base}/ok/`], files });
    assert.ok(!fs.existsSync(path.join(real, fm.DOWNLOAD_FAILED_FILE)));
    assert.equal((await fm.loadFashionMnist(opts)).source, 'fashion-mnist');
  } finally {
    cleanup();
  }
});

test('corrupt cached real files throw (naming the file) instead of silently falling back', async () => {
  const { dir, cleanup } = tempDir();
  try {
    for (const [name, b] of Object.entries(served)) fs.writeFileSync(path.join(dir, name), b);
    fs.writeFileSync(path.join(dir, 't10k-images-idx3-ubyte.gz'), 'not gzip');
    await assert.rejects(fm.loadFashionMnist({ dir, download: false }), /t10k-images-idx3-ubyte\.gz: not gzip data/);
  } finally {
    cleanup();
  }
});

test('readImageSet: label/image count mismatch, labels outside 0–9, dims that disagree', () => {
  const { dir, cleanup } = tempDir();
  try {
    const imgs = path.join(dir, 'imgs.gz');
    const labs = path.join(dir, 'labs.gz');
    writeIdxFile(imgs, [3, 28, 28], new Uint8Array(3 * 784));
    writeIdxFile(labs, [4], Uint8Array.from([0, 1, 2, 3]));
    assert.throws(() => fm.readImageSet(imgs, labs), (e: Error) => e.message.startsWith(labs) && /label\/image count mismatch: 4 labels, but .*imgs\.gz holds 3 images/.test(e.message));
    writeIdxFile(labs, [3], Uint8Array.from([0, 10, 2]));
    assert.throws(() => fm.readImageSet(imgs, labs), (e: Error) => e.message.startsWith(labs) && /label 10 at index 1 is outside 0–9/.test(e.message));
    writeIdxFile(labs, [3], Uint8Array.from([0, 9, 2]));
    assert.equal(fm.readImageSet(imgs, labs).count, 3);
    assert.throws(() => fm.readImageSet(imgs, labs, 5), (e: Error) => e.message.startsWith(imgs) && /dimension 0 is 3, expected 5/.test(e.message));
    // images and labels swapped: the magic number tells
    assert.throws(() => fm.readImageSet(labs, imgs), (e: Error) => e.message.startsWith(labs) && /wrong magic number 2049/.test(e.message));
  } finally {
    cleanup();
  }
});

test('the stand-in is deterministic from its seed, balanced, and varied', () => {
  const a = fm.generateStandIn({ seed: 11, trainCount: 500, testCount: 100 });
  const b = fm.generateStandIn({ seed: 11, trainCount: 500, testCount: 100 });
  const c = fm.generateStandIn({ seed: 12, trainCount: 500, testCount: 100 });
  assert.deepEqual(a.train.images, b.train.images);
  assert.deepEqual(a.train.labels, b.train.labels);
  assert.deepEqual(a.test.images, b.test.images);
  assert.notDeepEqual(a.train.images, c.train.images);
  assert.notDeepEqual(a.train.images.subarray(0, 100 * 784), a.test.images);
  const counts = new Array(10).fill(0);
  for (const l of a.train.labels) counts[l]++;
  assert.deepEqual(counts, new Array(10).fill(50));
  // garments are brighter than the background; images differ within a class
  let lit = 0;
  for (const p of a.train.images) if (p > 60) lit++;
  const frac = lit / a.train.images.length;
  assert.ok(frac > 0.1 && frac < 0.7, `lit fraction ${frac}`);
  const first = (cls: number, k: number) => {
    const idx = [...a.train.labels].map((l, i) => [l, i]).filter(([l]) => l === cls)[k][1];
    return a.train.images.subarray(idx * 784, (idx + 1) * 784);
  };
  assert.notDeepEqual(first(0, 0), first(0, 1));
  // written files are byte-identical for the same seed
  const t1 = tempDir();
  const t2 = tempDir();
  try {
    fm.writeStandIn(t1.dir, { seed: 11, trainCount: 30, testCount: 10 });
    fm.writeStandIn(t2.dir, { seed: 11, trainCount: 30, testCount: 10 });
    for (const f of fs.readdirSync(t1.dir)) assert.deepEqual(fs.readFileSync(path.join(t1.dir, f)), fs.readFileSync(path.join(t2.dir, f)), f);
    assert.equal(JSON.parse(fs.readFileSync(path.join(t1.dir, 'stand-in.json'), 'utf8')).seed, 11);
  } finally {
    t1.cleanup();
    t2.cleanup();
  }
});

test('subset: first n, seeded random n, class filter, clamping', () => {
  const set = fm.generateStandIn({ seed: 2, trainCount: 200, testCount: 10 }).train;
  const s = fm.subset(set, 10);
  assert.equal(s.count, 10);
  assert.deepEqual(s.labels, set.labels.subarray(0, 10));
  assert.deepEqual(s.images, set.images.subarray(0, 7840));
  s.images[0] = 255 - set.images[0];
  assert.notEqual(s.images[0], set.images[0], 'a copy, not a view');
  const r1 = fm.subset(set, 20, { seed: 1 });
  const r2 = fm.subset(set, 20, { seed: 1 });
  const r3 = fm.subset(set, 20, { seed: 2 });
  assert.deepEqual(r1.images, r2.images);
  assert.notDeepEqual(r1.labels, r3.labels);
  const two = fm.subset(set, 1000, { classes: [3, 7] });
  assert.equal(two.count, 40);
  assert.ok([...two.labels].every((l) => l === 3 || l === 7));
  assert.equal(fm.subset(set, 5000).count, 200);
  assert.throws(() => fm.subset(set, -1), /non-negative integer/);
});
