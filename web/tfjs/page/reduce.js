// The JavaScript twin of training/preprocess.py: a drawing (RGBA pixels) -> the model's 8x8 input.
//
//   1. binarize        alpha >= threshold on a transparent background (a canvas drawing),
//                      otherwise grey pixels on the minority side of the darkest/lightest midpoint
//   2. crop_to_ink     the bounding box of the inked pixels
//   3. scale           into a centred bitmap keeping the aspect ratio, nearest neighbour, in the
//                      same integer arithmetic as the Python code
//   4. count           inked pixels per block -> values 0..blockSize^2
//
// Every parameter comes from spec.json's "reduction" section; nothing is declared here. The Node
// test checks this file bit for bit against vectors that Python writes with training.preprocess.
// Plain functions, no tfjs: the page and Node import the same file.

/** Raised when a drawing holds no digit; the message names the problem (as in Python). */
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

/** RGBA pixels of a drawing -> the model input as a Float32Array (8*8 values, 0..16). */
export function reduceDrawing(rgba, width, height, reduction) {
  const ink = binarize(rgba, width, height, reduction);
  const bitmap = scaleIntoBitmap(ink, width, height, reduction.bitmap_size);
  return countBlocks(bitmap, reduction.bitmap_size, reduction.block_size);
}
