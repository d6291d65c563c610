// Real headless Chromium uploads pictures to the page of any task (file picker, then drag and
// drop) and the page must show the label Keras gives Python's input for the same picture, from the
// spec's own labels. Python wrote the pictures, its input for each and Keras's label
// (web-fixtures/uploads.json); the page's input must equal Python's bit for bit.
//
//   DIGITS_WEB_URL=http://127.0.0.1:8000/ DIGITS_WEB=artifacts/web \
//   DIGITS_UPLOAD_SCREENSHOT=artifacts/screenshots/web-upload.png node --test test/chromium/upload.test.js
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import test from 'node:test';

import { launch, recordRequests } from '../../tools/chromium.js';
import { readFixture, readJSON } from '../node/load.js';

const URL_ = process.env.DIGITS_WEB_URL;
const SCREENSHOT = process.env.DIGITS_UPLOAD_SCREENSHOT;
const spec = readJSON('spec.json');
const { pictures } = readFixture('uploads.json');

/** Upload through the file picker or by dropping onto #drop; waits for the page's answer. */
async function upload(page, { name, buffer, mimeType }, how) {
  const before = await page.evaluate(() => window.digits.uploads);
  if (how === 'picker') {
    await page.setInputFiles('#file', { name, mimeType, buffer });
  } else {
    const dataTransfer = await page.evaluateHandle(({ base64, fileName, type }) => {
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([bytes], fileName, { type }));
      return transfer;
    }, { base64: buffer.toString('base64'), fileName: name, type: mimeType });
    await page.dispatchEvent('#drop', 'dragenter', { dataTransfer });
    await page.dispatchEvent('#drop', 'drop', { dataTransfer });
  }
  await page.waitForFunction((n) => window.digits.uploads > n, before, { timeout: 15000 });
  return {
    state: await page.locator('#prediction').getAttribute('data-state'),
    label: await page.locator('#prediction').textContent(),
    status: await page.locator('#status').textContent(),
    input: await page.evaluate(() => window.digits.lastInput),
  };
}

test('uploaded pictures are read with the task\'s labels, offline', { timeout: 120000 }, async () => {
  assert.ok(URL_, 'set DIGITS_WEB_URL to the served page (python -m web.tfjs.serve)');
  assert.ok(pictures.length >= 2, `only ${pictures.length} pictures in web-fixtures/uploads.json`);
  const browser = await launch();
  const requests = recordRequests(browser.context);
  const errors = [];
  browser.page.on('pageerror', (error) => errors.push(error.message));
  try {
    const { page } = browser;
    await page.goto(URL_);
    await page.evaluate(() => window.digits.ready);

    // The page adapts to the spec: its name in the title, its labels listed, the pad only for ink blocks.
    const title = await page.locator('#title').textContent();
    assert.ok(title.startsWith(`${spec.model_name}: `), `title "${title}"`);
    assert.equal(await page.title(), title);
    const instructions = await page.locator('#instructions').textContent();
    for (const label of spec.labels.slice(0, 12)) assert.ok(instructions.includes(label), `"${label}" not in "${instructions}"`);
    const drawable = spec.reduction.kind === 'ink_blocks';
    assert.equal(await page.locator('#pad').isVisible(), drawable);
    if (!drawable) assert.ok(!/digit|draw/i.test(`${title} ${instructions}`), `"${title}" / "${instructions}" speak of drawing digits`);

    const wrong = [];
    for (const [i, picture] of pictures.entries()) {
      const how = i % 2 === 0 ? 'picker' : 'drop';
      const file = { name: `test-${picture.test_index}.png`, mimeType: 'image/png', buffer: Buffer.from(picture.png, 'base64') };
      const shown = await upload(page, file, how);
      assert.equal(shown.state, 'ready', `${file.name} (${how}): ${shown.status}`);
      assert.deepEqual(shown.input, picture.input, `${file.name} (${how}): the page's input differs from Python's`);
      assert.ok(spec.labels.includes(shown.label), `"${shown.label}" is not one of the spec's labels`);
      if (shown.label !== picture.label) wrong.push(`${file.name} (${how}): Keras says ${picture.label}, the page ${shown.label}`);
    }
    assert.deepEqual(wrong, [], wrong.join('\n'));
    assert.equal(await page.locator('#top li').count(), Math.min(3, spec.labels.length));
    assert.ok(await page.locator('#picture').isVisible(), 'the uploaded picture is not shown');
    const preview = await page.evaluate(() => {
      const canvas = document.getElementById('preview');
      const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      return { width: canvas.width, height: canvas.height, painted: data.filter((v, k) => k % 4 === 3 && v === 255).length };
    });
    const [, height, width] = spec.input.shape;
    assert.deepEqual(preview, { width, height, painted: width * height }, 'the preview is not the input as the model sees it');
    if (SCREENSHOT) {
      mkdirSync(dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
    }

    // A file that is no picture gets a clear error; the page keeps working after it.
    const bad = await upload(page, { name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('not a picture') }, 'picker');
    assert.equal(bad.state, 'error');
    assert.match(bad.status, /^error: not a readable PNG\/JPEG image/);
    assert.equal(await page.locator('#prediction').textContent(), '');
    const again = await upload(page, { name: 'again.png', mimeType: 'image/png', buffer: Buffer.from(pictures[0].png, 'base64') }, 'drop');
    assert.equal(again.label, pictures[0].label);
  } finally {
    await browser.close();
  }
  assert.deepEqual(errors, [], `errors in the page: ${errors}`);
  const origin = new URL(URL_).origin;
  const outside = requests.filter((url) => !url.startsWith('data:') && !url.startsWith('blob:') && new URL(url).origin !== origin);
  assert.deepEqual(outside, [], `requests left ${origin}: ${outside}`);
});
