import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as nb from '../../lib/notebook';

test('speedup words follow the measured ratio', () => {
  assert.equal(nb.speedup(10, 4), '2.50× faster');
  assert.equal(nb.speedup(4, 10), '2.50× slower');
  assert.equal(nb.speedup(100, 5), '20.0× faster');
  assert.equal(nb.speedup(1.03, 1), 'about as fast (1.03×)');
  assert.equal(nb.speedup(1, 1.05), 'about as fast (0.95×)');
  assert.equal(nb.speedup(1.3, 1, 0.5), 'about as fast (1.30×)');
});

test('speedup says "not measured" instead of inventing a ratio', () => {
  assert.equal(nb.speedup(NaN, 1), 'not measured');
  assert.equal(nb.speedup(1, 0), 'not measured');
  assert.equal(nb.speedup(Infinity, 1), 'not measured');
});
