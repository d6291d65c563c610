"""Augmentation (training/augment.py) and the training flag that turns it on and off."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from core.spec import from_dict
from training import augment, data, distributed, synthetic, train
from training.preprocess import picture_to_input, reduce_ink
from training.spec import DIGITS_REDUCTION, digits_spec

SPEC = from_dict(digits_spec())


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    found = load_digits()
    x, y = found.images[:120].astype(np.float32), found.target[:120].astype(np.int64)
    return data.Split(x, y, np.arange(120))


def test_warped_digits_are_counts_of_the_spec_range_with_their_labels(digits):
    warped = augment.warp_ink_counts(digits.x, SPEC.reduction, np.random.default_rng(3))
    assert warped.shape == digits.x.shape and warped.dtype == np.float32
    assert warped.min() >= SPEC.value_min and warped.max() <= SPEC.value_max
    np.testing.assert_array_equal(warped, np.round(warped))  # ink counts: whole pixels per block
    changed = np.abs(warped - digits.x).sum(axis=(1, 2))
    assert np.mean(changed > 0) > 0.9  # a warp, not a copy
    # the page's reduction fills the bitmap along the longer side: ink in the first and last row or column
    for image in warped:
        rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
        assert (rows[0], rows[-1]) == (0, 7) or (cols[0], cols[-1]) == (0, 7)


def test_training_examples_are_deterministic_by_seed(digits):
    first = augment.training_examples(digits, SPEC, augment=True, seed=5)
    augment._memo.clear()
    again = augment.training_examples(digits, SPEC, augment=True, seed=5)
    np.testing.assert_array_equal(first.x, again.x)
    np.testing.assert_array_equal(first.y, again.y)
    other = augment.training_examples(digits, SPEC, augment=True, seed=6)
    assert first.x.shape == other.x.shape and not np.array_equal(first.x, other.x)


def test_training_examples_keep_labels_and_add_synthetic_digits(digits):
    examples = augment.training_examples(digits, SPEC, augment=True, seed=0)
    n = len(digits)
    copies = 1 + augment.SHIFTED_COPIES + augment.WARPED_COPIES
    np.testing.assert_array_equal(examples.x[:n], digits.x)  # the split's own examples, untouched
    np.testing.assert_array_equal(examples.y[:copies * n], np.tile(digits.y, copies))  # every copy keeps its label
    np.testing.assert_array_equal(examples.index[:copies * n], np.tile(digits.index, copies))
    synthetic_part = examples.index == -1
    assert synthetic_part.sum() == len(examples) - copies * n > 0
    assert set(examples.y[synthetic_part]) == set(range(10))
    assert examples.x.min() >= 0 and examples.x.max() <= 16 and examples.x.shape[1:] == (8, 8)


def test_without_augmentation_the_examples_are_the_one_pixel_shifts(digits):
    plain = augment.training_examples(digits, SPEC, augment=False, seed=0)
    np.testing.assert_array_equal(plain.x, data.augment_with_shifts(digits).x)


def test_other_tasks_get_warped_images_in_their_range_and_no_synthetic_digits():
    spec = from_dict({**digits_spec(), "input": {**digits_spec()["input"], "shape": [-1, 12, 16, 3], "layout": "NHWC",
                                                  "min": 0.0, "max": 1.0},
                      "reduction": {"kind": "resize", "steps": []}})
    rng = np.random.default_rng(0)
    part = data.Split(rng.random((10, 12, 16, 3)).astype(np.float32), np.arange(10) % 3, np.arange(10))
    examples = augment.training_examples(part, spec, augment=True, seed=0)
    copies = 1 + augment.SHIFTED_COPIES + augment.WARPED_COPIES
    assert examples.x.shape == (10 * copies, 12, 16, 3) and (examples.index >= 0).all()
    assert examples.x.min() >= 0.0 and examples.x.max() <= 1.0
    np.testing.assert_array_equal(examples.y, np.tile(part.y, copies))


def test_an_identity_warp_keeps_the_image():
    rng = np.random.default_rng(1)
    images = rng.random((3, 6, 9)).astype(np.float32)
    rows, cols = augment._grid(6, 9, np.tile(np.eye(2), (3, 1, 1)), np.zeros((3, 2)), 1.0)
    np.testing.assert_allclose(augment._sample(images[..., None], rows + 2.5, cols + 4.0)[..., 0], images, atol=1e-6)
    # a shift of one pixel to the right reads each pixel from its left neighbour
    shifted = augment._grid(6, 9, np.tile(np.eye(2), (3, 1, 1)), np.tile([[1.0, 0.0]], (3, 1)), 1.0)
    moved = augment._sample(images[..., None], shifted[0] + 2.5, shifted[1] + 4.0)[..., 0]
    np.testing.assert_allclose(moved[:, :, 1:], images[:, :, :-1], atol=1e-6)


def test_the_reduction_is_the_one_a_picture_on_the_page_gets():
    """A synthetic mask reduced for training equals picture_to_input of the same drawing as a canvas PNG."""
    from PIL import Image

    rng = synthetic.rng_for(0, synthetic.TRAIN_STREAM)
    for style in (synthetic.strokes.STYLES["7"]["plain"], synthetic.strokes.STYLES["4"]["open"]):
        mask = synthetic.stroke_mask(style, rng)
        rgba = np.zeros((*mask.shape, 4), np.uint8)
        rgba[mask] = (29, 36, 48, 255)  # the pad's ink on a transparent canvas
        buffer = io.BytesIO()
        Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
        np.testing.assert_array_equal(synthetic.reduce_masks([mask], DIGITS_REDUCTION)[0],
                                      picture_to_input(buffer.getvalue(), SPEC))
        np.testing.assert_array_equal(reduce_ink(mask, DIGITS_REDUCTION), picture_to_input(buffer.getvalue(), SPEC))


def test_the_flag_is_on_for_the_digits_and_off_for_your_data():
    assert train.parse_args([]).augment is True
    assert train.parse_args(["--no-augment"]).augment is False
    assert train.parse_args(["--data", "mine.npz"]).augment is False
    assert train.parse_args(["--data", "mine.npz", "--augment"]).augment is True
    assert train.hyperparameters(train.parse_args([]))["augment"] is True
    assert train.hyperparameters(train.parse_args(["--no-augment"]))["augment"] is False


def test_distributed_workers_get_the_resolved_flag(tmp_path):
    for given, expected in (([], "--augment"), (["--no-augment"], "--no-augment"),
                            (["--data", "mine.npz"], "--no-augment")):
        args = distributed.parse_args(given)
        args.root = Path(tmp_path)
        flags = distributed.passthrough(args)
        assert expected in flags and ({"--augment", "--no-augment"} - {expected}).isdisjoint(flags)
        worker = distributed.worker_parser("").parse_args([*flags, "--stage", str(tmp_path)])
        assert train.hyperparameters(worker)["augment"] is (expected == "--augment")
