"""Test fixtures for the JavaScript side, written by Python so the two sides cannot drift.

Three JSON files under `<artifacts>/web/fixtures/`:

  reduction.json   drawings (RGBA pixels) -> the 8x8 input training.preprocess makes of them, or the
                   error it raises; the Node test runs page/reduce.js on each, bit for bit
  keras_test.json  the saved test split with the Keras model's probabilities; the Node test runs the
                   converted model on it (labels identical, max abs diff <= 1e-4)
  drawn.json       test-split digits as pen strokes (in 8x8-cell units) for the Chromium test to
                   draw with the mouse; each one is read correctly by Keras when drawn with any pen
                   width in `pen_to_cell`, so a wrong answer in the browser is the page's fault

Run by `python -m web.tfjs.export`; `write_all(web_dir, model, test_split)` is the entry point.
"""
from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np

from training.preprocess import ImageError, image_to_input, reduce_ink
from training.spec import DIGITS_LABELS as LABELS

IMAGE_SIZE = 8  # the digits' grid (this module writes the digits page's fixtures)

# Pen widths, as a fraction of one 8x8 cell on the pad, for which every drawn digit is checked.
PEN_TO_CELL = (0.5, 0.7, 0.9)
DRAW_MIN_CELL = 7  # a cell with at least this much ink (of 16) is drawn
DRAW_MIN_PROBABILITY = 0.8  # a digit is drawn only if Keras is this sure at every pen width
SIMULATED_CELL = 16  # pixels per cell when the drawing is simulated here


def coverage(segments, height: int, width: int, pen: float) -> np.ndarray:
    """Fraction (0..1) of each pixel covered by round-capped strokes of width `pen` (pixels).

    A canvas stroke with round caps and joins is every point within pen/2 of its segments; the
    pixel centre's distance gives a one-pixel antialiased edge, like a browser's.
    """
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    distance = np.full((height, width), np.inf)
    for (x0, y0), (x1, y1) in segments:
        dx, dy = x1 - x0, y1 - y0
        length2 = dx * dx + dy * dy
        t = np.zeros_like(xs) if length2 == 0 else np.clip(((xs - x0) * dx + (ys - y0) * dy) / length2, 0, 1)
        distance = np.minimum(distance, np.hypot(xs - (x0 + t * dx), ys - (y0 + t * dy)))
    return np.clip(pen / 2 - distance + 0.5, 0.0, 1.0)


