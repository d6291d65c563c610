// Run the converted model in Node (pure tfjs, wasm backend) on a batch read from stdin.
//
//   echo '{"shape": [1, 8, 8], "values": [... 64 numbers 0..16 ...]}' | node tools/predict.js artifacts/web
//
// Prints {"backend": "wasm", "probabilities": [... N*10 ...]} on stdout. This is what the Python
// Predictor of the browser target (web/tfjs/predictor.py) calls.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

import { chooseBackend, predict, shapes } from '../page/model.js';
import { fileHandler } from './files.js';

const web = process.argv[2];
if (!web) throw new Error('usage: node tools/predict.js <artifacts/web folder>  (batch JSON on stdin)');
const spec = JSON.parse(readFileSync(join(web, 'spec.json'), 'utf8'));
const batch = JSON.parse(readFileSync(0, 'utf8'));
const { height, width } = shapes(spec);
const [n, h, w] = batch.shape;
if (h !== height || w !== width || batch.values.length !== n * h * w) {
  throw new Error(`expected shape [N, ${height}, ${width}] with N*${height * width} values, got [${batch.shape}] and ${batch.values.length}`);
}
const backend = await chooseBackend(tf, ['wasm']);
const model = await tf.loadGraphModel(fileHandler(tf, join(web, 'model', 'model.json')));
const probabilities = await predict(tf, model, spec, Float32Array.from(batch.values));
process.stdout.write(JSON.stringify({ backend, probabilities: Array.from(probabilities) }));
