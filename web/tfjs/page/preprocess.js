// The JavaScript twin of training/preprocess.py: a picture (RGBA pixels) -> one model input.
//
// `pictureToInput(rgba, width, height, spec)` is the one entry point; the spec's "reduction" picks:
//
// "ink_blocks" (the digits, the way the dataset was made; every size from the spec)
//   1. binarize        alpha >= threshold on a transparent background (a canvas drawing),
//                      otherwise grey pixels on the minority side of the darkest/lightest midpoint
//   2. crop_to_ink     the bounding box of the inked pixels
//   3. scale           into a centred bitmap keeping the aspect ratio, nearest neighbour, in the
//                      same integer arithmetic as the Python code
//   4. count           inked pixels per block -> values 0..blockSize^2
//
// "resize" (every other task)
//   1. composite       onto white: c' = floor((c*a + 255*(255 - a) + 127) / 255), in integers
//   2. to_channels     grey with Pillow's "L" weights, or RGB, as the spec's item shape says
//   3. resize_area     to (H, W) by the area average (box filter), as exact integer sums
//   4. map             0..255 onto [min, max]: min + (max - min) * (sum / (area * 255)), one float32 rounding
//
// Given the same RGBA pixels, both reductions give the Python values bit for bit (the Node test
// checks every vector Python wrote with training.preprocess). Decoding is the browser's: for
// opaque PNGs that is the same pixels as Pillow's; a canvas keeps premultiplied alpha, so a
// translucent pixel may differ by one grey level, and JPEG decoders may differ slightly.
// Plain functions, no tfjs: the page and Node import the same file.

/** Pictures larger than this many pixels are refused (training/preprocess.py MAX_PIXELS). */
export const MAX_PIXELS = 16_000_000;

/** Raised when a picture cannot become an input; the message names the problem (as in Python's ImageError). */
export class ReductionError extends Error {}

/**
 * Ink mask (Uint8Array of 0/1, row-major) from RGBA pixels, like preprocess.binarize.
 * The grey level is Pillow's `convert("L")`: (R*19595 + G*38470 + B*7471 + 0x8000) >> 16.
 */
export function binarize(rgba, width, height, reduction) {
  const count = width * height;
  if (rgba.length !== count * 4) {
    throw new ReductionError(`expected ${count * 4} RGBA bytes for ${width}x${height}, got ${rgba.length}`);
  }
  const threshold = reduction.ink_alpha_threshold;
  let alphaMin = 255;
  let alphaMax = 0;
  for (let i = 0; i < count; i++) {
    const a = rgba[i * 4 + 3];
    if (a < alphaMin) alphaMin = a;
    if (a > alphaMax) alphaMax = a;
  }
  const ink = new Uint8Array(count);
  if (alphaMin < threshold && threshold <= alphaMax) {
    for (let i = 0; i < count; i++) ink[i] = rgba[i * 4 + 3] >= threshold ? 1 : 0;
    return ink;
  }
  const grey = new Uint8Array(count);
  let darkest = 255;
  let lightest = 0;
  for (let i = 0; i < count; i++) {
    const g = (rgba[i * 4] * 19595 + rgba[i * 4 + 1] * 38470 + rgba[i * 4 + 2] * 7471 + 0x8000) >> 16;
    grey[i] = g;
    if (g < darkest) darkest = g;
    if (g > lightest) lightest = g;
  }
  if (lightest - darkest < reduction.min_contrast) {
    throw new ReductionError(
      `no digit found: the picture has almost no contrast (${lightest - darkest} grey levels)`);
  }
  const midpoint = (darkest + lightest) / 2;
  let dark = 0;
  for (let i = 0; i < count; i++) {
    ink[i] = grey[i] < midpoint ? 1 : 0;
    dark += ink[i];
  }
  // Ink is the minority: dark strokes on paper, or light strokes on a dark screen.
  if (2 * dark > count) for (let i = 0; i < count; i++) ink[i] = 1 - ink[i];
  return ink;
}

/** Crop an ink mask to its ink and scale it into a centred (size x size) bitmap (0/1 bytes). */
export function scaleIntoBitmap(ink, width, height, size) {
  let top = height, bottom = -1, left = width, right = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (ink[y * width + x]) {
        if (y < top) top = y;
        if (y > bottom) bottom = y;
        if (x < left) left = x;
        if (x > right) right = x;
      }
    }
  }
  if (bottom < 0) throw new ReductionError('no ink found: the picture is blank');
  const h = bottom - top + 1;
  const w = right - left + 1;
  const longest = Math.max(h, w);
  // The longer side fills the bitmap; the other keeps the aspect ratio (at least one pixel).
  const outH = Math.max(1, Math.floor((h * size + Math.floor(longest / 2)) / longest));
  const outW = Math.max(1, Math.floor((w * size + Math.floor(longest / 2)) / longest));
  const offsetY = Math.floor((size - outH) / 2);
  const offsetX = Math.floor((size - outW) / 2);
  const bitmap = new Uint8Array(size * size);
  for (let i = 0; i < outH; i++) {
    // Nearest neighbour: target pixel i samples source floor((i + 0.5) * h / outH), in integers.
    const srcY = top + Math.floor(((2 * i + 1) * h) / (2 * outH));
    for (let j = 0; j < outW; j++) {
      const srcX = left + Math.floor(((2 * j + 1) * w) / (2 * outW));
      bitmap[(offsetY + i) * size + offsetX + j] = ink[srcY * width + srcX];
    }
  }
  return bitmap;
}

