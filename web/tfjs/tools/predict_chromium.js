// Run the served page's model in headless Debian Chromium on a batch read from stdin.
//
//   echo '{"shape": [1, 8, 8], "values": [... 64 numbers 0..16 ...]}' | \
//     node tools/predict_chromium.js http://127.0.0.1:8000/
//
// Opens the page (one fresh browser per call), waits until it has loaded its model, then hands
// the whole batch to `window.digits.predictValues`, the page's own code path (page/model.js).
// Prints {"backend": "wasm", "probabilities": [... N*10 ...]} on stdout. This is what the Python
// Predictor of the `tfjs-chromium` target (web/tfjs/chromium_predictor.py) calls.
import { readFileSync } from 'node:fs';

import { launch } from './chromium.js';

const url = process.argv[2];
if (!url) throw new Error('usage: node tools/predict_chromium.js <page URL>  (batch JSON on stdin)');
const batch = JSON.parse(readFileSync(0, 'utf8'));

const browser = await launch();
try {
  await browser.page.goto(url);
  const result = await browser.page.evaluate(async (values) => {
    await window.digits.ready; // rejects with the page's own error when the model cannot load
    const probabilities = await window.digits.predictValues(Float32Array.from(values));
    return { backend: window.digits.backend, probabilities: Array.from(probabilities) };
  }, batch.values);
  process.stdout.write(JSON.stringify(result));
} finally {
  await browser.close();
}
