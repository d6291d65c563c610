// page/preprocess.js against the vectors Python wrote with training.preprocess: identical, bit for bit,
// for both reductions (the digits' ink blocks; the plain resize, grey and colour, square and not).
import assert from 'node:assert/strict';
import test from 'node:test';

import { MAX_PIXELS, ReductionError, pictureToInput } from '../../page/preprocess.js';
import { readFixture } from './load.js';

const { max_pixels: maxPixels, specs, vectors } = readFixture('pictures.json');

test('there are vectors of every kind, including errors', () => {
  assert.ok(vectors.length >= 80, `only ${vectors.length} vectors`);
  assert.ok(vectors.some((v) => v.error) && vectors.some((v) => v.expected));
  for (const kind of ['ink-canvas', 'ink-paper', 'ink-screen', 'ink-colour', 'ink-noisy', 'ink-single-ink-pixel',
    'ink-majority-ink', 'resize-grey-12x16-', 'resize-grey-9x9x1', 'resize-rgb-12x16x3', 'resize-rgb-20x7x3',
    'resize-rgb-5x5x3']) {
    assert.ok(vectors.some((v) => v.name.startsWith(kind) && v.expected), `no reduced vector of kind ${kind}`);
  }
  for (const alpha of ['opaque', 'transparent', 'translucent', 'grey', 'gradient']) {
    assert.ok(vectors.some((v) => v.name.includes(`-${alpha}-`) && v.expected), `no resize vector that is ${alpha}`);
  }
});

test('the pixel limit is Python\'s', () => {
  assert.equal(MAX_PIXELS, maxPixels);
});

for (const vector of vectors) {
  test(`picture ${vector.name}`, () => {
    const spec = specs[vector.spec];
    const rgba = new Uint8Array(Buffer.from(vector.rgba, 'base64'));
    if (vector.error) {
      assert.throws(() => pictureToInput(rgba, vector.width, vector.height, spec),
        (error) => error instanceof ReductionError && error.message === vector.error);
      return;
    }
    const values = pictureToInput(rgba, vector.width, vector.height, spec);
    assert.ok(values instanceof Float32Array);
    assert.equal(values.length, vector.shape.reduce((a, b) => a * b, 1));
    assert.deepEqual(Array.from(values), vector.expected);
  });
}

test('a wrong pixel count is refused with a message naming it', () => {
  for (const spec of [specs.digits, specs['rgb-12x16x3']]) {
    assert.throws(() => pictureToInput(new Uint8Array(10), 2, 2, spec), /expected 16 RGBA bytes for 2x2, got 10/);
  }
});

test('an unknown reduction and a huge picture are refused', () => {
  const spec = { ...specs['grey-12x16'], reduction: { kind: 'sharpen' } };
  assert.throws(() => pictureToInput(new Uint8Array(4), 1, 1, spec), /reduction kind "sharpen" is unknown/);
  assert.throws(() => pictureToInput(new Uint8Array(0), 5000, 5000, specs['grey-12x16']),
    /image too large: 5000x5000 pixels \(at most 16,000,000\)/);
});
