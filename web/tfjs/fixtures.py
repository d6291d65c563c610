"""Test fixtures for the JavaScript side, written by Python so the two sides cannot drift.

JSON files under `<artifacts>/web-fixtures/` (tfjs-examples style: Python writes, JS only reads), beside
the served page folder and never inside it: keras_test.json and uploads.json hold the test split.

  pictures.json    RGBA pictures -> what training.preprocess.picture_to_input makes of them (as PNG
                   bytes), or the error it raises, for both reductions ("ink_blocks" for the digits,
                   "resize" grey and colour, square and not), each with the spec it was made for;
                   the Node test runs page/preprocess.js on each, bit for bit
  contract.json    good and bad batches with what core.contract.check_batch answers (the values, or
                   a fragment of its error); the Node test runs page/contract.js on each, and
                   tests/unit/test_contract_vectors.py runs core.contract on the same cases
  keras_test.json  the saved test split with the Keras model's probabilities; the Node test runs the
                   converted model on it (labels identical, max abs diff <= 1e-4)
  uploads.json     pictures of test-split items for the Chromium test to upload, with the input
                   Python makes of each and the label Keras gives it
  drawn.json       (digits only) test-split digits as pen strokes, in cell units, for the Chromium
                   test to draw with the mouse; each one is read correctly by Keras when drawn with
                   any pen width in `pen_to_cell`, so a wrong answer in the browser is the page's fault

Run by `python -m web.tfjs.export`; `write_all(out, model, test_x, test_y, spec)` is the entry
point. The model-free files alone: `python -m web.tfjs.fixtures OUT_DIR`.
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import math
import shutil
from pathlib import Path

import numpy as np

from core import contract
from core.spec import Spec
from training.preprocess import MAX_PIXELS, ImageError, picture_to_input, reduce_ink
from training.spec import RESIZE_REDUCTION, ModelConfig, derive_spec, digits_spec

# Pen widths, as a fraction of one cell on the pad, for which every drawn digit is checked.
PEN_TO_CELL = (0.5, 0.7, 0.9)
DRAW_MIN_CELL = 7  # a cell with at least this much ink (of 16) is drawn
DRAW_MIN_PROBABILITY = 0.8  # a digit is drawn only if Keras is this sure at every pen width
SIMULATED_CELL = 16  # pixels per cell when the drawing is simulated here
UPLOAD_SCALE = 8  # an uploaded test picture is its item enlarged this many times (nearest neighbour)


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
    Image.fromarray(np.ascontiguousarray(rgba, dtype=np.uint8), "RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


# -- pictures.json ---------------------------------------------------------------------------------

def picture_specs() -> dict[str, dict]:
    """The specs the picture vectors are made for: both reductions, grey and colour, square and not."""
    def task(shape, value_range, reduction=RESIZE_REDUCTION, labels=("a", "b")):
        return derive_spec(ModelConfig(), item_shape=shape, labels=labels, value_range=value_range,
                           model_name="vectors", reduction=reduction)

    return {
        "digits": digits_spec(),
        "grey-12x16": task((12, 16), (0.0, 255.0)),
        "grey-9x9x1-unit": task((9, 9, 1), (0.0, 1.0)),
        "grey-8x8-0-16": task((8, 8), (0.0, 16.0)),
        "rgb-12x16x3": task((12, 16, 3), (0.0, 255.0)),
        "rgb-20x7x3-signed": task((20, 7, 3), (-1.0, 1.0)),
        "rgb-5x5x3-odd-range": task((5, 5, 3), (-3.5, 17.25)),
    }


def vector(name: str, rgba: np.ndarray, spec_name: str, spec: dict) -> dict:
    """One test vector: the picture and what Python's whole path (PNG bytes -> input) makes of it."""
    rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
    entry = {"name": name, "spec": spec_name, "width": int(rgba.shape[1]), "height": int(rgba.shape[0]),
             "rgba": base64.b64encode(rgba.tobytes()).decode("ascii")}
    try:
        values = picture_to_input(png(rgba), spec)
        # float() of a float32 is exact in JSON (a double): the JS side compares bit for bit.
        entry["expected"] = [float(v) for v in values.ravel()]
        entry["shape"] = list(values.shape)
    except ImageError as error:
        entry["error"] = str(error)
    return entry


