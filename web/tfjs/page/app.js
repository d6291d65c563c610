// The demo page, for any task: it reads spec.json and adapts to it.
//
// - the drawing pad (#pad) for a task whose reduction is "ink_blocks" (the digits): pointer strokes
//   are reduced the way the dataset was made;
// - a picture upload (#file, or drag and drop onto #drop) for every task: the picture is decoded
//   by the browser and reduced by preprocess.js, the twin of training/preprocess.py;
// - the title, instructions, labels, shapes and value range come from the spec; every input is
//   checked by contract.js (the twin of core/contract.py) before the model runs.
//
// Every input runs through each runtime of runtimes.json (runtimes.js): TF.js, onnxruntime-web (the
// PyTorch model) and LiteRT.js (the .tflite file), one row each (`[data-runtime]`: framework,
// label, top-3, ms); #prediction is the headline: TF.js's answer, or the first other runtime's
// when TF.js failed. A runtime that fails to load shows its error in its row; the others answer.
//
// Everything runs in the page; the only requests go to the page's own origin (spec.json,
// runtimes.json, the models, the runtimes' bundles and wasm binaries). `?backend=webgl` (or wasm,
// cpu) forces TF.js's backend; by default the first that starts of wasm, webgl, cpu is used.
// `?runtime=litert` (a comma-separated list) loads only those runtimes (the benchmark's cold start).
//
// For tests and benchmarks the page exposes `window.digits`: `ready` (a promise, settled once every
// runtime loaded or failed), `predictCanvas()`, `predictPicture(file)`, `predictPixels(rgba, width,
// height)`, `uploads` (a count), `lastInput`, `predictValues(values, runtime)` (one model alone),
// `predictBatch(batch, {runtime})` (the contract check, then one model; default tfjs), `backend`
// (TF.js's), `runtimes` ({name: {backend, error, firstAnswerAt}}), `penWidth` and the time of its
// first prediction (`firstPredictionAt`, ms since navigation start: the cold start of all of them).

import { checkBatch } from './contract.js';
import { shapes, topK } from './model.js';
import { MAX_PIXELS, ReductionError, pictureToInput, reduceDrawing } from './preprocess.js';
import { loadRuntime } from './runtimes.js';

const BACKENDS = ['wasm', 'webgl', 'cpu'];
const PEN_WIDTH = 22; // canvas pixels on the 256-pixel pad: strokes about as thick as the dataset's
const TOP_K = 3;
const LABELS_SHOWN = 12; // the facts list names this many labels, then says how many more

const tf = window.tf;
const pad = document.getElementById('pad');
const pen = pad.getContext('2d', { willReadFrequently: true });
const preview = document.getElementById('preview');
const picture = document.getElementById('picture');
const drop = document.getElementById('drop');
const fileInput = document.getElementById('file');
const predictionOut = document.getElementById('prediction');
const topList = document.getElementById('top');
const backendOut = document.getElementById('backend');
const timeOut = document.getElementById('time');
const statusOut = document.getElementById('status');
const rowsOut = document.getElementById('runtimes');
const FRAMEWORKS = { torch: 'PyTorch', tensorflow: 'TensorFlow' };

// lastInput: the values of the last prediction; uploads: how many uploads have been answered.
const digits = { firstPredictionAt: null, penWidth: PEN_WIDTH, lastInput: null, uploads: 0, runtimes: {} };
window.digits = digits;

function setStatus(text) {
  statusOut.textContent = text;
}

const drawable = (spec) => spec.reduction.kind === 'ink_blocks';

function labelList(labels) {
  const named = labels.slice(0, LABELS_SHOWN).join(', ');
  return labels.length > LABELS_SHOWN ? `${named}, ... (${labels.length} classes)` : named;
}

