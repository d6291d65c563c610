// Run the converted model in Node (pure tfjs, wasm backend) on a batch read from stdin.
//
//   echo '{"shape": [1, 8, 8], "values": [... 64 numbers ...]}' | node tools/predict.js artifacts/web
//
// `shape` is [N, ...the spec's item shape], `values` the raw values, row-major. The batch passes
// the page's contract check (page/contract.js) first: a refused batch exits 2 with its message on
// stderr. Prints {"backend": "wasm", "probabilities": [... N*K ...]} on stdout. This is what the
// Python Predictor of the browser target (web/tfjs/predictor.py) calls.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

import { ContractError, checkBatch } from '../page/contract.js';
import { chooseBackend, predict } from '../page/model.js';
import { fileHandler } from './files.js';

const web = process.argv[2];
if (!web) throw new Error('usage: node tools/predict.js <artifacts/web folder>  (batch JSON on stdin)');
const spec = JSON.parse(readFileSync(join(web, 'spec.json'), 'utf8'));
const batch = JSON.parse(readFileSync(0, 'utf8'));
let values;
try {
  ({ values } = checkBatch({ shape: batch.shape, values: batch.values }, spec, { maxBatch: null }));
} catch (error) {
  if (!(error instanceof ContractError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exit(2);
}
const backend = await chooseBackend(tf, ['wasm']);
const model = await tf.loadGraphModel(fileHandler(tf, join(web, 'model', 'model.json')));
const probabilities = await predict(tf, model, spec, values);
process.stdout.write(JSON.stringify({ backend, probabilities: Array.from(probabilities) }));
