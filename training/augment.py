"""The training examples: the split's own, and (with augmentation) warped copies and synthetic digits.

    from training import augment
    examples = augment.training_examples(splits["train"], spec, augment=True, seed=0)   # a data.Split

Without augmentation the examples are the split plus its one-pixel shifts (data.augment_with_shifts).
With it, for the digits (the spec's "ink_blocks" reduction), a picture is made of each example and
changed the way handwriting differs, then reduced again by the page's own reduction
(training/preprocess.reduce_ink, the function picture_to_input applies after binarizing, and the
twin of web/tfjs/page/preprocess.js):
    picture   the 8x8 counts are read as ink density at block centres of the 32x32 bitmap they came
              from, sampled bilinearly at picture resolution (WARP_SIZE pixels)
    slant     shear, and a small rotation
    scale     width and height stretched apart (an overall size or shift is undone by the
              reduction's crop-to-ink, so only the aspect survives)
    width     stroke width: the density threshold that counts as ink, lower = thicker
plus synthetic digits drawn from stroke styles and printed in fonts (training/synthetic.py).
For other tasks ("resize" reduction) augmentation warps the images themselves (shift, scale,
slant, rotation; no synthetic examples).

Every random number comes from the seed, so both frameworks (and every distributed worker) train
on identical arrays.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np

from training import data, synthetic
from training.preprocess import reduce_ink

WARP_SIZE = 48  # pixels of the picture each 8x8 example becomes before reduction
WARPED_COPIES = 2  # warped copies of each training example
SHIFTED_COPIES = 2  # one-pixel shifts of each training example (a random direction each)
AUGMENT_STREAM = 7  # SeedSequence key of the warps (synthetic.py uses its own)
_memo: dict = {}  # the last result: train_torch and train_keras ask for the same one in one process


def _affines(rng: np.random.Generator, count: int, shear: float, turn: float, stretch: float,
             shift: float) -> tuple[np.ndarray, np.ndarray]:
    """(count, 2, 2) output->source matrices and (count, 2) shifts, random within the given bounds."""
    shears = rng.uniform(-shear, shear, count)
    turns = np.radians(np.clip(rng.normal(0, turn / 2, count), -turn, turn))
    aspect = np.exp(rng.uniform(-stretch, stretch, count))  # width / height
    cos, sin = np.cos(turns), np.sin(turns)
    forward = np.einsum("nij,njk->nik", np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], 1),
                        np.stack([np.stack([np.sqrt(aspect), -shears], -1),
                                  np.stack([np.zeros(count), 1 / np.sqrt(aspect)], -1)], 1))
    return np.linalg.inv(forward), rng.uniform(-shift, shift, (count, 2))


def _sample(images: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Bilinear samples of (N, H, W, C) images at float (N, h, w) coordinates; edges clamp."""
    n, height, width = images.shape[:3]
    rows, cols = np.clip(rows, 0, height - 1), np.clip(cols, 0, width - 1)
    r0, c0 = np.minimum(rows.astype(int), height - 2), np.minimum(cols.astype(int), width - 2)
    fr, fc = (rows - r0)[..., None], (cols - c0)[..., None]
    batch = np.arange(n)[:, None, None]
    top = images[batch, r0, c0] * (1 - fc) + images[batch, r0, c0 + 1] * fc
    bottom = images[batch, r0 + 1, c0] * (1 - fc) + images[batch, r0 + 1, c0 + 1] * fc
    return top * (1 - fr) + bottom * fr


