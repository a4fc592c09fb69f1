import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fm from '../../lib/data/fashion-mnist';
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

test('nb.announce shows the stand-in notice and is silent for the real data', async () => {
  const set = fm.generateStandIn({ seed: 1, trainCount: 10, testCount: 10 });
  const standIn: fm.FashionMnist = { ...set, classNames: fm.CLASS_NAMES, source: 'generated-stand-in', label: fm.STAND_IN_LABEL, dir: '/x', reason: 'the real data is not cached in /x and could not be downloaded (ENOTFOUND)' };
  const real: fm.FashionMnist = { ...standIn, source: 'fashion-mnist', label: fm.REAL_LABEL, reason: undefined };
  const logged: string[] = [];
  const orig = console.log;
  console.log = (...xs: unknown[]) => void logged.push(xs.join(' '));
  try {
    nb.announce(real);
    assert.deepEqual(logged, []);
    nb.announce(standIn);
  } finally {
    console.log = orig;
  }
  assert.equal(logged.length, 1);
  assert.match(logged[0], /NOTICE: .*generated stand-in\*\*, not Fashion-MNIST.*could not be downloaded here.*npm run data:fetch/);
  assert.equal(nb.standInNotice(real), '');
});
