"""Synthetic digits: the stroke styles of training/strokes.py drawn by a jittery hand, and digits
printed in fonts that matplotlib (a pinned package) ships, each reduced by the page's own reduction.

    from training import synthetic
    x, y = synthetic.training_digits(reduction, seed=0)       # (N, 8, 8) block counts, (N,) digits

Fonts are split once: TRAIN_FONTS are rendered for training, HELD_OUT_FONTS only by the held-out
measurement (training/heldout.py); the two sets never meet (tests/unit/test_synthetic.py checks).
Random numbers come from numbered streams of the seed (TRAIN_STREAM here, HELD_OUT_STREAM for the
held-out set), so no held-out digit shares its jitter with a training one.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from training import strokes
from training.preprocess import reduce_ink

TRAIN_STREAM, HELD_OUT_STREAM = 11, 29  # SeedSequence keys: the two sets draw from unrelated streams
TRAIN_FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSansMono.ttf",
               "DejaVuSansMono-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Italic.ttf", "STIXGeneral.ttf",
               "STIXGeneralBolIta.ttf", "cmr10.ttf", "cmss10.ttf")
HELD_OUT_FONTS = ("DejaVuSans-BoldOblique.ttf", "DejaVuSansMono-Oblique.ttf", "DejaVuSansMono-BoldOblique.ttf",
                  "DejaVuSerif-Bold.ttf", "DejaVuSerif-BoldItalic.ttf", "STIXGeneralBol.ttf",
                  "STIXGeneralItalic.ttf", "cmtt10.ttf", "cmb10.ttf")
DIGITS = tuple(str(digit) for digit in range(10))
CANVAS = 64  # pixels of a training rendering; the reduction crops and rescales it anyway
STROKES_PER_DIGIT = 120  # drawn training digits per class
FONT_RENDERS = 4  # printed training digits per font and class


def rng_for(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), stream]))


def font_dir() -> Path:
    """matplotlib's bundled TrueType folder (found without importing matplotlib)."""
    found = importlib.util.find_spec("matplotlib")
    if found is None or not found.submodule_search_locations:
        raise FileNotFoundError("matplotlib is not installed: its bundled fonts print the synthetic digits")
    return Path(list(found.submodule_search_locations)[0]) / "mpl-data" / "fonts" / "ttf"


# -- the hand: jitter, slant, rotation, aspect --------------------------------------------------

def hand(style: list[np.ndarray], rng: np.random.Generator, wobble: float = 0.025) -> list[np.ndarray]:
    """One person's rendition of a style: each stroke moved a little, every point jittered, then
    the whole digit slanted (shear), turned and stretched, as hands do."""
    shear, turn = rng.uniform(-0.4, 0.3), np.radians(np.clip(rng.normal(0, 7), -15, 15))
    aspect = rng.uniform(0.7, 1.35)
    cos, sin = np.cos(turn), np.sin(turn)
    matrix = np.array([[cos, -sin], [sin, cos]]) @ np.array([[aspect, -shear], [0.0, 1.0]])
    drawn = []
    for stroke in style:
        points = stroke + rng.normal(0, wobble, size=2) + rng.normal(0, wobble / 3, size=stroke.shape)
        drawn.append((points - (0.3, 0.5)) @ matrix.T)
    return drawn


def fit(drawn: list[np.ndarray], size: float, margin: float) -> tuple[list[np.ndarray], float]:
    """Scale and move strokes so their longer side spans `size` pixels from `margin`; (strokes, scale)."""
    points = np.concatenate(drawn)
    low, high = points.min(axis=0), points.max(axis=0)
    scale = size / max(float((high - low).max()), 1e-6)
    return [(stroke - low) * scale + margin for stroke in drawn], scale


def draw_strokes(draw, drawn: list[np.ndarray], width: float, fill) -> None:
    """Polylines with round caps and joins (a disc at every point), like a canvas pen."""
    radius = width / 2
    for stroke in drawn:
        points = [tuple(point) for point in stroke]
        if len(points) > 1:
            draw.line(points, fill=fill, width=max(1, round(width)), joint="curve")
        for x, y in points:
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)


def stroke_mask(style: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A boolean (CANVAS, CANVAS) ink mask of one hand-drawn rendition of a style."""
    from PIL import Image, ImageDraw

    width_fraction = rng.uniform(0.1, 0.25)  # pen width / the digit's longer side
    inner = CANVAS * 0.7
    drawn, _ = fit(hand(style, rng), inner, (CANVAS - inner) / 2)
    image = Image.new("L", (CANVAS, CANVAS), 0)
    draw_strokes(ImageDraw.Draw(image), drawn, width_fraction * inner, 255)
    return np.asarray(image) > 127


def font_mask(font_file: Path, digit: str, rng: np.random.Generator) -> np.ndarray:
    """A boolean ink mask of `digit` printed in a font at a random size, weight and slant."""
    from PIL import Image, ImageDraw, ImageFont

    size = int(rng.integers(24, 60))
    font = ImageFont.truetype(str(font_file), size)
    image = Image.new("L", (CANVAS + 32, CANVAS + 32), 0)
    ImageDraw.Draw(image).text((image.width / 2, image.height / 2), digit, font=font, fill=255, anchor="mm",
                               stroke_width=int(rng.integers(0, 2 + size // 24)), stroke_fill=255)
    shear = rng.uniform(-0.2, 0.2)
    if abs(shear) > 0.05:  # a slanted print, as a skewed photo or a faux-italic shows it
        image = image.transform(image.size, Image.Transform.AFFINE, (1, shear, -shear * image.height / 2, 0, 1, 0),
                                resample=Image.Resampling.BILINEAR)
    return np.asarray(image) > 127


def reduce_masks(masks: list[np.ndarray], reduction: dict) -> np.ndarray:
    """Ink masks -> (N, side, side) float32 block counts, through the page's reduction (preprocess.reduce_ink)."""
    return np.stack([reduce_ink(mask, reduction) for mask in masks])


def training_digits(reduction: dict, seed: int, per_digit: int = STROKES_PER_DIGIT,
                    font_renders: int = FONT_RENDERS) -> tuple[np.ndarray, np.ndarray]:
    """Drawn (every style of strokes.STYLES) and printed (TRAIN_FONTS) digits, reduced: x (N, s, s), y (N,)."""
    rng = rng_for(seed, TRAIN_STREAM)
    fonts = font_dir()
    masks, labels = [], []
    for label, digit in enumerate(DIGITS):
        styles = list(strokes.STYLES[digit].values())
        for k in range(per_digit):
            masks.append(stroke_mask(styles[k % len(styles)], rng))
            labels.append(label)
        for name in TRAIN_FONTS:
            for _ in range(font_renders):
                masks.append(font_mask(fonts / name, digit, rng))
                labels.append(label)
    return reduce_masks(masks, reduction), np.asarray(labels, dtype=np.int64)
