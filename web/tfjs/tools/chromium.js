// Headless Debian Chromium through playwright-core, the way the tests and the benchmark start it.
//
// The system browser (/usr/bin/chromium, or $CHROMIUM), never one downloaded by Playwright. Each
// launch gets a fresh user-data folder, so nothing is cached between runs, and it is deleted on close.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

export const EXECUTABLE = process.env.CHROMIUM || '/usr/bin/chromium';
// No sandbox (runs as root in CI), no GPU, and none of Chromium's own background traffic, so
// the only requests are the page's.
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];

/** Start Chromium; returns {context, page, close}. `options` go to launchPersistentContext. */
export async function launch(options = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'digits-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: EXECUTABLE, headless: true, args: FLAGS, viewport: { width: 800, height: 620 }, ...options,
  });
  const page = context.pages()[0] ?? await context.newPage();
  return {
    context,
    page,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Every request the context makes, as URLs (the caller checks where they went). */
export function recordRequests(context) {
  const urls = [];
  context.on('request', (request) => urls.push(request.url()));
  return urls;
}
