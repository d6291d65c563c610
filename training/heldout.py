"""A held-out set of drawn and printed digits that training never sees, as pictures the page gets.

    from training import heldout
    cases = heldout.drawn(spec, seed=0) + heldout.printed(spec, seed=0)   # [Case(kind, label, style, values)]

drawn    every stroke style (training/strokes.py), including HELD_OUT_STYLES that training never
         draws, by a hand of its own: jitter from the HELD_OUT_STREAM of the seed, mouse events
         (points along the path at uneven spacing, with tremor), and the page's pad: a transparent
         PAD x PAD canvas, a PEN-pixel pen with round caps and joins, anti-aliased (drawn at twice
         the size and averaged, as a browser's canvas blends edges) (web/tfjs/page/app.js and index.html)
printed  HELD_OUT_FONTS (none used in training) at several sizes, dark on light, as uploaded photos
         or screenshots of print are

Each picture is encoded as PNG and passed through `picture_to_input`, the reduction the page runs
in JavaScript bit for bit. `benchmarks/handwriting.py` measures models on these cases.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from training import strokes, synthetic
from training.preprocess import picture_to_input

PAD, PEN = 256, 22  # the page's pad: <canvas id="pad" width="256" height="256">, PEN_WIDTH = 22
INK = (0x1D, 0x24, 0x30, 255)  # the pad's strokeStyle
SUPERSAMPLE = 2
DRAWN_PER_STYLE = 12
PRINTED_PER_FONT = 3


@dataclass(frozen=True)
class Case:
    """One held-out picture: "drawn" or "printed", its digit, the style or font, and the model input."""

    kind: str
    label: int
    style: str
    values: np.ndarray


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def mouse_path(stroke: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Points where pointermove events would land along a stroke (pixels): uneven steps, a little tremor."""
    segments = np.diff(stroke, axis=0)
    lengths = np.hypot(*segments.T)
    along = np.concatenate([[0.0], np.cumsum(lengths)])
    total = along[-1]
    if total == 0:
        return stroke[:1]
    steps = rng.uniform(2.0, 12.0, int(total / 2) + 2)  # pixels between events: the mouse's speed varies
    at = np.concatenate([[0.0], np.cumsum(steps)])
    at = np.append(at[at < total], total)
    points = np.stack([np.interp(at, along, stroke[:, 0]), np.interp(at, along, stroke[:, 1])], axis=1)
    tremor = np.cumsum(rng.normal(0, 0.6, points.shape), axis=0)
    tremor -= np.linspace(0, 1, len(points))[:, None] * tremor[-1]  # the hand ends where it aimed
    return points + np.clip(tremor, -4, 4)


def pad_picture(style: list[np.ndarray], rng: np.random.Generator) -> bytes:
    """PNG bytes of one rendition of a style drawn with the mouse on the page's pad."""
    from PIL import Image, ImageDraw

    size = rng.uniform(100, 210)  # the digit's longer side, in pad pixels
    margin = PEN / 2 + 2
    drawn, _ = synthetic.fit(synthetic.hand(style, rng, wobble=0.03), size, 0.0)
    span = np.concatenate(drawn).max(axis=0)
    offset = np.array([rng.uniform(margin, max(margin, PAD - margin - extent)) for extent in span])
    paths = [mouse_path(stroke + offset, rng) * SUPERSAMPLE for stroke in drawn]
    image = Image.new("RGBA", (PAD * SUPERSAMPLE, PAD * SUPERSAMPLE), (0, 0, 0, 0))
    synthetic.draw_strokes(ImageDraw.Draw(image), paths, PEN * SUPERSAMPLE, INK)
    return _png(image.reduce(SUPERSAMPLE))


def printed_picture(font_file, digit: str, rng: np.random.Generator) -> bytes:
    """PNG bytes of a digit printed dark on a light background."""
    from PIL import Image, ImageDraw, ImageFont

    size = int(rng.choice([28, 40, 64, 96]))
    paper, ink = int(rng.integers(200, 256)), int(rng.integers(0, 70))
    image = Image.new("RGB", (int(size * 1.6), int(size * 1.6)), (paper,) * 3)
    font = ImageFont.truetype(str(font_file), size)
    ImageDraw.Draw(image).text((image.width / 2, image.height / 2), digit, font=font, fill=(ink,) * 3, anchor="mm")
    return _png(image)


def drawn(spec, seed: int = 0, per_style: int = DRAWN_PER_STYLE) -> list[Case]:
    """Every style of strokes.STYLES and strokes.HELD_OUT_STYLES, `per_style` times, drawn on the pad."""
    rng = synthetic.rng_for(seed, synthetic.HELD_OUT_STREAM)
    cases = []
    for table in (strokes.STYLES, strokes.HELD_OUT_STYLES):
        for digit, named in sorted(table.items()):
            for name, style in named.items():
                for _ in range(per_style):
                    values = picture_to_input(pad_picture(style, rng), spec)
                    cases.append(Case("drawn", int(digit), name, values))
    return cases


def printed(spec, seed: int = 0, per_font: int = PRINTED_PER_FONT) -> list[Case]:
    """Every digit in every HELD_OUT_FONTS font, `per_font` times (sizes and greys vary)."""
    rng = synthetic.rng_for(seed, synthetic.HELD_OUT_STREAM + 1)
    fonts = synthetic.font_dir()
    cases = []
    for name in synthetic.HELD_OUT_FONTS:
        for digit in synthetic.DIGITS:
            for _ in range(per_font):
                values = picture_to_input(printed_picture(fonts / name, digit, rng), spec)
                cases.append(Case("printed", int(digit), name.removesuffix(".ttf"), values))
    return cases
