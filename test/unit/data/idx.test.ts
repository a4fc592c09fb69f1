import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as idx from '../../../lib/data/idx';
import { tempDir } from '../../support/helpers';

const FILE = 'some/dir/train-images-idx3-ubyte.gz';

function images(n: number, h = 4, w = 3): { dims: number[]; data: Uint8Array } {
  return { dims: [n, h, w], data: Uint8Array.from({ length: n * h * w }, (_, i) => (i * 7) % 256) };
}

test('encodeIdx writes the magic number, big-endian dims and payload', () => {
  const bytes = idx.encodeIdx([2, 3], Uint8Array.from([1, 2, 3, 4, 5, 6]));
  assert.deepEqual(Array.from(bytes.subarray(0, 12)), [0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3]);
  assert.deepEqual(Array.from(bytes.subarray(12)), [1, 2, 3, 4, 5, 6]);
  assert.equal(idx.idxMagic(1), 2049);
  assert.equal(idx.idxMagic(3), 2051);
  assert.throws(() => idx.encodeIdx([2, 3], new Uint8Array(5)), /need 6 bytes, data has 5/);
});

test('parse(encode(x)) round-trips 1-D and 3-D arrays, raw and gzip', () => {
  const im = images(5);
  const back = idx.parseIdx(idx.encodeIdx(im.dims, im.data), FILE, { ndims: 3, dims: [null, 4, 3] });
  assert.deepEqual(back.dims, [5, 4, 3]);
  assert.deepEqual(back.data, im.data);
  const labels = Uint8Array.from([0, 9, 3]);
  const gz = idx.encodeIdxGz([3], labels);
  assert.ok(idx.isGzip(gz));
  const l = idx.parseIdxGz(gz, 'labels.gz', { ndims: 1 });
  assert.deepEqual(l.dims, [3]);
  assert.deepEqual(l.data, labels);
  // deterministic output (no timestamp in the gzip header)
  assert.deepEqual(idx.encodeIdxGz([3], labels), gz);
});

test('writeIdxFile / readIdxFile round-trip through a real .gz file, leaving no temp files', () => {
  const { dir, cleanup } = tempDir();
  try {
    const im = images(7, 28, 28);
    const f = path.join(dir, 'x-idx3-ubyte.gz');
    idx.writeIdxFile(f, im.dims, im.data);
    assert.deepEqual(fs.readdirSync(dir), ['x-idx3-ubyte.gz']);
    const r = idx.readIdxFile(f, { ndims: 3, dims: [7, 28, 28] });
    assert.deepEqual(r.data, im.data);
    assert.throws(() => idx.readIdxFile(path.join(dir, 'missing.gz')), (e: Error) => e.message.includes('missing.gz') && /cannot read/.test(e.message));
  } finally {
    cleanup();
  }
});

/** Assert that parsing throws an error naming FILE and matching `problem`. */
function assertBad(fn: () => unknown, problem: RegExp): void {
  assert.throws(fn, (e: Error) => {
    assert.ok(e.message.startsWith(FILE), `error should start with the file name: ${e.message}`);
    assert.match(e.message, problem);
    return true;
  });
}

test('wrong magic number: non-zero leading bytes, wrong type code, wrong number of dims', () => {
  const im = images(2);
  const good = idx.encodeIdx(im.dims, im.data);
  const b1 = good.slice();
  b1[0] = 0x1f;
  assertBad(() => idx.parseIdx(b1, FILE), /wrong magic number.*two zero bytes/);
  const b2 = good.slice();
  b2[2] = 0x0d; // float
  assertBad(() => idx.parseIdx(b2, FILE), /wrong magic number.*type code 0x0d/);
  // labels file read where images were expected: magic 2049 instead of 2051
  const lab = idx.encodeIdx([6], new Uint8Array(6));
  assertBad(() => idx.parseIdx(lab, FILE, { ndims: 3 }), /wrong magic number 2049.*expected 3.*2051/);
  assertBad(() => idx.parseIdx(Uint8Array.from([0, 0]), FILE), /shorter than the 4-byte magic/);
  const zero = Uint8Array.from([0, 0, 8, 0]);
  assertBad(() => idx.parseIdx(zero, FILE), /zero dimensions/);
});

test('truncated header, truncated payload, trailing bytes', () => {
  const im = images(3);
  const good = idx.encodeIdx(im.dims, im.data);
  assertBad(() => idx.parseIdx(good.subarray(0, 10), FILE), /truncated header: 3 dimensions need 16 header bytes, the file has 10/);
  assertBad(() => idx.parseIdx(good.subarray(0, good.length - 5), FILE), /truncated payload.*\[3, 4, 3\] need 36 bytes, only 31/);
  const longer = new Uint8Array(good.length + 2);
  longer.set(good);
  assertBad(() => idx.parseIdx(longer, FILE), /2 trailing bytes/);
  // the same checks through gzip
  assertBad(() => idx.parseIdx(zlib.gunzipSync(zlib.gzipSync(good.subarray(0, 20))), FILE), /truncated payload/);
});

test('dimensions that disagree with what is expected', () => {
  const im = images(3, 27, 28);
  const bytes = idx.encodeIdx(im.dims, im.data);
  assertBad(() => idx.parseIdx(bytes, FILE, { dims: [null, 28, 28] }), /dimensions \[3, 27, 28\] disagree with the expected \[\*, 28, 28\] \(dimension 1 is 27, expected 28\)/);
  assertBad(() => idx.parseIdx(bytes, FILE, { dims: [10, null, null] }), /dimension 0 is 3, expected 10/);
  assertBad(() => idx.parseIdx(bytes, FILE, { dims: [null, null] }), /disagree with the expected 2-D shape/);
});

test('non-gzip bytes and corrupt gzip streams', () => {
  const raw = idx.encodeIdx([2], Uint8Array.from([1, 2]));
  assertBad(() => idx.parseIdxGz(raw, FILE), /not gzip data \(starts with 00 00 08 01/);
  assertBad(() => idx.parseIdxGz(new TextEncoder().encode('<html>404</html>'), FILE), /not gzip data \(starts with 3c 68 74 6d/);
  assertBad(() => idx.parseIdxGz(new Uint8Array(0), FILE), /not gzip data \(starts with \(empty\)/);
  const gz = idx.encodeIdxGz([1000], new Uint8Array(1000).fill(3));
  assertBad(() => idx.parseIdxGz(gz.subarray(0, gz.length - 12), FILE), /corrupt gzip data/);
});
