"""Synthetic digits (training/synthetic.py, training/strokes.py) and the held-out set (training/heldout.py)."""
from __future__ import annotations

import io

import numpy as np
import pytest

from core.spec import from_dict
from training import heldout, strokes, synthetic
from training.spec import DIGITS_REDUCTION, digits_spec

SPEC = from_dict(digits_spec())


def test_held_out_fonts_and_styles_are_never_used_in_training():
    assert set(synthetic.TRAIN_FONTS).isdisjoint(synthetic.HELD_OUT_FONTS)
    assert strokes.style_names(strokes.STYLES).isdisjoint(strokes.style_names(strokes.HELD_OUT_STYLES))
    assert synthetic.TRAIN_STREAM not in (synthetic.HELD_OUT_STREAM, synthetic.HELD_OUT_STREAM + 1)
    # every digit has a training style, and the styles people were seen to draw differently are there
    assert set(strokes.STYLES) == set(synthetic.DIGITS)
    assert {"plain", "crossbar"} <= set(strokes.STYLES["7"])
    assert {"stem", "flag", "flag_base"} <= set(strokes.STYLES["1"])
    assert {"open", "closed"} <= set(strokes.STYLES["4"])


@pytest.mark.parametrize("name", synthetic.TRAIN_FONTS + synthetic.HELD_OUT_FONTS)
def test_every_font_prints_every_digit(name):
    rng = np.random.default_rng(0)
    path = synthetic.font_dir() / name
    assert path.exists(), path
    reduced = synthetic.reduce_masks([synthetic.font_mask(path, digit, rng) for digit in synthetic.DIGITS],
                                     DIGITS_REDUCTION)
    assert reduced.shape == (10, 8, 8) and (reduced.sum(axis=(1, 2)) > 20).all()
    assert len({image.tobytes() for image in reduced}) == 10  # ten different shapes, not ten boxes


def test_training_digits_are_balanced_counts_from_the_seed():
    x, y = synthetic.training_digits(DIGITS_REDUCTION, seed=0, per_digit=6, font_renders=1)
    per_digit = 6 + len(synthetic.TRAIN_FONTS)
    assert x.shape == (10 * per_digit, 8, 8) and x.dtype == np.float32
    np.testing.assert_array_equal(np.bincount(y), [per_digit] * 10)
    assert x.min() >= 0 and x.max() <= 16
    again, _ = synthetic.training_digits(DIGITS_REDUCTION, seed=0, per_digit=6, font_renders=1)
    np.testing.assert_array_equal(x, again)
    other, _ = synthetic.training_digits(DIGITS_REDUCTION, seed=1, per_digit=6, font_renders=1)
    assert not np.array_equal(x, other)


def test_a_plain_seven_and_a_crossed_seven_reduce_differently():
    rng = synthetic.rng_for(0, synthetic.TRAIN_STREAM)
    plain = synthetic.reduce_masks([synthetic.stroke_mask(strokes.STYLES["7"]["plain"], rng)], DIGITS_REDUCTION)[0]
    crossed = synthetic.reduce_masks([synthetic.stroke_mask(strokes.STYLES["7"]["crossbar"], rng)], DIGITS_REDUCTION)[0]
    assert plain[0].sum() > 0 and crossed[0].sum() > 0  # the top bar fills the first row
    assert crossed[3:6].sum() > plain[3:6].sum()  # the crossbar adds ink in the middle rows


def test_the_pad_picture_is_the_pages_canvas():
    from PIL import Image

    rng = synthetic.rng_for(0, synthetic.HELD_OUT_STREAM)
    image = Image.open(io.BytesIO(heldout.pad_picture(strokes.STYLES["7"]["plain"], rng)))
    assert image.size == (heldout.PAD, heldout.PAD) and image.mode == "RGBA"
    alpha = np.asarray(image.getchannel("A"))
    assert alpha[0, 0] == 0 and alpha.max() == 255
    assert 0 < np.mean((alpha > 0) & (alpha < 255)) < 0.05  # anti-aliased edges, as a canvas blends them
    # the stroke is the pad's pen wide: a column through the stem crosses about PEN inked pixels
    inked_rows = (alpha >= 128).sum(axis=0)
    assert heldout.PEN - 6 <= np.median(inked_rows[inked_rows > 0]) <= 4 * heldout.PEN


def test_held_out_cases_cover_every_digit_and_style():
    drawn = heldout.drawn(SPEC, seed=0, per_style=1)
    printed = heldout.printed(SPEC, seed=0, per_font=1)
    assert len(drawn) == len(strokes.style_names(strokes.STYLES) | strokes.style_names(strokes.HELD_OUT_STYLES))
    assert len(printed) == 10 * len(synthetic.HELD_OUT_FONTS)
    for cases in (drawn, printed):
        assert {case.label for case in cases} == set(range(10))
        assert all(case.values.shape == SPEC.item_shape and 0 <= case.values.min() <= case.values.max() <= 16
                   for case in cases)
    assert {case.style for case in printed} == {name.removesuffix(".ttf") for name in synthetic.HELD_OUT_FONTS}