/** (size x size) bitmap -> Float32Array of (size / block)^2 ink counts, row-major. */
export function countBlocks(bitmap, size, block) {
  const cells = size / block;
  const counts = new Float32Array(cells * cells);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      counts[Math.floor(y / block) * cells + Math.floor(x / block)] += bitmap[y * size + x];
    }
  }
  return counts;
}

/** RGBA pixels of a drawing -> its block counts, a Float32Array of (bitmap_size / block_size)^2 values. */
export function reduceDrawing(rgba, width, height, reduction) {
  const ink = binarize(rgba, width, height, reduction);
  const bitmap = scaleIntoBitmap(ink, width, height, reduction.bitmap_size);
  return countBlocks(bitmap, reduction.bitmap_size, reduction.block_size);
}

/** One image's shape from the spec: {height, width, channels, size} (channels 1 for layout NHW). */
export function itemShape(spec) {
  const [, height, width, channels = 1] = spec.input.shape;
  return { height, width, channels, size: height * width * channels };
}

/**
 * Resample one axis by overlap-weighted sums, exact in doubles (every value an integer < 2^53).
 * `pixels` holds `outer` runs of `source` lines of `inner` numbers; returns `outer` x `size` x `inner`.
 * In units where a source pixel is `size` long and an output pixel `source` long, output j covers
 * [j*source, (j+1)*source): its sum is F((j+1)*source) - F(j*source), with F the prefix integral.
 */
function areaSums(pixels, outer, source, inner, size) {
  const out = new Float64Array(outer * size * inner);
  const before = new Float64Array(source + 1); // one line's prefix sums at a time: little memory for a big photo
  for (let o = 0; o < outer; o++) {
    const base = o * source * inner;
    for (let k = 0; k < inner; k++) {
      for (let i = 0; i < source; i++) before[i + 1] = before[i] + pixels[base + i * inner + k];
      let previous = 0; // F(0)
      for (let j = 1; j <= size; j++) {
        const edge = j * source;
        const whole = Math.floor(edge / size);
        const part = edge % size;
        const pixel = whole < source ? pixels[base + whole * inner + k] : 0;
        const integral = size * before[whole] + part * pixel;
        out[(o * size + j - 1) * inner + k] = integral - previous;
        previous = integral;
      }
    }
  }
  return out;
}

/** RGBA pixels -> the plain resize's input, a Float32Array of H*W*C values in the spec's range. */
export function resizePicture(rgba, width, height, spec) {
  const count = width * height;
  if (rgba.length !== count * 4) {
    throw new ReductionError(`expected ${count * 4} RGBA bytes for ${width}x${height}, got ${rgba.length}`);
  }
  const item = itemShape(spec);
  if (item.channels !== 1 && item.channels !== 3) {
    throw new ReductionError(`the spec's images have ${item.channels} channels; pictures can become 1 (grey) or 3 (RGB)`);
  }
  const pixels = new Uint8Array(count * item.channels);
  for (let i = 0; i < count; i++) {
    const a = rgba[i * 4 + 3];
    // Onto white, in integers: the same rounding as Python's (c*a + 255*(255 - a) + 127) // 255.
    const over = (c) => Math.floor((c * a + 255 * (255 - a) + 127) / 255);
    const r = over(rgba[i * 4]);
    const g = over(rgba[i * 4 + 1]);
    const b = over(rgba[i * 4 + 2]);
    if (item.channels === 1) {
      pixels[i] = Math.floor((r * 19595 + g * 38470 + b * 7471 + 0x8000) / 65536);
    } else {
      pixels[i * 3] = r;
      pixels[i * 3 + 1] = g;
      pixels[i * 3 + 2] = b;
    }
  }
  const rows = areaSums(pixels, 1, height, width * item.channels, item.height); // (H, width, C)
  const sums = areaSums(rows, item.height, width, item.channels, item.width); // (H, W, C)
  const low = spec.input.min;
  const high = spec.input.max;
  const area = count * 255;
  return Float32Array.from(sums, (sum) => low + (high - low) * (sum / area));
}

/**
 * The one entry point: RGBA pixels of one picture -> the model input, a Float32Array of
 * H*W*C values (row-major, channels last), the way the spec's "reduction" says.
 */
export function pictureToInput(rgba, width, height, spec) {
  const { kind } = spec.reduction;
  if (width * height > MAX_PIXELS) {
    throw new ReductionError(`image too large: ${width}x${height} pixels (at most ${MAX_PIXELS.toLocaleString('en-US')})`);
  }
  if (kind === 'ink_blocks') {
    const values = reduceDrawing(rgba, width, height, spec.reduction);
    const { size } = itemShape(spec);
    if (values.length !== size) {
      throw new ReductionError(`the spec's ink_blocks reduction makes ${values.length} values, but its input has ${size}`);
    }
    return values;
  }
  if (kind === 'resize') return resizePicture(rgba, width, height, spec);
  throw new ReductionError(`the spec's reduction kind "${kind}" is unknown (expected 'ink_blocks' or 'resize')`);
}