def random_strokes(rng: np.random.Generator, height: int, width: int) -> tuple[list, float]:
    points = rng.uniform([0, 0], [width, height], size=(int(rng.integers(1, 6)), 2))
    segments = [(points[i], points[i + 1]) for i in range(len(points) - 1)] or [(points[0], points[0])]
    return segments, float(rng.uniform(1, max(2.0, min(height, width) / 4)))


def ink_vectors(spec: dict, seed: int = 0, count: int = 48) -> list[dict]:
    """Drawings of every kind the ink-block reduction meets, from canvas strokes to photos and edge cases."""
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
        vectors.append(vector(f"ink-{kind}-{i}-{width}x{height}", rgba, "digits", spec))

    def opaque(grey: np.ndarray) -> np.ndarray:
        return np.dstack([grey, grey, grey, np.full_like(grey, 255)]).astype(np.uint8)

    dot = np.full((9, 13), 255)
    dot[4, 6] = 0
    wide = np.full((20, 90), 255)
    wide[10, 3:87] = 0
    tall = np.full((90, 20), 255)
    tall[3:87, 5] = 0
    blob = np.full((40, 40), 255)
    blob[2:38, 2:38] = 0  # more ink than background: the background is the minority side
    for name, rgba in (("single-ink-pixel", opaque(dot)), ("one-pixel-high-line", opaque(wide)),
                       ("one-pixel-wide-line", opaque(tall)), ("majority-ink", opaque(blob)),
                       ("blank-canvas", np.zeros((32, 32, 4), dtype=np.uint8)),
                       ("almost-no-contrast", opaque(np.full((16, 16), 120) + np.eye(16, dtype=int) * 10))):
        vectors.append(vector(f"ink-{name}", rgba, "digits", spec))
    return vectors


