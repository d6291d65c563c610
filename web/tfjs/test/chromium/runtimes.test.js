// Every runtime of the page (runtimes.json: TF.js, onnxruntime-web, LiteRT.js on two files) answers the same
// input in its own row, offline; a runtime whose model file is missing or damaged shows why in its
// row while the others keep answering. Any task: the digits are drawn on #pad with the mouse, any
// other task's test pictures are uploaded.
//
// Each input the page saw and each row's label are written to $DIGITS_ROWS_OUT (JSON), where the
// pytest side (tests/browser/test_chromium.py) checks every label against the Python reference of
// the row's source framework (PyTorch for onnxruntime-web, Keras for TF.js and LiteRT.js).
//
//   DIGITS_WEB_URL=http://127.0.0.1:8000/ DIGITS_WEB=artifacts/web node --test test/chromium/runtimes.test.js
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import test from 'node:test';

import { launch, recordRequests } from '../../tools/chromium.js';
import { readFixture, readJSON } from '../node/load.js';

const URL_ = process.env.DIGITS_WEB_URL;
const ROWS_OUT = process.env.DIGITS_ROWS_OUT;
const SCREENSHOT = process.env.DIGITS_RUNTIMES_SCREENSHOT;
const spec = readJSON('spec.json');
const { runtimes } = readJSON('runtimes.json');
const drawable = spec.reduction.kind === 'ink_blocks';
const plan = drawable ? readFixture('drawn.json') : null;
const { pictures } = readFixture('uploads.json');
const NAMES = runtimes.map((entry) => entry.name);

/** A page in a fresh browser that records every request and every error (CSP violations included). */
async function open(route) {
  const browser = await launch();
  const requests = recordRequests(browser.context);
  const errors = [];
  browser.page.on('pageerror', (error) => errors.push(error.message));
  browser.page.on('console', (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) errors.push(message.text());
  });
  if (route) await browser.page.route(route.pattern, route.handler);
  await browser.page.goto(URL_);
  await browser.page.evaluate(() => window.digits.ready);
  return { browser, page: browser.page, requests, errors };
}

/** Draw one planned digit with the mouse (or upload one test picture) -> the page's answer per row. */
async function answer(page, i) {
  if (drawable) {
    await page.click('#clear');
    const box = await page.locator('#pad').boundingBox();
    const at = ([x, y]) => [box.x + (x * box.width) / plan.grid, box.y + (y * box.height) / plan.grid];
    for (const [start, end] of plan.digits[i].strokes) {
      await page.mouse.move(...at(start));
      await page.mouse.down();
      await page.mouse.move(...at(end), { steps: 4 });
      await page.mouse.up();
    }
    await page.waitForSelector('#prediction[data-state="ready"]', { timeout: 15000 });
  } else {
    const before = await page.evaluate(() => window.digits.uploads);
    await page.setInputFiles('#file', { name: `test-${i}.png`, mimeType: 'image/png', buffer: Buffer.from(pictures[i].png, 'base64') });
    await page.waitForFunction((n) => window.digits.uploads > n, before, { timeout: 15000 });
  }
  return page.evaluate((names) => ({
    input: window.digits.lastInput,
    headline: document.getElementById('prediction').textContent,
    rows: Object.fromEntries(names.map((name) => {
      const row = document.querySelector(`[data-runtime="${name}"]`);
      return [name, { state: row.dataset.state, label: row.querySelector('.label').textContent,
        ms: row.querySelector('.ms').textContent, text: row.textContent }];
    })),
  }), NAMES);
}

const expected = (i) => (drawable ? plan.digits[i].label : pictures[i].label);
const count = () => Math.min(3, drawable ? plan.digits.length : pictures.length);

