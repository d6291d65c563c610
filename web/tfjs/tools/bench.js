// Measure the served page in headless Chromium, one runtime (and TF.js backend) at a time; prints
// one JSON object of raw samples on stdout (benchmarks/browser.py summarizes them with
// benchmarks/timing.py, the project's one timer summary).
//
//   node tools/bench.js --url http://127.0.0.1:8000/ --web artifacts/web --fixtures artifacts/web-fixtures
//        --configs tfjs:wasm,onnxruntime-web,... [--cold-runs 3] [--warm-runs 200]
//
// A config is a runtime of runtimes.json, with a TF.js backend for tfjs; the page loads that one
// alone (`?runtime=<name>[&backend=<b>]`).
// cold:   a fresh browser (empty profile, nothing cached) navigates to the page; the time from
//         navigation start to that runtime's first answer (`digits.runtimes[name].firstAnswerAt`:
//         scripts, wasm and model fetched and compiled, the runtime started, one blank inference).
// warm:   `--warm-runs` predictions in a row, each timed in the page: `pipeline` = input pixels ->
//         reduction -> contract check -> model -> probabilities read back, from a digit drawn on the
//         pad (ink-block tasks) or else a test picture's decoded pixels; `model` = the reduced
//         input -> probabilities (`digits.predictValues(values, runtime)`).
// bytes:  every response the first cold run received, by URL, with its body size as Chromium
//         fetched it (`request.sizes().responseBodySize`); bench.py sorts them into the runtime's own
//         scripts, wasm and model (its `files` in runtimes.json) and the page's shared files.
// Run it through `make bench-web` (python -m benchmarks web), which serves the page and writes JSON.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { launch } from './chromium.js';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    web: { type: 'string' },
    fixtures: { type: 'string' }, // the test vectors, kept outside the served folder
    configs: { type: 'string' }, // given by benchmarks/browser.py, which reads the page's rows from core/registry.py
    'cold-runs': { type: 'string', default: '3' },
    'warm-runs': { type: 'string', default: '200' },
  },
});
if (!args.url || !args.web || !args.fixtures || !args.configs) {
  throw new Error('--url, --web, --fixtures and --configs are required');
}
const coldRuns = Number(args['cold-runs']);
const warmRuns = Number(args['warm-runs']);
const readFixture = (name) => JSON.parse(readFileSync(join(args.fixtures, name), 'utf8'));
const drawable = JSON.parse(readFileSync(join(args.web, 'spec.json'), 'utf8')).reduction.kind === 'ink_blocks';
const plan = drawable ? readFixture('drawn.json') : null;
const picture = drawable ? null : readFixture('uploads.json').pictures[0];

/** A fresh browser on the page with one runtime; {browser, state, responses} once it loaded (or failed). */
async function openPage(runtime, backend) {
  const browser = await launch();
  const responses = [];
  browser.context.on('response', (response) => {
    responses.push(response.request().sizes().then(
      (sizes) => ({ url: response.url(), status: response.status(), bytes: sizes.responseBodySize }),
      () => ({ url: response.url(), status: response.status(), bytes: null })));
  });
  const query = new URLSearchParams({ runtime, ...(backend ? { backend } : {}) });
  await browser.page.goto(`${args.url}?${query}`);
  const state = await browser.page.evaluate((name) => window.digits.ready.then(
    () => {
      const own = window.digits.runtimes[name];
      return own.error ? { error: own.error } : {
        backend: own.backend,
        cold: own.firstAnswerAt,
        isolated: window.crossOriginIsolated,
        threads: name === 'tfjs' && own.backend === 'wasm' ? window.tf.wasm.getThreadsCount() : null,
      };
    },
    (error) => ({ error: error.message })), runtime);
  return { browser, state, responses: await Promise.all(responses) };
}

async function drawDigit(page) {
  const box = await page.locator('#pad').boundingBox();
  const at = ([x, y]) => [box.x + (x * box.width) / plan.grid, box.y + (y * box.height) / plan.grid];
  for (const [start, end] of plan.digits[0].strokes) {
    await page.mouse.move(...at(start));
    await page.mouse.down();
    await page.mouse.move(...at(end), { steps: 4 });
    await page.mouse.up();
  }
  await page.waitForSelector('#prediction[data-state="ready"]');
}

async function warm(page, runtime, runs) {
  return page.evaluate(async ({ n, png, name }) => {
    const pipeline = [];
    const model = [];
    let run = () => window.digits.predictCanvas();
    if (png) { // a test picture's pixels, decoded once; each run reduces, checks and predicts them
      const bytes = Uint8Array.from(atob(png), (c) => c.charCodeAt(0));
      const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
      const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
      const context = canvas.getContext('2d');
      context.drawImage(bitmap, 0, 0);
      const image = context.getImageData(0, 0, bitmap.width, bitmap.height);
      run = () => window.digits.predictPixels(image.data, image.width, image.height);
    }
    const values = Float32Array.from((await run()).values);
    for (let i = 0; i < n; i++) {
      let started = performance.now();
      await run();
      pipeline.push(performance.now() - started);
      started = performance.now();
      await window.digits.predictValues(values, name);
      model.push(performance.now() - started);
    }
    return { pipeline, model };
  }, { n: runs, png: picture && picture.png, name: runtime });
}

const results = {};
for (const config of args.configs.split(',')) {
  const [runtime, backend = null] = config.split(':');
  const key = backend ? `${runtime}-${backend}` : runtime;
  const cold = [];
  let result = null;
  let responses = null;
  for (let run = 0; run < coldRuns && !result; run++) {
    const opened = await openPage(runtime, backend);
    const { browser, state } = opened;
    responses ??= opened.responses; // what a first visit fetches
    try {
      if (state.error) {
        result = { runtime, error: state.error };
      } else {
        cold.push(state.cold);
        if (run === coldRuns - 1) { // the last browser stays open for the warm runs
          if (drawable) await drawDigit(browser.page);
          const timings = await warm(browser.page, runtime, warmRuns);
          result = { runtime, backend: state.backend, cross_origin_isolated: state.isolated, wasm_threads: state.threads,
            cold_samples_ms: cold, warm_pipeline_samples_ms: timings.pipeline, warm_model_samples_ms: timings.model,
            responses };
        }
      }
    } finally {
      await browser.close();
    }
  }
  results[key] = result;
  process.stderr.write(`bench-web: ${key} ${result.error ? `unavailable: ${result.error}` : 'done'}\n`);
}
console.log(JSON.stringify({ chromium: process.env.CHROMIUM || '/usr/bin/chromium', cold_runs: coldRuns,
  warm_runs: warmRuns, configs: results }));