def resize_vectors(specs: dict[str, dict], seed: int = 1) -> list[dict]:
    """Pictures for the plain resize: larger and smaller than the input, opaque and translucent, grey and colour."""
    rng = np.random.default_rng(seed)
    vectors = []
    for spec_name, spec in specs.items():
        if spec["reduction"]["kind"] != "resize":
            continue
        height, width = spec["input"]["shape"][1:3]
        sizes = [(height, width), (height * 3, width * 3), (height * 2 + 1, width * 5 - 2), (max(1, height // 2), 3),
                 (1, 1), (int(rng.integers(20, 120)), int(rng.integers(20, 120)))]
        for k, (h, w) in enumerate(sizes):
            alpha = ("opaque", "transparent", "translucent", "grey")[k % 4]
            rgba = rng.integers(0, 256, size=(h, w, 4)).astype(np.uint8)
            if alpha in ("opaque", "grey"):
                rgba[..., 3] = 255
            elif alpha == "transparent":
                rgba[..., 3] = np.where(rng.random((h, w)) < 0.5, 0, 255)
            if alpha == "grey":
                rgba[..., 1] = rgba[..., 2] = rgba[..., 0]
            vectors.append(vector(f"resize-{spec_name}-{alpha}-{w}x{h}", rgba, spec_name, spec))
        # A smooth photo-like gradient, much larger than the input.
        ys, xs = np.mgrid[0:97, 0:131]
        gradient = np.dstack([xs * 255 // 130, ys * 255 // 96, (xs + ys) * 255 // 226, np.full_like(xs, 255)])
        vectors.append(vector(f"resize-{spec_name}-gradient-131x97", gradient, spec_name, spec))
    return vectors


def pictures() -> dict:
    specs = picture_specs()
    return {"max_pixels": MAX_PIXELS, "specs": specs,
            "vectors": ink_vectors(specs["digits"]) + resize_vectors(specs)}


# -- contract.json ---------------------------------------------------------------------------------

# JSON has no NaN or infinity: the cases write them as these strings, and both readers map them back.
SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def decode_special(value):
    """A case's batch with "NaN", "Infinity", "-Infinity" turned back into floats.

    A batch is nested lists, or {"shape", "values"} (flat values, for shapes nested lists cannot
    show, such as (0, H, W)); the latter becomes a float64 numpy array of that shape.
    """
    if isinstance(value, dict):
        return np.asarray(decode_special(value["values"]), dtype=np.float64).reshape(value["shape"])
    if isinstance(value, list):
        return [decode_special(item) for item in value]
    return SPECIAL.get(value, value) if isinstance(value, str) else value


def contract_specs() -> dict[str, dict]:
    colour = derive_spec(ModelConfig(), item_shape=(2, 3, 3), labels=("a", "b", "c"), value_range=(0.0, 255.0),
                         model_name="vectors", reduction=RESIZE_REDUCTION)
    grey = derive_spec(ModelConfig(), item_shape=(2, 2), labels=("a", "b"), value_range=(-1.0, 1.0),
                       model_name="vectors", reduction=RESIZE_REDUCTION)
    return {"colour-2x3x3": colour, "grey-2x2": grey}


def contract_cases() -> dict:
    """Batches and what core.contract.check_batch answers: the float32 values, or an error fragment.

    Each case: spec, batch (nested lists, or {"shape", "values"}), options (max_batch, check_range), and either
    "expected" (flat float32 values) or "error" (a fragment both languages' messages contain).
    """
    specs = contract_specs()
    rng = np.random.default_rng(2)
    colour = rng.integers(0, 256, size=(2, 2, 3, 3)).tolist()
    grey = np.round(rng.uniform(-1, 1, size=(3, 2, 2)), 3).tolist()
    one = [[0.5, -0.25], [1.0, -1.0]]
    cases = [
        ("colour ok", "colour-2x3x3", colour, {}, None),
        ("grey ok", "grey-2x2", grey, {}, None),
        ("edges of the range ok", "grey-2x2", [[[-1, 1], [0, 1e-7]]], {}, None),
        ("float32 rounding", "grey-2x2", [[[0.1, 0.2], [0.3, 1 / 3]]], {}, None),
        ("out of range refused only when asked", "grey-2x2", [[[2, 0], [0, 0]]], {"check_range": False}, None),
        ("one image without the batch axis", "grey-2x2", one, {},
         "must have shape [-1, 2, 2] (N images of 2x2), got [2, 2]"),
        ("grey image for a colour task", "colour-2x3x3", [[[0, 0, 0], [0, 0, 0]]], {},
         "must have shape [-1, 2, 3, 3] (N images of 2x3x3), got [1, 2, 3]"),
        ("flat values", "grey-2x2", [0, 0, 0, 0], {}, "must have shape [-1, 2, 2]"),
        ("transposed", "colour-2x3x3", np.zeros((1, 3, 2, 3)).tolist(), {}, "got [1, 3, 2, 3]"),
        ("empty batch", "grey-2x2", [], {}, "must have shape"),
        ("empty batch of the right rank", "grey-2x2", {"shape": [0, 2, 2], "values": []}, {},
         "empty batch: send at least one 2x2 image"),
        ("flat values with their shape", "colour-2x3x3", {"shape": [2, 2, 3, 3], "values": np.ravel(colour).tolist()},
         {}, None),
        ("ragged", "grey-2x2", [[[0, 0], [0]]], {}, "ragged: every image must be 2x2 numbers"),
        ("a string inside", "grey-2x2", [[[0, "x"], [None, 0]]], {}, "must hold numbers only"),
        ("a null inside", "grey-2x2", [[[0, 0], [None, 0]]], {}, "must hold numbers only"),
        ("NaN", "grey-2x2", [[["NaN", 0], [0, "Infinity"]]], {}, "contains 2 NaN or infinite values"),
        ("minus infinity", "grey-2x2", [[[0, 0], [0, "-Infinity"]]], {}, "contains 1 NaN or infinite values"),
        ("below the range", "grey-2x2", [[[-2, 0], [0, 0]]], {}, "values must lie in [-1, 1], got [-2, 0]"),
        ("above the range", "colour-2x3x3", [np.full((2, 3, 3), 256).tolist()], {},
         "values must lie in [0, 255], got [256, 256]"),
        ("too large for float32", "grey-2x2", [[[1e39, 0], [0, 0]]], {"check_range": False},
         "holds a number too large for float32"),
        ("more than max_batch", "grey-2x2", grey, {"max_batch": 2},
         "holds 3 images, more than the 2 allowed per request: split the batch"),
        ("max_batch from the spec", "grey-2x2", np.zeros((513, 2, 2)).tolist(), {},
         "holds 513 images, more than the 512 allowed"),
        ("no limit", "grey-2x2", np.zeros((513, 2, 2)).tolist(), {"max_batch": None}, None),
    ]
    out = []
    for name, spec_name, batch, options, error in cases:
        case = {"name": name, "spec": spec_name, "batch": batch, "options": options}
        if error is None:
            checked = contract.check_batch(decode_special(batch), Spec(specs[spec_name]), **options)
            case["expected"] = [float(v) for v in checked.ravel()]
            case["shape"] = list(checked.shape)
        else:
            case["error"] = error
        out.append(case)
    return {"specs": specs, "cases": out}


# -- drawn.json (digits) and uploads.json ----------------------------------------------------------

def strokes_for(digit: np.ndarray, min_cell: float) -> list:
    """Pen strokes in cell units: one along every horizontal and vertical run of well-inked cells."""
    inked = digit >= min_cell
    strokes = []
    for grid, to_xy in ((inked, lambda line, c: (c + 0.5, line + 0.5)),
                        (inked.T, lambda line, c: (line + 0.5, c + 0.5))):
        for line, cells in enumerate(grid):
            start = None
            for c, on in enumerate(list(cells) + [False]):
                if on and start is None:
                    start = c
                elif not on and start is not None:
                    if c - 1 > start:  # runs of one cell are covered by the other direction's dot
                        strokes.append([to_xy(line, start), to_xy(line, c - 1)])
                    start = None
    for y, x in zip(*np.nonzero(inked), strict=False):  # isolated cells still get a dot
        if not (inked[y, max(x - 1, 0):x + 2].sum() > 1 or inked[max(y - 1, 0):y + 2, x].sum() > 1):
            strokes.append([(x + 0.25, y + 0.5), (x + 0.75, y + 0.5)])
    return [[[float(a), float(b)] for a, b in stroke] for stroke in strokes]


def drawn_digits(model, x: np.ndarray, y: np.ndarray, spec: Spec, per_label: int = 1) -> dict:
    """Test digits whose strokes Keras reads correctly at every pen width in PEN_TO_CELL."""
    grid, reduction = spec.height, spec.reduction
    side = grid * SIMULATED_CELL
    # "well inked": DRAW_MIN_CELL of 16 for the digits, the same share of any other block size.
    min_cell = DRAW_MIN_CELL / 16 * reduction["block_size"] ** 2
    plans = [strokes_for(item, min_cell) for item in x]
    inputs = []
    for strokes in plans:
        segments = [[np.multiply(p, SIMULATED_CELL) for p in stroke] for stroke in strokes]
        for ratio in PEN_TO_CELL:
            mask = coverage(segments, side, side, ratio * SIMULATED_CELL) >= 0.5
            inputs.append(reduce_ink(mask, reduction) if mask.any() else np.zeros((grid, grid), np.float32))
    probabilities = model.predict(np.stack(inputs).reshape(-1, *spec.item_shape), verbose=0)
    probabilities = probabilities.reshape(len(x), len(PEN_TO_CELL), -1)
    chosen, taken = [], {}
    for index, (label, probs) in enumerate(zip(y, probabilities, strict=False)):
        if taken.get(int(label), 0) < per_label and np.all(probs[:, label] >= DRAW_MIN_PROBABILITY):
            taken[int(label)] = taken.get(int(label), 0) + 1
            chosen.append({"test_index": index, "label": spec.labels[int(label)], "strokes": plans[index]})
    return {"grid": grid, "pen_to_cell": [min(PEN_TO_CELL), max(PEN_TO_CELL)], "digits": chosen}


def item_picture(item: np.ndarray, spec: Spec) -> np.ndarray:
    """A test item as an RGBA picture, UPLOAD_SCALE times larger: what a user would upload.

    For the plain resize the item's values are mapped back onto 0..255 and each value becomes a
    block of pixels; for the ink blocks, the item is drawn as dark strokes on white paper.
    """
    if spec.reduction["kind"] == "ink_blocks":
        side = spec.height * SIMULATED_CELL
        segments = [[np.multiply(p, SIMULATED_CELL) for p in stroke]
                    for stroke in strokes_for(item, DRAW_MIN_CELL / 16 * spec.reduction["block_size"] ** 2)]
        grey = np.round(255 - 235 * coverage(segments, side, side, 0.7 * SIMULATED_CELL)).astype(np.uint8)
        return np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    pixels = np.round((item - spec.value_min) / (spec.value_max - spec.value_min) * 255).clip(0, 255)
    pixels = pixels.reshape(spec.height, spec.width, spec.channels).astype(np.uint8)
    rgb = np.repeat(pixels, 3, axis=2) if spec.channels == 1 else pixels
    big = np.kron(rgb, np.ones((UPLOAD_SCALE, UPLOAD_SCALE, 1), np.uint8))
    return np.dstack([big, np.full(big.shape[:2], 255, np.uint8)])


UPLOAD_CANDIDATES = 40  # test items looked at to choose the uploaded pictures
UPLOAD_MIN_MARGIN = 0.01  # Keras's best class leads the second by this much: float noise cannot flip it


def uploads(model, x: np.ndarray, y: np.ndarray, spec: Spec, count: int = 3) -> dict:
    """Test items of distinct classes as PNG pictures, with Python's input and Keras's label for each.

    Only pictures whose Keras answer leads the runner-up by UPLOAD_MIN_MARGIN are chosen, so the
    page (whose input is Python's bit for bit) must show the same label.
    """
    candidates = range(min(len(x), UPLOAD_CANDIDATES))
    data = [png(item_picture(x[index], spec)) for index in candidates]
    inputs = np.stack([picture_to_input(picture, spec) for picture in data])
    probabilities = model.predict(inputs, verbose=0)
    chosen, seen = [], set()
    for index, row in zip(candidates, probabilities, strict=False):
        top2 = np.sort(row)[-2:]
        if int(y[index]) not in seen and top2[1] - top2[0] >= UPLOAD_MIN_MARGIN:
            seen.add(int(y[index]))
            chosen.append(index)
        if len(chosen) == count:
            break
    return {"pictures": [
        {"test_index": int(index), "true_label": spec.labels[int(y[index])],
         "png": base64.b64encode(data[index]).decode("ascii"), "input": [float(v) for v in inputs[index].ravel()],
         "label": spec.labels[int(np.argmax(probabilities[index]))], "probability": float(np.max(probabilities[index]))}
        for index in chosen]}


def write_model_free(out: Path) -> Path:
    """pictures.json and contract.json, which need no trained model."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pictures.json").write_text(json.dumps(pictures()))
    (out / "contract.json").write_text(json.dumps(contract_cases()))
    return out


def write_all(out: Path, model, test_x: np.ndarray, test_y: np.ndarray, spec: Spec) -> Path:
    """Write every fixture file into the folder `out` (emptied first: no stale vector is read); returns it."""
    shutil.rmtree(out, ignore_errors=True)
    out = write_model_free(out)
    probabilities = model.predict(test_x, verbose=0)
    (out / "keras_test.json").write_text(json.dumps({
        "x": test_x.astype(float).ravel().tolist(), "y": test_y.astype(int).tolist(),
        "probabilities": probabilities.astype(float).ravel().tolist(), "count": int(len(test_y)),
    }))
    (out / "uploads.json").write_text(json.dumps(uploads(model, test_x, test_y, spec)))
    if spec.reduction["kind"] == "ink_blocks":
        (out / "drawn.json").write_text(json.dumps(drawn_digits(model, test_x, test_y, spec), indent=1))
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder to write pictures.json and contract.json into")
    args = parser.parse_args(argv)
    print(f"wrote {write_model_free(args.out)}")


if __name__ == "__main__":
    main()