/** Title, instructions and inputs from the spec: the pad only where strokes can be reduced. */
function adapt(spec) {
  const draw = drawable(spec);
  const action = draw ? 'Draw or upload' : 'Upload';
  const title = `${spec.model_name}: ${action.toLowerCase()} a picture`;
  document.title = title;
  document.getElementById('title').textContent = title;
  document.getElementById('instructions').textContent = `${action} a picture of one of: ${labelList(spec.labels)}.`;
  document.getElementById('labels').textContent = `${spec.labels.length}: ${labelList(spec.labels)}`;
  document.getElementById('verbs').textContent = draw ? 'draw or upload' : 'upload';
  document.getElementById('draw').hidden = !draw;
  if (spec.labels.some((label) => label.length > 2)) predictionOut.classList.add('long');
  const { height, width, channels } = shapes(spec);
  [preview.width, preview.height] = [width, height];
  preview.style.height = `${Math.round((96 * height) / width)}px`; // square cells, whatever the aspect ratio
  const depth = channels === 1 ? 'grey' : `${channels} channels`;
  document.getElementById('input-shape').textContent = `(${height}x${width} ${depth}, ${spec.input.min}..${spec.input.max})`;
}

async function fetchJSON(path) {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

/** One row per runtime: where its model came from, then its answer (label, top-3, ms) or its error. */
function addRow(entry) {
  const row = document.createElement('tr');
  row.dataset.runtime = entry.name;
  row.dataset.state = 'loading';
  row.innerHTML = '<th class="runtime"></th><td class="framework"></td><td class="label"></td>'
    + '<td class="top"></td><td class="ms"></td>';
  row.querySelector('.runtime').textContent = `${entry.title} ${entry.version}`;
  row.querySelector('.framework').textContent = FRAMEWORKS[entry.framework] ?? entry.framework;
  row.querySelector('.top').textContent = 'loading';
  rowsOut.appendChild(row);
  return row;
}

function showRowError(row, message) {
  row.dataset.state = 'error';
  row.querySelector('.label').textContent = '';
  row.querySelector('.ms').textContent = '';
  row.querySelector('.top').textContent = `error: ${message}`;
}

/** Load one runtime into its row; a failure stays in the row and the others go on. */
async function startRuntime(entry, spec, backends) {
  const row = addRow(entry);
  const state = { entry, row, backend: null, error: null, firstAnswerAt: null };
  digits.runtimes[entry.name] = state;
  try {
    const runtime = await loadRuntime(entry, spec, { tf, backends });
    // One prediction on a blank input (the range's low end) compiles the kernels (webgl shaders,
    // wasm setup) now, so the first stroke answers at full speed. It also marks this runtime's cold start.
    await runtime.predict(new Float32Array(shapes(spec).itemSize).fill(spec.input.min));
    Object.assign(state, { runtime, backend: runtime.backend, firstAnswerAt: performance.now() });
    row.dataset.state = 'ready';
    row.querySelector('.runtime').textContent += ` (${runtime.backend})`;
    row.querySelector('.top').textContent = 'ready';
  } catch (error) {
    state.error = error.message || String(error);
    console.warn(`runtime ${entry.name}: ${state.error}`);
    showRowError(row, state.error);
  }
}

async function load() {
  const spec = await fetchJSON('spec.json');
  const { runtimes } = await fetchJSON('runtimes.json');
  const params = new URLSearchParams(location.search);
  const forced = params.get('backend');
  if (forced && !BACKENDS.includes(forced)) throw new Error(`unknown backend "${forced}"; use one of ${BACKENDS}`);
  const names = runtimes.map((entry) => entry.name);
  const chosen = params.get('runtime') ? params.get('runtime').split(',') : names;
  const unknown = chosen.filter((name) => !names.includes(name));
  if (unknown.length) throw new Error(`unknown runtime "${unknown}"; use some of ${names}`);
  digits.spec = spec;
  adapt(spec);
  await Promise.all(runtimes.filter((entry) => chosen.includes(entry.name))
    .map((entry) => startRuntime(entry, spec, forced ? [forced] : BACKENDS)));
  const tfjs = digits.runtimes.tfjs;
  digits.backend = tfjs?.backend ?? null;
  backendOut.textContent = tfjs ? (tfjs.backend ?? 'none') : 'not loaded';
  const failed = Object.values(digits.runtimes).filter((state) => state.error);
  if (failed.length === chosen.length) throw new Error(failed.map((state) => `${state.entry.name}: ${state.error}`).join('; '));
  digits.firstPredictionAt = performance.now();
  digits.loaded = true; // predictions may start
  const verb = drawable(spec) ? 'draw or upload a picture' : 'upload a picture';
  setStatus(failed.length ? `ready: ${verb} (${failed.map((state) => state.entry.name).join(', ')} failed to load)` : `ready: ${verb}`);
  if (predictionOut.dataset.state === 'pending') refresh(); // ink drawn while the models loaded
}

/** The loaded runtime called `name`; an Error when it is unknown or failed to load. */
function runtimeNamed(name) {
  const state = digits.runtimes[name];
  if (!state) throw new Error(`runtime "${name}" is not loaded (loaded: ${Object.keys(digits.runtimes)})`);
  if (state.error) throw new Error(`runtime "${name}" failed to load: ${state.error}`);
  return state.runtime;
}

/**
 * One input (already reduced) through the contract check and every loaded runtime ->
 * {label, top, values, ms, runtimes: {name: {label, top, ms} | {error}}}; the headline (label, top,
 * ms) is TF.js's answer, or the first other runtime's.
 */
async function predictInput(values, started) {
  const { spec } = digits;
  const checked = checkBatch({ shape: [1, ...shapes(spec).item], values }, spec, { source: 'the picture' });
  digits.lastInput = Array.from(checked.values);
  const answers = {};
  let headline = null;
  for (const [name, state] of Object.entries(digits.runtimes)) {
    if (state.error) {
      answers[name] = { error: state.error };
      continue;
    }
    const begun = performance.now();
    try {
      const probabilities = await state.runtime.predict(checked.values);
      const top = topK(probabilities, spec.labels, TOP_K);
      answers[name] = { label: top[0].label, top, ms: performance.now() - begun };
      headline ??= { ...answers[name], ms: performance.now() - started };
    } catch (error) {
      answers[name] = { error: error.message || String(error) };
    }
  }
  if (headline === null) throw new Error(Object.entries(answers).map(([name, a]) => `${name}: ${a.error}`).join('; '));
  return { ...headline, values: digits.lastInput, runtimes: answers };
}

/** Reduce the pad's pixels and run the model; returns {label, top, values, ms} or null if blank. */
async function predictCanvas() {
  const started = performance.now();
  const image = pen.getImageData(0, 0, pad.width, pad.height);
  let values;
  try {
    values = reduceDrawing(image.data, image.width, image.height, digits.spec.reduction);
  } catch (error) {
    if (error instanceof ReductionError) return null;
    throw error;
  }
  return predictInput(values, started);
}
digits.predictCanvas = predictCanvas;

/** A picture file (PNG/JPEG) -> its RGBA pixels, decoded by the browser (EXIF orientation applied). */
async function decodePicture(file) {
  if (!file || file.size === 0) throw new ReductionError('empty image: no bytes received');
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: 'from-image', premultiplyAlpha: 'none',
      colorSpaceConversion: 'none' });
  } catch (error) {
    throw new ReductionError(`not a readable PNG/JPEG image (${error.message})`);
  }
  try {
    if (bitmap.width * bitmap.height > MAX_PIXELS) {
      throw new ReductionError(`image too large: ${bitmap.width}x${bitmap.height} pixels (at most ${MAX_PIXELS.toLocaleString('en-US')})`);
    }
    [picture.width, picture.height] = [bitmap.width, bitmap.height];
    const context = picture.getContext('2d', { willReadFrequently: true });
    context.clearRect(0, 0, bitmap.width, bitmap.height);
    context.drawImage(bitmap, 0, 0);
    picture.hidden = false;
    return context.getImageData(0, 0, bitmap.width, bitmap.height);
  } finally {
    bitmap.close();
  }
}

