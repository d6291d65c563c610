// Headless Chromium draws a plain 7 (a top bar and a slanted stem, no crossbar) on the page's pad with
// the mouse, the way a person would, and prints what the page shows as one JSON line:
// {"label": "#prediction's text", "input": [the reduced values], "pad": "data:image/png;base64,..."}.
// Run by tests/browser/test_plain_seven.py, which checks the label and the reduction.
//
//   DIGITS_WEB_URL=http://127.0.0.1:8000/ DIGITS_CHROMIUM_TOOLS=web/tfjs/tools/chromium.js \
//   DIGITS_SCREENSHOT=/tmp/seven.png node tests/browser/draw_seven.mjs
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

// The project's own launcher (Debian's chromium through playwright-core from web/tfjs/node_modules).
const { launch } = await import(pathToFileURL(resolve(process.env.DIGITS_CHROMIUM_TOOLS)).href);
const URL_ = process.env.DIGITS_WEB_URL;
const SCREENSHOT = process.env.DIGITS_SCREENSHOT;
// The 7 in fractions of the pad: along the top, then down to the lower left, in one stroke.
const SEVEN = [[0.27, 0.2], [0.73, 0.21], [0.42, 0.83]];

const browser = await launch();
try {
  const { page } = browser;
  await page.goto(URL_);
  await page.evaluate(() => window.digits.ready);
  await page.click('#clear');
  const box = await page.locator('#pad').boundingBox();
  const at = ([x, y]) => [box.x + x * box.width, box.y + y * box.height];
  await page.mouse.move(...at(SEVEN[0]));
  await page.mouse.down();
  for (const point of SEVEN.slice(1)) await page.mouse.move(...at(point), { steps: 12 });
  await page.mouse.up();
  await page.waitForSelector('#prediction[data-state="ready"]', { timeout: 15000 });
  const label = await page.locator('#prediction').textContent();
  const input = await page.evaluate(() => window.digits.lastInput);
  const pad = await page.evaluate(() => document.getElementById('pad').toDataURL('image/png'));
  if (SCREENSHOT) {
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  }
  console.log(JSON.stringify({ label, input, pad }));
} finally {
  await browser.close();
}
