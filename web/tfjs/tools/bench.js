// Benchmark the served page in headless Chromium, per backend; prints one JSON object on stdout.
//
//   node tools/bench.js --url http://127.0.0.1:8000/ --web artifacts/web [--backends wasm,webgl,cpu]
//                       [--cold-runs 3] [--warm-runs 200]
//
// cold: a fresh browser (empty profile, nothing cached) navigates to the page; the time from
//       navigation start to the page's first prediction (script, wasm and model download and
//       compilation, backend start, one warm-up inference).
// warm: `--warm-runs` predictions in a row, each timed in the page: `pipeline` = input pixels ->
//       reduction -> contract check -> model -> probabilities read back, from a digit drawn on
//       the pad (tasks with the ink-block reduction) or else from a test picture's decoded
//       pixels; `model` = the reduced input -> probabilities. Reported as p50/p99 in milliseconds.
// Run it through `make bench-web` (python -m web.tfjs.bench), which serves the page and writes JSON.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { launch } from './chromium.js';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    web: { type: 'string' },
    backends: { type: 'string', default: 'wasm,webgl,cpu' },
    'cold-runs': { type: 'string', default: '3' },
    'warm-runs': { type: 'string', default: '200' },
  },
});
if (!args.url || !args.web) throw new Error('--url and --web are required');
const coldRuns = Number(args['cold-runs']);
const warmRuns = Number(args['warm-runs']);
const readFixture = (name) => JSON.parse(readFileSync(join(args.web, 'fixtures', name), 'utf8'));
const drawable = JSON.parse(readFileSync(join(args.web, 'spec.json'), 'utf8')).reduction.kind === 'ink_blocks';
const plan = drawable ? readFixture('drawn.json') : null;
const picture = drawable ? null : readFixture('uploads.json').pictures[0];

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
function summary(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50_ms: percentile(sorted, 50), p99_ms: percentile(sorted, 99), max_ms: sorted.at(-1), n: sorted.length };
}

async function openPage(backend) {
  const browser = await launch();
  await browser.page.goto(`${args.url}?backend=${backend}`);
  const state = await browser.page.evaluate(() => window.digits.ready.then(
    () => ({
      backend: window.digits.backend,
      cold: window.digits.firstPredictionAt,
      isolated: window.crossOriginIsolated,
      threads: window.digits.backend === 'wasm' ? window.tf.wasm.getThreadsCount() : null,
    }),
    (error) => ({ error: error.message })));
  return { browser, state };
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

async function warm(page, runs) {
  return page.evaluate(async ({ n, png }) => {
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
      await window.digits.predictValues(values);
      model.push(performance.now() - started);
    }
    return { pipeline, model };
  }, { n: runs, png: picture && picture.png });
}

const results = {};
for (const backend of args.backends.split(',')) {
  const cold = [];
  let result = null;
  for (let run = 0; run < coldRuns && !result; run++) {
    const { browser, state } = await openPage(backend);
    try {
      if (state.error) {
        result = { error: state.error };
      } else {
        cold.push(state.cold);
        if (run === coldRuns - 1) { // the last browser stays open for the warm runs
          if (drawable) await drawDigit(browser.page);
          const timings = await warm(browser.page, warmRuns);
          result = { backend: state.backend, cross_origin_isolated: state.isolated, wasm_threads: state.threads,
            cold_start: summary(cold), cold_samples_ms: cold,
            warm_pipeline: summary(timings.pipeline), warm_model: summary(timings.model) };
        }
      }
    } finally {
      await browser.close();
    }
  }
  results[backend] = result;
  process.stderr.write(`bench-web: ${backend} done\n`);
}
console.log(JSON.stringify({ chromium: process.env.CHROMIUM || '/usr/bin/chromium', cold_runs: coldRuns, warm_runs: warmRuns, backends: results }));
