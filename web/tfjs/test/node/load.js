// Helpers for the Node tests: where the built web folder is, and a graph-model loader over files.
//
// Pure-JS tfjs has no file system loader (tf.io.fileSystem ships only with tfjs-node, which
// downloads libtensorflow at install), so model.json and its shards are read here and handed to
// tfjs through tf.io.getModelArtifactsForJSON.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The built web folder (`<artifacts>/web`), from $DIGITS_WEB. */
export function webDir() {
  const dir = process.env.DIGITS_WEB;
  if (!dir) throw new Error('set DIGITS_WEB to a folder built by `python -m web.tfjs.export` (e.g. artifacts/web)');
  return dir;
}

export function readJSON(...parts) {
  return JSON.parse(readFileSync(join(webDir(), ...parts), 'utf8'));
}

/** An IOHandler that loads a graph model from `model.json` and its weight shards on disk. */
export function fileHandler(tf, modelJsonPath) {
  return {
    async load() {
      const modelJSON = JSON.parse(readFileSync(modelJsonPath, 'utf8'));
      return tf.io.getModelArtifactsForJSON(modelJSON, async (weightsManifest) => {
        const specs = [];
        const buffers = [];
        for (const group of weightsManifest) {
          specs.push(...group.weights);
          for (const path of group.paths) {
            const bytes = readFileSync(join(dirname(modelJsonPath), path));
            buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
          }
        }
        return [specs, tf.io.concatenateArrayBuffers(buffers)];
      });
    },
  };
}