/** Decoded RGBA pixels of one picture -> {label, top, values, ms} (the benchmark times it). */
digits.predictPixels = (rgba, width, height) => {
  const started = performance.now();
  return predictInput(pictureToInput(rgba, width, height, digits.spec), started);
};

/** A picture file -> {label, top, values, ms}; a ReductionError names what is wrong with it. */
async function predictPicture(file) {
  await digits.ready;
  const started = performance.now();
  const image = await decodePicture(file);
  return predictInput(pictureToInput(image.data, image.width, image.height, digits.spec), started);
}
digits.predictPicture = predictPicture;

/** One model alone: a Float32Array of N images' values -> probabilities (the benchmark times it). */
digits.predictValues = async (values, runtime = 'tfjs') => runtimeNamed(runtime).predict(values);

/** The contract check, then one runtime's model: nested arrays or {shape, values} -> N*K probabilities. */
digits.predictBatch = async (batch, { runtime = 'tfjs', ...options } = {}) => {
  const { values } = checkBatch(batch, digits.spec, { maxBatch: null, ...options });
  return runtimeNamed(runtime).predict(values);
};

/** The input as the model sees it. Ink counts are drawn dark on white; pictures in their own colours. */
function showPreview(values) {
  const { spec } = digits;
  const { height, width, channels } = shapes(spec);
  const cells = preview.getContext('2d');
  const image = cells.createImageData(width, height);
  const low = spec.input.min;
  const span = spec.input.max - low;
  const level = (value) => Math.round(((value - low) / span) * 255);
  for (let i = 0; i < height * width; i++) {
    let rgb;
    if (drawable(spec)) {
      const shade = 255 - level(values[i]); // more ink, darker
      rgb = [shade, shade, shade];
    } else if (channels === 1) {
      rgb = [level(values[i]), level(values[i]), level(values[i])];
    } else {
      rgb = [0, 1, 2].map((c) => level(values[i * channels + c]));
    }
    image.data.set([...rgb, 255], i * 4);
  }
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
  for (const [name, answer] of Object.entries(result.runtimes)) {
    const { row } = digits.runtimes[name];
    if (answer.error) {
      showRowError(row, answer.error);
      continue;
    }
    row.dataset.state = 'ready';
    row.querySelector('.label').textContent = answer.label;
    row.querySelector('.top').textContent = answer.top
      .map(({ label, probability }) => `${label} ${(probability * 100).toFixed(1)}%`).join(' · ');
    row.querySelector('.ms').textContent = `${answer.ms.toFixed(2)} ms`;
  }
}

