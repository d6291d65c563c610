// The converted graph model on pure tfjs with the wasm backend gives Keras's answers on the test split.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import test from 'node:test';

import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

import { chooseBackend, predict, shapes } from '../../page/model.js';
import { fileHandler } from '../../tools/files.js';
import { readFixture, readJSON, webDir } from './load.js';

const TOLERANCE = 1e-4; // max abs probability difference to Keras

const spec = readJSON('spec.json');
const keras = readFixture('keras_test.json');

test('tfjs (wasm) matches Keras on the saved test split', async () => {
  assert.equal(await chooseBackend(tf, ['wasm']), 'wasm');
  const model = await tf.loadGraphModel(fileHandler(tf, join(webDir(), 'model', 'model.json')));
  const { classes } = shapes(spec);
  const probabilities = await predict(tf, model, spec, Float32Array.from(keras.x));
  assert.equal(probabilities.length, keras.count * classes);

  let maxDiff = 0;
  const mismatched = [];
  for (let i = 0; i < keras.count; i++) {
    const row = probabilities.subarray(i * classes, (i + 1) * classes);
    const expected = keras.probabilities.slice(i * classes, (i + 1) * classes);
    row.forEach((p, j) => { maxDiff = Math.max(maxDiff, Math.abs(p - expected[j])); });
    const argmax = (values) => values.indexOf(Math.max(...values));
    if (argmax(Array.from(row)) !== argmax(expected)) mismatched.push(i);
    assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-5, `row ${i} does not sum to 1`);
  }
  console.log(`# ${keras.count} test images, max abs diff to Keras ${maxDiff.toExponential(2)}`);
  assert.deepEqual(mismatched, [], `labels differ from Keras at test indices ${mismatched}`);
  assert.ok(maxDiff <= TOLERANCE, `max abs diff ${maxDiff} > ${TOLERANCE}`);
  model.dispose();
});

test('a batch of the wrong size is refused with a clear message', async () => {
  const model = await tf.loadGraphModel(fileHandler(tf, join(webDir(), 'model', 'model.json')));
  const { item, itemSize } = shapes(spec);
  await assert.rejects(predict(tf, model, spec, new Float32Array(itemSize + 1)),
    new RegExp(`expected a multiple of ${item.join('x')} values, got ${itemSize + 1}`));
  model.dispose();
});
