// page/reduce.js against the vectors Python wrote with training.preprocess: identical, bit for bit.
import assert from 'node:assert/strict';
import test from 'node:test';

import { ReductionError, reduceDrawing } from '../../page/reduce.js';
import { readJSON } from './load.js';

const spec = readJSON('spec.json');
const { vectors } = readJSON('fixtures', 'reduction.json');

test('there are vectors of every kind, including errors', () => {
  assert.ok(vectors.length >= 40, `only ${vectors.length} vectors`);
  assert.ok(vectors.some((v) => v.error) && vectors.some((v) => v.expected));
  for (const kind of ['canvas', 'paper', 'screen', 'colour', 'noisy', 'single-ink-pixel', 'ink-is-majority']) {
    assert.ok(vectors.some((v) => v.name.startsWith(kind) && v.expected), `no reduced vector of kind ${kind}`);
  }
});

for (const vector of vectors) {
  test(`reduction of ${vector.name}`, () => {
    const rgba = new Uint8Array(Buffer.from(vector.rgba, 'base64'));
    if (vector.error) {
      assert.throws(() => reduceDrawing(rgba, vector.width, vector.height, spec.reduction),
        (error) => error instanceof ReductionError && error.message === vector.error);
      return;
    }
    const values = reduceDrawing(rgba, vector.width, vector.height, spec.reduction);
    assert.ok(values instanceof Float32Array);
    assert.deepEqual(Array.from(values), vector.expected);
  });
}

test('a wrong pixel count is refused with a message naming it', () => {
  assert.throws(() => reduceDrawing(new Uint8Array(10), 2, 2, spec.reduction), /expected 16 RGBA bytes for 2x2, got 10/);
});
