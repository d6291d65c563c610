// The draw-a-digit page: pointer strokes on #pad -> the 8x8 reduction -> the TF.js graph model.
//
// Everything runs in the page; the only requests go to the page's own origin (spec.json, the
// model, the tfjs bundles and wasm binaries). Labels, tensor names, shapes and the reduction's
// parameters come from spec.json. `?backend=webgl` (or wasm, cpu) forces one backend; by default
// the first that starts of wasm, webgl, cpu is used.
//
// For tests and benchmarks the page exposes `window.digits`: `ready` (a promise), `predictCanvas()`,
// `predictValues(values)`, `backend`, `penWidth` and the time of its first prediction
// (`firstPredictionAt`, ms since navigation start: the cold start).

import { chooseBackend, predict, shapes, topK } from './model.js';
import { ReductionError, reduceDrawing } from './reduce.js';

const BACKENDS = ['wasm', 'webgl', 'cpu'];
const PEN_WIDTH = 22; // canvas pixels on the 256-pixel pad: strokes about as thick as the dataset's
const TOP_K = 3;

const tf = window.tf;
const pad = document.getElementById('pad');
const pen = pad.getContext('2d', { willReadFrequently: true });
const preview = document.getElementById('preview');
const predictionOut = document.getElementById('prediction');
const topList = document.getElementById('top');
const backendOut = document.getElementById('backend');
const timeOut = document.getElementById('time');
const statusOut = document.getElementById('status');

const digits = { firstPredictionAt: null, penWidth: PEN_WIDTH };
window.digits = digits;

function setStatus(text) {
  statusOut.textContent = text;
}

async function load() {
  const spec = await (await fetch('spec.json')).json();
  const forced = new URLSearchParams(location.search).get('backend');
  if (forced && !BACKENDS.includes(forced)) throw new Error(`unknown backend "${forced}"; use one of ${BACKENDS}`);
  tf.wasm.setWasmPaths(new URL('vendor/', location.href).href);
  const backend = await chooseBackend(tf, forced ? [forced] : BACKENDS);
  const model = await tf.loadGraphModel('model/model.json');
  Object.assign(digits, { spec, model, backend });
  backendOut.textContent = backend;
  const { height, width } = shapes(spec);
  [preview.width, preview.height] = [width, height];
  document.getElementById('input-shape').textContent = `(${height}x${width}, ${spec.input.min}..${spec.input.max})`;
  // One prediction on an empty input compiles the kernels (webgl shaders, wasm setup) now,
  // so the first stroke answers at full speed. It also marks the cold start's end.
  await predict(tf, model, spec, new Float32Array(height * width));
  digits.firstPredictionAt = performance.now();
  setStatus('ready: draw a digit');
  if (predictionOut.dataset.state === 'pending') refresh(); // ink drawn while the model loaded
}

/** Reduce the pad's pixels and run the model; returns {label, top, values, ms} or null if blank. */
async function predictCanvas() {
  const { spec, model } = digits;
  const started = performance.now();
  const image = pen.getImageData(0, 0, pad.width, pad.height);
  let values;
  try {
    values = reduceDrawing(image.data, image.width, image.height, spec.reduction);
  } catch (error) {
    if (error instanceof ReductionError) return null;
    throw error;
  }
  const probabilities = await predict(tf, model, spec, values);
  const top = topK(probabilities, spec.labels, TOP_K);
  return { label: top[0].label, top, values: Array.from(values), ms: performance.now() - started };
}
digits.predictCanvas = predictCanvas;
/** The model alone: Float32Array of 8x8 values -> probabilities (the benchmark times it). */
digits.predictValues = (values) => predict(tf, digits.model, digits.spec, values);

function showPreview(values) {
  const { height, width } = shapes(digits.spec);
  const cells = preview.getContext('2d');
  const image = cells.createImageData(width, height);
  values.forEach((value, i) => {
    const shade = 255 - Math.round((value / digits.spec.input.max) * 255);
    image.data.set([shade, shade, shade, 255], i * 4);
  });
  cells.putImageData(image, 0, 0);
}

function showResult(result) {
  if (result === null) {
    clearResult();
    return;
  }
  predictionOut.textContent = result.label;
  topList.replaceChildren(...result.top.map(({ label, probability }) => {
    const row = document.createElement('li');
    row.innerHTML = `<span class="label"></span><span class="bar"><span class="fill"></span></span><span class="value"></span>`;
    row.querySelector('.label').textContent = label;
    row.querySelector('.fill').style.width = `${(probability * 100).toFixed(1)}%`;
    row.querySelector('.value').textContent = `${(probability * 100).toFixed(1)}%`;
    return row;
  }));
  showPreview(result.values);
  timeOut.textContent = `${result.ms.toFixed(2)} ms`;
}

function clearResult() {
  predictionOut.textContent = '';
  predictionOut.dataset.state = 'empty';
  topList.replaceChildren();
  preview.getContext('2d').clearRect(0, 0, preview.width, preview.height);
  timeOut.textContent = '-';
}

// One prediction at a time: ink that arrives while one runs triggers one more afterwards.
let running = false;
let dirty = false;
let drawing = 0; // bumped by Clear, so an answer for wiped ink is dropped
async function refresh() {
  dirty = true;
  predictionOut.dataset.state = 'pending';
  if (running || !digits.model) return;
  running = true;
  try {
    while (dirty) {
      dirty = false;
      const current = drawing;
      const result = await predictCanvas();
      if (current === drawing) showResult(result);
    }
    if (predictionOut.textContent) predictionOut.dataset.state = 'ready';
  } catch (error) {
    predictionOut.dataset.state = 'error';
    setStatus(`error: ${error.message}`);
  } finally {
    running = false;
  }
}

// Pointer events cover mouse, touch and pen alike.
let last = null;
function position(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * (pad.width / box.width), (event.clientY - box.top) * (pad.height / box.height)];
}
function strokeTo(point) {
  pen.beginPath();
  pen.moveTo(...last);
  pen.lineTo(...point);
  pen.stroke();
  last = point;
}
pad.addEventListener('pointerdown', (event) => {
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  last = position(event);
  strokeTo(last); // a dot for a tap
  refresh();
});
pad.addEventListener('pointermove', (event) => {
  if (last === null) return;
  strokeTo(position(event));
  refresh();
});
for (const type of ['pointerup', 'pointercancel']) {
  pad.addEventListener(type, () => {
    if (last === null) return;
    last = null;
    refresh();
  });
}
document.getElementById('clear').addEventListener('click', () => {
  pen.clearRect(0, 0, pad.width, pad.height);
  drawing += 1;
  dirty = false;
  clearResult();
});

// Strokes on a transparent pad: the reduction reads the alpha channel as ink.
pen.lineWidth = PEN_WIDTH;
pen.lineCap = 'round';
pen.lineJoin = 'round';
pen.strokeStyle = '#1d2430';

digits.ready = load().catch((error) => {
  backendOut.textContent = 'none';
  setStatus(`error: ${error.message}`);
  throw error;
});
