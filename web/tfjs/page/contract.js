// The JavaScript twin of core/contract.py's check_batch: a batch against the spec, in the page
// and in the Chromium predictor (tools/predict_chromium.js calls it through the page).
//
//   import { checkBatch } from './contract.js';
//   const { values, shape } = checkBatch(batch, spec);   // Float32Array, [N, ...item shape]
//
// `batch` is nested arrays (as JSON sends them) or {shape, values} with flat values. The checks
// and their order are Python's: ragged, non-numeric, shape, empty, more than the per-request
// limit, NaN or infinite, out of the spec's range, too large for float32. Errors are
// ContractError with Python's messages; the Node test runs both on the same vectors
// (web-fixtures/contract.json, written by web/tfjs/fixtures.py).

/** The input does not meet the spec's contract; the message names the problem. */
export class ContractError extends Error {}

/** Python's `f"{x:g}"`: six significant digits, exponent outside 1e-4 .. 1e6. */
export function formatG(x) {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const strip = (text) => (text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text);
  const [mantissa, power] = x.toExponential(5).split('e');
  const exponent = Number(power);
  if (exponent < -4 || exponent >= 6) {
    return `${strip(mantissa)}e${exponent < 0 ? '-' : '+'}${String(Math.abs(exponent)).padStart(2, '0')}`;
  }
  return strip(x.toFixed(5 - exponent));
}

const list = (numbers) => `[${numbers.join(', ')}]`;

/** One image's shape from the spec: [H, W] (layout NHW) or [H, W, C]. */
export function itemDims(spec) {
  return spec.input.shape.slice(1);
}

/** Nested arrays -> {shape, leaves}; throws the ragged error when the lists do not nest evenly. */
function flatten(batch, source, item) {
  const shape = [];
  for (let level = batch; Array.isArray(level); level = level[0]) shape.push(level.length);
  const leaves = [];
  const ragged = () => new ContractError(`${source}: ragged: every image must be ${item} numbers`);
  const walk = (node, depth) => {
    if (depth === shape.length) {
      if (Array.isArray(node)) throw ragged();
      leaves.push(node);
      return;
    }
    if (!Array.isArray(node) || node.length !== shape[depth]) throw ragged();
    for (const child of node) walk(child, depth + 1);
  };
  walk(batch, 0);
  return { shape, leaves };
}

/**
 * Any batch meeting the contract -> {values: Float32Array, shape: [N, ...item shape]}.
 * options: source (names the input in messages, default "input"), checkRange (default true),
 * maxBatch (-1: the spec's limit, the default; null: no limit; else that number).
 */
export function checkBatch(batch, spec, { source = 'input', checkRange = true, maxBatch = -1 } = {}) {
  const dims = itemDims(spec);
  const item = dims.join('x');
  let shape;
  let leaves;
  if (Array.isArray(batch)) {
    ({ shape, leaves } = flatten(batch, source, item));
  } else if (batch && batch.values && Array.isArray(batch.shape)) {
    ({ shape } = batch);
    leaves = batch.values;
    const count = shape.reduce((a, b) => a * b, 1);
    if (leaves.length !== count) {
      throw new ContractError(`${source}: ragged: ${leaves.length} values for shape ${list(shape)}`);
    }
  } else {
    throw new ContractError(`${source}: must be nested lists or {shape, values}, got ${typeof batch}`);
  }
  const isTyped = ArrayBuffer.isView(leaves);
  if (!isTyped) {
    const found = leaves.find((value) => typeof value !== 'number');
    if (found !== undefined || leaves.some((value) => typeof value !== 'number')) {
      throw new ContractError(`${source}: must hold numbers only, found ${JSON.stringify(found ?? null)}`);
    }
  }
  if (shape.length !== dims.length + 1 || dims.some((d, i) => shape[i + 1] !== d)) {
    throw new ContractError(`${source}: must have shape ${list([-1, ...dims])} (N images of ${item}), got ${list(shape)}`);
  }
  if (shape[0] === 0) throw new ContractError(`${source}: empty batch: send at least one ${item} image`);
  const limit = maxBatch === -1 ? spec.serving.limits.max_batch_size : maxBatch;
  if (limit !== null && shape[0] > limit) {
    throw new ContractError(`${source}: holds ${shape[0]} images, more than the ${limit} allowed per request: split the batch`);
  }
  let bad = 0;
  let low = Infinity;
  let high = -Infinity;
  for (const value of leaves) {
    if (!Number.isFinite(value)) bad += 1;
    if (value < low) low = value;
    if (value > high) high = value;
  }
  if (bad) throw new ContractError(`${source}: contains ${bad} NaN or infinite values`);
  if (checkRange && (low < spec.input.min || high > spec.input.max)) {
    throw new ContractError(`${source}: values must lie in [${formatG(spec.input.min)}, ${formatG(spec.input.max)}], `
      + `got [${formatG(low)}, ${formatG(high)}]`);
  }
  const values = Float32Array.from(leaves);
  if (values.some((value) => !Number.isFinite(value))) {
    throw new ContractError(`${source}: holds a number too large for float32`);
  }
  return { values, shape };
}