test('every runtime answers the same input in its own row, offline', { timeout: 180000 }, async () => {
  assert.ok(URL_, 'set DIGITS_WEB_URL to the served page (python -m web.tfjs.serve)');
  // The rows are core/registry.py's rows with a page, TF.js first (runtimes.json).
  assert.equal(NAMES[0], 'tfjs');
  for (const name of ['onnxruntime-web', 'litert']) assert.ok(NAMES.includes(name), `${name} has a row`);
  const { browser, page, requests, errors } = await open();
  const seen = [];
  try {
    assert.equal(await page.locator('[data-runtime]').count(), NAMES.length);
    assert.equal(await page.locator('#backend').textContent(), 'wasm');
    // Nothing is predicted before there is an input: no label in any row.
    for (const name of NAMES) assert.equal(await page.locator(`[data-runtime="${name}"] .label`).textContent(), '');
    for (let i = 0; i < count(); i++) {
      const shown = await answer(page, i);
      assert.equal(shown.headline, expected(i), `input ${i}: the headline`);
      for (const [name, row] of Object.entries(shown.rows)) {
        assert.equal(row.state, 'ready', `${name}: ${row.text}`);
        assert.ok(spec.labels.includes(row.label), `${name}: "${row.label}" is not one of the spec's labels`);
        assert.match(row.ms, /^\d+\.\d\d ms$/, `${name}: its time`);
      }
      seen.push({ expected: expected(i), input: shown.input, labels: Object.fromEntries(Object.entries(shown.rows).map(([n, r]) => [n, r.label])) });
    }
    const framework = (name) => page.locator(`[data-runtime="${name}"] .framework`).textContent();
    assert.deepEqual([await framework('tfjs'), await framework('onnxruntime-web'), await framework('litert')],
      ['TensorFlow', 'PyTorch', 'TensorFlow']);
    if (NAMES.includes('litert-torch')) { // LiteRT.js on the litert-torch file: PyTorch's weights
      assert.equal(await page.locator('[data-runtime="litert-torch"] .framework').textContent(), 'PyTorch');
    }
    if (SCREENSHOT) {
      mkdirSync(dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
    }
  } finally {
    await browser.close();
  }
  if (ROWS_OUT) writeFileSync(ROWS_OUT, JSON.stringify({ inputs: seen, frameworks: Object.fromEntries(runtimes.map((e) => [e.name, e.framework])) }));
  assert.deepEqual(errors, [], `errors in the page: ${errors}`);
  const origin = new URL(URL_).origin;
  const outside = requests.filter((url) => !url.startsWith('data:') && !url.startsWith('blob:') && new URL(url).origin !== origin);
  assert.deepEqual(outside, [], `requests left ${origin}: ${outside}`);
  for (const entry of runtimes) { // each runtime's model came from this origin
    assert.ok(requests.some((url) => url.endsWith(entry.model)), `${entry.name}: ${entry.model} was never fetched`);
  }
  assert.ok(requests.some((url) => url.includes('/vendor/onnxruntime-web/') && url.endsWith('.wasm')));
  assert.ok(requests.some((url) => url.includes('/vendor/litert/') && url.endsWith('.wasm')));
});

for (const [fault, name, handler, message] of [
  ['missing', 'litert', (route) => route.fulfill({ status: 404, body: 'not found' }), /HTTP 404/],
  ['damaged', 'onnxruntime-web', (route) => route.fulfill({ status: 200, contentType: 'application/octet-stream', body: Buffer.from('garbage, not a model') }), /damaged: sha256/],
]) {
  test(`a ${fault} model file shows its error in the ${name} row; the others keep answering`, { timeout: 120000 }, async () => {
    const entry = runtimes.find((e) => e.name === name);
    const { browser, page, errors } = await open({ pattern: `**/${entry.model}`, handler });
    try {
      const row = page.locator(`[data-runtime="${name}"]`);
      assert.equal(await row.getAttribute('data-state'), 'error');
      assert.match(await row.locator('.top').textContent(), message);
      assert.match(await row.locator('.top').textContent(), new RegExp(entry.model.replace('.', '\\.')));
      assert.match(await page.locator('#status').textContent(), new RegExp(`^ready: .*\\(${name} failed to load\\)`));
      const shown = await answer(page, 0);
      assert.equal(shown.headline, expected(0));
      for (const other of NAMES.filter((n) => n !== name)) {
        assert.equal(shown.rows[other].state, 'ready', `${other}: ${shown.rows[other].text}`);
        assert.ok(spec.labels.includes(shown.rows[other].label), `${other} gave no label`);
      }
      assert.equal(shown.rows[name].state, 'error');
      assert.equal(shown.rows[name].label, '');
      // A batch for the failed runtime is refused with the reason, not answered with nothing.
      const refused = await page.evaluate((n) => window.digits.predictValues(new Float32Array(1), n).then(() => 'answered', (e) => e.message), name);
      assert.match(refused, new RegExp(`runtime "${name}" failed to load`));
    } finally {
      await browser.close();
    }
    assert.deepEqual(errors, [], `errors in the page: ${errors}`);
  });
}