def _grid(height: int, width: int, matrices: np.ndarray, shifts: np.ndarray,
          scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Source (row, col) of every output pixel, centred on the image's middle, in units of `scale`
    output pixels per source pixel: (N, height, width) each."""
    rows = (np.arange(height) + 0.5 - height / 2) / scale
    cols = (np.arange(width) + 0.5 - width / 2) / scale
    out = np.stack(np.meshgrid(rows, cols, indexing="ij"), -1)  # (height, width, 2): (y, x)
    source = np.einsum("nij,nhwj->nhwi", matrices[:, ::-1, ::-1], out[None] - shifts[:, None, None, ::-1] / scale)
    return source[..., 0], source[..., 1]


def warp_ink_counts(x: np.ndarray, reduction: dict, rng: np.random.Generator) -> np.ndarray:
    """(N, s, s) block counts -> (N, s, s) counts of a slanted, stretched, thicker or thinner picture
    of each, reduced by the page's reduction. Values stay 0..block_size^2."""
    block, side = int(reduction["block_size"]), x.shape[1]
    full = float(block * block)
    matrices, shifts = _affines(rng, len(x), shear=0.35, turn=12, stretch=0.3, shift=0.0)  # crop-to-ink undoes shifts
    padded = np.pad(x.astype(np.float32) / full, ((0, 0), (1, 1), (1, 1)))[..., None]  # zero density outside
    scale = WARP_SIZE / (side * block * 1.6)  # picture pixels per bitmap pixel: room for slant and turns
    rows, cols = _grid(WARP_SIZE, WARP_SIZE, matrices, shifts, scale)
    # bitmap coordinates (centred) -> block-centre grid coordinates of the padded counts
    density = _sample(padded, rows / block + side / 2 - 0.5 + 1, cols / block + side / 2 - 0.5 + 1)[..., 0]
    thresholds = rng.uniform(0.3, 0.65, len(x))  # the stroke width
    masks = density >= thresholds[:, None, None]
    out = np.empty_like(x, dtype=np.float32)
    for i, mask in enumerate(masks):
        out[i] = reduce_ink(mask, reduction) if mask.any() else x[i]  # a faint example keeps its own counts
    return out


def warp_images(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, H, W[, C]) images of any task -> slightly shifted, scaled, slanted and turned copies (bilinear,
    edges extended), in the same value range."""
    images = x[..., None] if x.ndim == 3 else x
    matrices, shifts = _affines(rng, len(x), shear=0.15, turn=8, stretch=0.1, shift=1.0)
    height, width = images.shape[1:3]
    rows, cols = _grid(height, width, matrices, shifts, 1.0)
    warped = _sample(images.astype(np.float32), rows + (height - 1) / 2, cols + (width - 1) / 2).astype(np.float32)
    return warped.reshape(x.shape)


def random_shifts(part: data.Split, copies: int, rng: np.random.Generator) -> data.Split:
    """`copies` one-pixel shifts of every example, each in a random direction (from data.augment_with_shifts)."""
    every = data.augment_with_shifts(part)  # the split, then up, down, left, right
    n = len(part)
    chosen = np.concatenate([(1 + rng.integers(0, 4, n)) * n + np.arange(n) for _ in range(copies)])
    return data.Split(every.x[chosen], every.y[chosen], every.index[chosen])


def _key(part: data.Split, spec, seed: int) -> str:
    digest = hashlib.sha256(part.x.tobytes() + part.y.tobytes())
    digest.update(json.dumps([spec.reduction, list(spec.item_shape), seed], sort_keys=True).encode())
    return digest.hexdigest()


def training_examples(part: data.Split, spec, *, augment: bool, seed: int) -> data.Split:
    """The examples one epoch passes over (see the module docstring); synthetic ones have index -1."""
    if not augment:
        return data.augment_with_shifts(part)
    key = _key(part, spec, seed)
    if key in _memo:
        return _memo[key]
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), AUGMENT_STREAM]))
    pieces = [part, random_shifts(part, SHIFTED_COPIES, rng)]
    if spec.reduction.get("kind") == "ink_blocks":
        for _ in range(WARPED_COPIES):
            pieces.append(data.Split(warp_ink_counts(part.x, spec.reduction, rng), part.y, part.index))
        x, y = synthetic.training_digits(spec.reduction, seed)
        pieces.append(data.Split(x.reshape(-1, *part.x.shape[1:]), y, np.full(len(y), -1)))
    else:
        for _ in range(WARPED_COPIES):
            pieces.append(data.Split(warp_images(part.x, rng), part.y, part.index))
    examples = data.Split(np.concatenate([p.x for p in pieces]).astype(np.float32),
                          np.concatenate([p.y for p in pieces]).astype(np.int64),
                          np.concatenate([p.index for p in pieces]))
    _memo.clear()
    _memo[key] = examples
    return examples
