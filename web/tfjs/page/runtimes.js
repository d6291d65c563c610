// The runtimes the page runs side by side, each behind the same two calls:
//
//   const runtime = await loadRuntime(entry, spec, options);   // entry: one item of runtimes.json
//   const probabilities = await runtime.predict(values);       // Float32Array N*H*W[*C] -> N*K
//
// - tfjs: the TF.js graph model (model.js), on the first backend of `options.backends` that starts;
// - onnxruntime-web: the PyTorch model exported to ONNX, on ONNX Runtime's wasm backend;
// - litert (and litert-torch): a .tflite file on LiteRT.js (XNNPACK compiled to wasm).
// Every script, .wasm and model is served by the page's own origin (vendor/ and models/, copied from
// node_modules at build time). A model file is fetched here, so a missing one is named with its
// HTTP status, and checked against its sha256 in runtimes.json where the browser can hash it.
// A new row on the page is a row with `page=` in core/registry.py; a new runtime library is a loader
// here and its files in ADAPTERS (export.py); see README.md.
import { chooseBackend, predict as predictGraph, shapes } from './model.js';

/** The model file's bytes; an Error naming the file for a missing or changed one. */
async function modelBytes(entry) {
  const response = await fetch(entry.model);
  if (!response.ok) throw new Error(`model file ${entry.model}: HTTP ${response.status} ${response.statusText}`.trim());
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (entry.model_sha256 && globalThis.crypto?.subtle) { // crypto.subtle exists on secure origins (127.0.0.1, https)
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
    const hex = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
    if (hex !== entry.model_sha256) {
      throw new Error(`model file ${entry.model} is damaged: sha256 ${hex.slice(0, 12)}... is not the built ${entry.model_sha256.slice(0, 12)}...`);
    }
  }
  return bytes;
}

const scripts = new Map(); // src -> the promise of its load: rows sharing a library wait for the same one

/** A classic script from this origin (the page's policy allows 'self' only), loaded once; every caller
 * waits until it has run (two rows on one library load side by side). */
function loadScript(src) {
  if (!scripts.has(src)) {
    scripts.set(src, new Promise((resolve, reject) => {
      const script = document.createElement('script');
      script.src = src;
      script.onload = () => resolve();
      script.onerror = () => reject(new Error(`script ${src} did not load`));
      document.head.appendChild(script);
    }));
  }
  return scripts.get(src);
}

const vendorUrl = (folder) => new URL(`vendor/${folder}/`, location.href).href;

async function loadTfjs(entry, spec, { tf, backends }) {
  tf.wasm.setWasmPaths(new URL('vendor/', location.href).href);
  // The wasm backend's threaded build starts its workers from blob: URLs of its own code, which the page's
  // policy refuses (no blob: scripts): its single-threaded SIMD build is as fast for a model this small.
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  const backend = await chooseBackend(tf, backends);
  const model = await tf.loadGraphModel(entry.model);
  return { backend, predict: (values) => predictGraph(tf, model, spec, values) };
}

async function loadOnnx(entry, spec) {
  await loadScript('vendor/onnxruntime-web/ort.wasm.min.js');
  const { ort } = window;
  ort.env.wasm.wasmPaths = vendorUrl('onnxruntime-web');
  // One thread: a model this small gains nothing from a pool of workers, each started at load.
  ort.env.wasm.numThreads = 1;
  const session = await ort.InferenceSession.create(await modelBytes(entry), { executionProviders: ['wasm'] });
  const { item, itemSize, classes } = shapes(spec);
  if (!session.inputNames.includes(spec.input.name) || !session.outputNames.includes(spec.output.name)) {
    throw new Error(`${entry.model}: tensors ${session.inputNames} -> ${session.outputNames}, spec.json names `
      + `${spec.input.name} -> ${spec.output.name}`);
  }
  return {
    backend: 'wasm',
    async predict(values) {
      const n = values.length / itemSize;
      const input = new ort.Tensor('float32', Float32Array.from(values), [n, ...item]);
      const outputs = await session.run({ [spec.input.name]: input });
      const probabilities = outputs[spec.output.name].data;
      if (probabilities.length !== n * classes) throw new Error(`${entry.model} returned ${probabilities.length} values, expected ${n} x ${classes}`);
      return Float32Array.from(probabilities);
    },
  };
}

let liteRtLoading = null; // LiteRT.js loads its wasm once per page, whatever the number of .tflite files

async function loadLiteRt(entry, spec) {
  const litert = await import('./vendor/litert/index.js');
  liteRtLoading ??= litert.loadLiteRt(vendorUrl('litert'));
  await liteRtLoading;
  const model = await litert.loadAndCompile(await modelBytes(entry), { accelerator: 'wasm' });
  const { item, itemSize, classes } = shapes(spec);
  // LiteRT.js runs the shapes the file was compiled with: a batch of one image per call.
  const [details] = model.getInputDetails();
  const shape = [1, ...item];
  if (details.shape.length !== shape.length || details.shape.slice(1).some((d, i) => d !== item[i])) {
    throw new Error(`${entry.model}: input shape [${details.shape}] is not ${JSON.stringify(shape)} of spec.json`);
  }
  return {
    backend: 'wasm',
    async predict(batch) {
      const values = Float32Array.from(batch);
      const n = values.length / itemSize;
      const probabilities = new Float32Array(n * classes);
      for (let i = 0; i < n; i++) {
        const input = new litert.Tensor(Float32Array.from(values.subarray(i * itemSize, (i + 1) * itemSize)), shape);
        const outputs = await model.run([input]);
        try {
          const row = outputs[0].toTypedArray();
          if (row.length !== classes) throw new Error(`${entry.model} returned ${row.length} values, expected ${classes}`);
          probabilities.set(row, i * classes);
        } finally {
          input.delete();
          for (const output of outputs) output.delete();
        }
      }
      return probabilities;
    },
  };
}

// One loader per runtime library; which rows use which is runtimes.json's `adapter` (from core/registry.py).
const ADAPTERS = { tfjs: loadTfjs, 'onnxruntime-web': loadOnnx, litert: loadLiteRt };

/** Load one runtime of runtimes.json -> {backend, predict(values)}; rejects with what went wrong. */
export function loadRuntime(entry, spec, options) {
  const adapter = ADAPTERS[entry.adapter];
  if (!adapter) return Promise.reject(new Error(`runtime "${entry.name}": no adapter "${entry.adapter}" in runtimes.js`));
  return adapter(entry, spec, options);
}
