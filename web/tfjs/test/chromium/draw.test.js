// Real headless Chromium draws test digits on #pad with the mouse (and one with touch), and the page
// must show each one's label. Python chose the digits (web-fixtures/drawn.json): Keras reads each
// correctly when drawn with any pen width in the plan's range, so a wrong label here is the page's.
//
//   DIGITS_WEB_URL=http://127.0.0.1:8000/ DIGITS_WEB=artifacts/web \
//   DIGITS_SCREENSHOT=artifacts/screenshots/web-draw.png node --test test/chromium/
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import test from 'node:test';

import { launch, recordRequests } from '../../tools/chromium.js';
import { readFixture, readJSON } from '../node/load.js';

const URL_ = process.env.DIGITS_WEB_URL;
const SCREENSHOT = process.env.DIGITS_SCREENSHOT;
// Only a task whose reduction is the ink-block count (the digits) has a drawing pad and a plan.
const drawable = readJSON('spec.json').reduction.kind === 'ink_blocks';
const plan = drawable ? readFixture('drawn.json') : null;

/** Pad geometry in CSS pixels, and a mapper from plan cell units to page coordinates. */
async function padMapper(page) {
  const box = await page.locator('#pad').boundingBox();
  return ([x, y]) => [box.x + (x * box.width) / plan.grid, box.y + (y * box.height) / plan.grid];
}

async function drawWithMouse(page, strokes) {
  const at = await padMapper(page);
  for (const [start, end] of strokes) {
    await page.mouse.move(...at(start));
    await page.mouse.down();
    await page.mouse.move(...at(end), { steps: 4 });
    await page.mouse.up();
  }
}

async function drawWithTouch(page, strokes) {
  const at = await padMapper(page);
  const cdp = await page.context().newCDPSession(page);
  const touch = (type, point) => cdp.send('Input.dispatchTouchEvent', {
    type, touchPoints: point ? [{ x: point[0], y: point[1] }] : [],
  });
  for (const [start, end] of strokes) {
    const [x0, y0] = at(start);
    const [x1, y1] = at(end);
    await touch('touchStart', [x0, y0]);
    for (let step = 1; step <= 4; step++) {
      await touch('touchMove', [x0 + ((x1 - x0) * step) / 4, y0 + ((y1 - y0) * step) / 4]);
    }
    await touch('touchEnd');
  }
  await cdp.detach();
}

/** The label the page shows once its answer for the current ink is in. */
async function shownLabel(page) {
  await page.waitForSelector('#prediction[data-state="ready"]', { timeout: 15000 });
  return page.locator('#prediction').textContent();
}

test('drawn digits are read correctly, offline', {
  timeout: 120000, skip: drawable ? false : 'the task has no drawing pad (its reduction is not ink_blocks)',
}, async () => {
  assert.ok(URL_, 'set DIGITS_WEB_URL to the served page (python -m web.tfjs.serve)');
  assert.ok(plan.digits.length >= 5, `only ${plan.digits.length} drawable digits in web-fixtures/drawn.json`);
  const browser = await launch({ hasTouch: true });
  const requests = recordRequests(browser.context);
  const errors = [];
  browser.page.on('pageerror', (error) => errors.push(error.message));
  // Anything the server's Content-Security-Policy blocks is an error too (it shows as a console message).
  browser.page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) errors.push(message.text());
  });
  try {
    const { page } = browser;
    const response = await page.goto(URL_);
    // The page runs under its server's policy: this origin only, plus what the wasm backend needs.
    assert.match(response.headers()['content-security-policy'] ?? '', /^default-src 'self';/);
    await page.evaluate(() => window.digits.ready);
    assert.equal(await page.locator('#backend').textContent(), 'wasm', 'wasm is the preferred backend');

    // The plan holds for pens between pen_to_cell[0] and [1] of a cell: check the page's pen.
    const penToCell = await page.evaluate((grid) => window.digits.penWidth / (document.getElementById('pad').width / grid), plan.grid);
    assert.ok(penToCell >= plan.pen_to_cell[0] && penToCell <= plan.pen_to_cell[1],
      `the page's pen is ${penToCell.toFixed(2)} of a cell, outside the plan's ${plan.pen_to_cell}`);

    const wrong = [];
    for (const [i, digit] of plan.digits.entries()) {
      await page.click('#clear');
      assert.equal(await page.locator('#prediction').getAttribute('data-state'), 'empty');
      const touch = i === 0; // one digit drawn with touch events, the rest with the mouse
      await (touch ? drawWithTouch : drawWithMouse)(page, digit.strokes);
      const shown = await shownLabel(page);
      if (shown !== digit.label) wrong.push(`test digit ${digit.test_index} (${touch ? 'touch' : 'mouse'}): drew ${digit.label}, page shows ${shown}`);
    }
    assert.deepEqual(wrong, [], wrong.join('\n'));

    // The last drawing is still on the pad: top-3 bars, timing and the 8x8 preview are shown.
    assert.equal(await page.locator('#top li').count(), 3);
    assert.match(await page.locator('#time').textContent(), /^\d+\.\d\d ms$/);
    const previewInk = await page.evaluate(() => {
      const preview = document.getElementById('preview');
      const data = preview.getContext('2d').getImageData(0, 0, preview.width, preview.height).data;
      return data.filter((v, k) => k % 4 === 0 && v < 255).length;
    });
    assert.ok(previewInk > 0, 'the preview of the reduced input is blank');
    if (SCREENSHOT) {
      mkdirSync(dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
    }

    await page.click('#clear');
    assert.equal(await page.locator('#prediction').textContent(), '');
    assert.equal(await page.locator('#top li').count(), 0);
  } finally {
    await browser.close();
  }
  assert.deepEqual(errors, [], `errors in the page: ${errors}`);
  const origin = new URL(URL_).origin;
  const outside = requests.filter((url) => new URL(url).origin !== origin);
  assert.deepEqual(outside, [], `requests left ${origin}: ${outside}`);
  assert.ok(new URL(URL_).hostname === '127.0.0.1', `the page must be served from 127.0.0.1, not ${URL_}`);
  assert.ok(requests.some((url) => url.endsWith('.wasm')), 'no wasm binary was fetched from the page\'s origin');
});