function clearRows() {
  for (const { row, error } of Object.values(digits.runtimes)) {
    if (error) continue; // a runtime that failed to load keeps its message
    row.querySelector('.label').textContent = '';
    row.querySelector('.top').textContent = 'ready';
    row.querySelector('.ms').textContent = '';
  }
}

function clearResult() {
  predictionOut.textContent = '';
  predictionOut.dataset.state = 'empty';
  topList.replaceChildren();
  preview.getContext('2d').clearRect(0, 0, preview.width, preview.height);
  timeOut.textContent = '-';
  clearRows();
}

function showError(error) {
  clearResult();
  predictionOut.dataset.state = 'error';
  setStatus(`error: ${error.message}`);
}

// One prediction at a time: ink that arrives while one runs triggers one more afterwards.
let running = false;
let dirty = false;
let drawing = 0; // bumped by Clear and by an upload, so an answer for wiped ink is dropped
async function refresh() {
  dirty = true;
  predictionOut.dataset.state = 'pending';
  if (running || !digits.loaded) return;
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
    showError(error);
  } finally {
    running = false;
  }
}

async function upload(file) {
  drawing += 1;
  dirty = false;
  pen.clearRect(0, 0, pad.width, pad.height);
  predictionOut.dataset.state = 'pending';
  setStatus(`reading ${file ? file.name : 'nothing'}`);
  try {
    showResult(await predictPicture(file));
    predictionOut.dataset.state = 'ready';
    setStatus(`${file.name}: ${digits.lastInput.length} values`);
  } catch (error) {
    picture.hidden = true;
    showError(error);
  } finally {
    digits.uploads += 1;
  }
}

fileInput.addEventListener('change', () => {
  if (fileInput.files.length) upload(fileInput.files[0]);
  fileInput.value = ''; // the same file chosen again is a new upload
});
for (const type of ['dragenter', 'dragover']) {
  drop.addEventListener(type, (event) => {
    event.preventDefault();
    drop.classList.add('over');
  });
}
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (event) => {
  event.preventDefault();
  drop.classList.remove('over');
  const [file] = event.dataTransfer.files;
  upload(file);
});

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
  if (!picture.hidden) picture.hidden = true; // drawing replaces an uploaded picture
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
  picture.hidden = true;
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