def png(rgba: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


def vector(name: str, rgba: np.ndarray) -> dict:
    """One test vector: the drawing and what Python's whole path (PNG bytes -> 8x8) makes of it."""
    rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
    entry = {"name": name, "width": int(rgba.shape[1]), "height": int(rgba.shape[0]),
             "rgba": base64.b64encode(rgba.tobytes()).decode("ascii")}
    try:
        entry["expected"] = image_to_input(png(rgba)).astype(int).ravel().tolist()
    except ImageError as error:
        entry["error"] = str(error)
    return entry


def random_strokes(rng: np.random.Generator, height: int, width: int) -> tuple[list, float]:
    points = rng.uniform([0, 0], [width, height], size=(int(rng.integers(1, 6)), 2))
    segments = [(points[i], points[i + 1]) for i in range(len(points) - 1)] or [(points[0], points[0])]
    return segments, float(rng.uniform(1, max(2.0, min(height, width) / 4)))


def reduction_vectors(seed: int = 0, count: int = 48) -> list[dict]:
    """Drawings of every kind the reduction meets, from canvas strokes to photos and edge cases."""
    rng = np.random.default_rng(seed)
    vectors = []
    for i in range(count):
        height, width = (int(v) for v in rng.integers(6, 160, size=2))
        segments, pen = random_strokes(rng, height, width)
        ink = coverage(segments, height, width, pen)
        rgba = np.zeros((height, width, 4), dtype=np.uint8)
        kind = ("canvas", "paper", "screen", "colour", "noisy")[i % 5]
        if kind == "canvas":  # transparent background, antialiased alpha: the page's own case
            rgba[..., :3] = rng.integers(0, 256, size=3)
            rgba[..., 3] = np.round(ink * 255)
        else:
            if kind == "paper":  # dark ink on white
                background, stroke = np.array([255, 255, 255]), np.array([20, 20, 20])
            elif kind == "screen":  # light ink on black
                background, stroke = np.array([0, 0, 0]), np.array([240, 240, 240])
            else:  # any colours: exercises the grey conversion
                background, stroke = rng.integers(0, 256, size=3), rng.integers(0, 256, size=3)
            rgb = background + ink[..., None] * (stroke - background)
            if kind == "noisy":
                rgb = rgb + rng.normal(0, 12, size=rgb.shape)
            rgba[..., :3] = np.clip(np.round(rgb), 0, 255)
            rgba[..., 3] = 255
        vectors.append(vector(f"{kind}-{i}-{width}x{height}", rgba))

    def opaque(grey: np.ndarray) -> np.ndarray:
        return np.dstack([grey, grey, grey, np.full_like(grey, 255)]).astype(np.uint8)

    dot = np.full((9, 13), 255)
    dot[4, 6] = 0
    vectors.append(vector("single-ink-pixel", opaque(dot)))
    wide = np.full((20, 90), 255)
    wide[10, 3:87] = 0
    vectors.append(vector("one-pixel-high-line", opaque(wide)))
    tall = np.full((90, 20), 255)
    tall[3:87, 5] = 0
    vectors.append(vector("one-pixel-wide-line", opaque(tall)))
    blob = np.full((40, 40), 255)
    blob[2:38, 2:38] = 0  # more ink than background: the background is the minority side
    vectors.append(vector("ink-is-majority", opaque(blob)))
    vectors.append(vector("blank-canvas", np.zeros((32, 32, 4), dtype=np.uint8)))
    vectors.append(vector("almost-no-contrast", opaque(np.full((16, 16), 120) + np.eye(16, dtype=int) * 10)))
    return vectors


def strokes_for(digit: np.ndarray) -> list:
    """Pen strokes in cell units: one along every horizontal and vertical run of well-inked cells."""
    inked = digit >= DRAW_MIN_CELL
    strokes = []
    for grid, to_xy in ((inked, lambda line, c: (c + 0.5, line + 0.5)), (inked.T, lambda line, c: (line + 0.5, c + 0.5))):
        for line, cells in enumerate(grid):
            start = None
            for c, on in enumerate(list(cells) + [False]):
                if on and start is None:
                    start = c
                elif not on and start is not None:
                    if c - 1 > start:  # runs of one cell are covered by the other direction's dot
                        strokes.append([to_xy(line, start), to_xy(line, c - 1)])
                    start = None
    for y, x in zip(*np.nonzero(inked)):  # isolated cells still get a dot
        if not (inked[y, max(x - 1, 0):x + 2].sum() > 1 or inked[max(y - 1, 0):y + 2, x].sum() > 1):
            strokes.append([(x + 0.25, y + 0.5), (x + 0.75, y + 0.5)])
    return [[[float(a), float(b)] for a, b in stroke] for stroke in strokes]


def drawn_digits(model, x: np.ndarray, y: np.ndarray, per_label: int = 1) -> dict:
    """Test digits whose strokes Keras reads correctly at every pen width in PEN_TO_CELL."""
    side = IMAGE_SIZE * SIMULATED_CELL
    plans = [strokes_for(digit) for digit in x]
    inputs = []
    for strokes in plans:
        segments = [[np.multiply(p, SIMULATED_CELL) for p in stroke] for stroke in strokes]
        for ratio in PEN_TO_CELL:
            mask = coverage(segments, side, side, ratio * SIMULATED_CELL) >= 0.5
            inputs.append(reduce_ink(mask) if mask.any() else np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32))
    probabilities = model.predict(np.stack(inputs), verbose=0).reshape(len(x), len(PEN_TO_CELL), -1)
    chosen, taken = [], {}
    for index, (label, probs) in enumerate(zip(y, probabilities)):
        if taken.get(int(label), 0) < per_label and np.all(probs[:, label] >= DRAW_MIN_PROBABILITY):
            taken[int(label)] = taken.get(int(label), 0) + 1
            chosen.append({"test_index": index, "label": LABELS[int(label)], "strokes": plans[index]})
    return {"grid": IMAGE_SIZE, "pen_to_cell": [min(PEN_TO_CELL), max(PEN_TO_CELL)], "digits": chosen}


def write_all(web_dir: Path, model, test_x: np.ndarray, test_y: np.ndarray) -> Path:
    """Write the three fixture files into `web_dir/fixtures`; returns that folder."""
    out = Path(web_dir) / "fixtures"
    out.mkdir(parents=True, exist_ok=True)
    (out / "reduction.json").write_text(json.dumps({"vectors": reduction_vectors()}))
    probabilities = model.predict(test_x, verbose=0)
    (out / "keras_test.json").write_text(json.dumps({
        "x": test_x.astype(float).ravel().tolist(), "y": test_y.astype(int).tolist(),
        "probabilities": probabilities.astype(float).ravel().tolist(), "count": int(len(test_y)),
    }))
    (out / "drawn.json").write_text(json.dumps(drawn_digits(model, test_x, test_y), indent=1))
    return out
