// A graph-model loader over files, for pure-JS tfjs in Node.
//
// tf.io.fileSystem ships only with tfjs-node (which downloads libtensorflow at install), so
// model.json and its shards are read here and handed to tfjs through tf.io.getModelArtifactsForJSON.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** An IOHandler for tf.loadGraphModel that reads `model.json` and its weight shards from disk. */
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
