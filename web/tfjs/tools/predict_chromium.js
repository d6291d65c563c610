// Run the served page's model in headless Debian Chromium on a batch read from stdin.
//
//   echo '{"shape": [1, 8, 8], "values": [... 64 numbers ...]}' | \
//     node tools/predict_chromium.js http://127.0.0.1:8000/ [runtime]
//
// `shape` is [N, ...the spec's item shape] (any task: (N, H, W) or (N, H, W, C)), `values` the
// N*H*W[*C] raw values, row-major. Opens the page (one fresh browser per call), waits until it
// has loaded its model, then hands the whole batch to `window.digits.predictBatch`, the page's
// own code path: the contract check (page/contract.js), then the model (page/model.js). Prints
// {"backend": "wasm", "probabilities": [... N*K ...]} on stdout; a batch the contract refuses
// exits 2 with the check's message on stderr. `runtime` (default tfjs) is one of the page's runtimes
// (runtimes.json: tfjs, onnxruntime-web, litert); the page loads only that one. This is what the
// Python Predictor of the browser targets (web/tfjs/chromium_predictor.py) calls.
import { readFileSync } from 'node:fs';

import { launch } from './chromium.js';

const [url, runtime = 'tfjs'] = process.argv.slice(2);
if (!url) throw new Error('usage: node tools/predict_chromium.js <page URL> [runtime]  (batch JSON on stdin)');
const batch = JSON.parse(readFileSync(0, 'utf8'));

const browser = await launch();
try {
  await browser.page.goto(`${url}?runtime=${encodeURIComponent(runtime)}`);
  const result = await browser.page.evaluate(async ({ shape, values, name }) => {
    await window.digits.ready; // rejects with the page's own error when the model cannot load
    try {
      const probabilities = await window.digits.predictBatch({ shape, values }, { runtime: name });
      return { backend: window.digits.runtimes[name].backend, probabilities: Array.from(probabilities) };
    } catch (error) {
      if (error.constructor.name === 'ContractError') return { refused: error.message };
      throw error;
    }
  }, { ...batch, name: runtime });
  if (result.refused) {
    process.stderr.write(`${result.refused}\n`);
    process.exitCode = 2;
  } else {
    process.stdout.write(JSON.stringify(result));
  }
} finally {
  await browser.close();
}
