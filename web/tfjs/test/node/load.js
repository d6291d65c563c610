// Where the Node tests find the built web folder and its files.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The built web folder (`<artifacts>/web`), from $DIGITS_WEB. */
export function webDir() {
  const dir = process.env.DIGITS_WEB;
  if (!dir) throw new Error('set DIGITS_WEB to a folder built by `python -m web.tfjs.export` (e.g. artifacts/web)');
  return dir;
}

export function readJSON(...parts) {
  return JSON.parse(readFileSync(join(webDir(), ...parts), 'utf8'));
}

/** The test vectors Python wrote: $DIGITS_WEB_FIXTURES, else `web-fixtures` beside the web folder
 *  (never inside it: they hold the test split, and the web folder is served). */
export function fixturesDir() {
  return process.env.DIGITS_WEB_FIXTURES || join(webDir(), '..', 'web-fixtures');
}

export function readFixture(name) {
  return JSON.parse(readFileSync(join(fixturesDir(), name), 'utf8'));
}
