"""The data: scikit-learn's bundled digits (or your own .npz), validated, described and split once.

The split is deterministic and stratified by seed, and it is saved to `artifacts/data/split.npz`
(indices and arrays), so both frameworks train on the same examples and every later stage
(parity checks, servers, edge runners, the browser) evaluates on the identical test set without
needing scikit-learn.

    python -m training.data --seed 0          # write the split and print its sizes
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import contract, paths
from core.spec import Spec
from training.spec import (
    DIGITS_LABELS,
    DIGITS_NAME,
    DIGITS_RANGE,
    MAX_CLASSES,
    MAX_SIDE,
    MIN_CLASSES,
    MIN_SIDE,
    NAME_PATTERN,
    name_from,
)

SPLITS = ("train", "val", "test")


class DataError(ValueError):
    """Raised when a dataset does not meet the input contract; the message names the problem."""


@dataclass(frozen=True)
class Split:
    """Arrays for one split: x (N, *item_shape) float32 raw values, y (N,) int64, and the source indices."""

    x: np.ndarray
    y: np.ndarray
    index: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Dataset:
    """A validated data set and what the spec learns from it.

    x: (N, H, W) or (N, H, W, C) float32 raw values; y: (N,) int64 class ids 0..K-1; labels: K names;
    value_range: (min, max) the network maps onto 0..1; name: the model name.
    """

    x: np.ndarray
    y: np.ndarray
    labels: tuple[str, ...]
    value_range: tuple[float, float]
    name: str

    @property
    def item_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])


def validate_images(x: np.ndarray, spec: Spec, source: str = "input") -> np.ndarray:
    """Check a batch of images against a spec's contract (no batch-size limit); float32 (N, *item_shape)."""
    try:
        return contract.check_batch(x, spec, source, max_batch=None)
    except contract.ContractError as error:
        raise DataError(str(error)) from None


def check_shape(x: np.ndarray, source: str) -> None:
    """x must be (N, H, W) or (N, H, W, C) with C in {1, 3} and H, W in MIN_SIDE..MAX_SIDE."""
    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[3] not in (1, 3)):
        raise DataError(f"{source}: x must have shape (N, H, W) or (N, H, W, C) with C = 1 or 3, got {x.shape}")
    height, width = x.shape[1:3]
    if not (MIN_SIDE <= height <= MAX_SIDE and MIN_SIDE <= width <= MAX_SIDE):
        raise DataError(f"{source}: images must be {MIN_SIDE} to {MAX_SIDE} pixels high and wide, got {height}x{width}")


def value_range_of(x: np.ndarray) -> tuple[float, float]:
    """The range the network maps onto 0..1, from the data: its dtype's range for 8-bit images, else
    the smallest familiar range holding every value ([0, 1], [-1, 1], [0, 255]), else the data's own."""
    if x.dtype == np.uint8:
        return 0.0, 255.0
    low, high = float(x.min()), float(x.max())
    for familiar in ((0.0, 1.0), (-1.0, 1.0), (0.0, 255.0)):
        if familiar[0] <= low and high <= familiar[1]:
            return familiar
    if high == low:
        raise DataError(f"every value of x is {low:g}: nothing to learn from")
    return low, high


def validate(x, y, source: str = "data", labels=None, name: str = DIGITS_NAME,
             value_range: tuple[float, float] | None = None) -> Dataset:
    """Check images, class ids, names and range; return them as a Dataset (float32 x, int64 y)."""
    x, y = np.asarray(x), np.asarray(y)
    if x.size == 0 or y.size == 0:
        raise DataError(f"{source}: empty dataset (x has shape {x.shape}, y has shape {y.shape})")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{source}: x must be numeric, got dtype {x.dtype}")
    check_shape(x, source)
    if not np.all(np.isfinite(x)):
        raise DataError(f"{source}: x contains {int(np.sum(~np.isfinite(x)))} NaN or infinite values")
    if y.ndim != 1:
        raise DataError(f"{source}: y must have shape (N,), got {y.shape}")
    if len(x) != len(y):
        raise DataError(f"{source}: x has {len(x)} images but y has {len(y)} labels")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.issubdtype(y.dtype, np.floating) or not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise DataError(f"{source}: y must hold integer class ids, got dtype {y.dtype}")
    labels = check_labels(labels, y, source)
    if not NAME_PATTERN.match(name):
        raise DataError(f"{source}: name {name!r} must be lower-case letters, digits and _ (starting with a letter, "
                        "at most 40): it names files, URLs and the served model")
    low, high = value_range if value_range is not None else value_range_of(x)
    if not high > low:
        raise DataError(f"{source}: the value range must have max > min, got [{low:g}, {high:g}]")
    if x.min() < low or x.max() > high:
        raise DataError(f"{source}: x values must lie in [{low:g}, {high:g}], got [{x.min():g}, {x.max():g}]")
    check_learnable(x, source)
    return Dataset(x.astype(np.float32), y.astype(np.int64), labels, (float(low), float(high)), name)


def check_learnable(x: np.ndarray, source: str) -> None:
    """Refuse images that are all the same: training would end at chance accuracy and exit 0."""
    if not np.all(x == x[0]):
        return
    what = f"every value is {x.flat[0]:g}" if np.all(x == x.flat[0]) else "the same picture"
    raise DataError(f"{source}: all {len(x)} images are identical ({what}): nothing to learn from; "
                    "check the pictures or the array written to x")


def check_labels(labels, y: np.ndarray, source: str) -> tuple[str, ...]:
    """Class names (default "0".."K-1", K = max(y) + 1), checked against the class ids in y."""
    if y.min() < 0:
        raise DataError(f"{source}: class ids must be 0 or more, got {int(y.min())}")
    if labels is None:
        labels = [str(i) for i in range(int(y.max()) + 1)]
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "UO":
        raise DataError(f"{source}: labels must be a 1-D array of class names (strings), got shape {labels.shape} "
                        f"dtype {labels.dtype}")
    labels = tuple(str(label) for label in labels)
    if not MIN_CLASSES <= len(labels) <= MAX_CLASSES:
        raise DataError(f"{source}: {len(labels)} classes; between {MIN_CLASSES} and {MAX_CLASSES} are supported")
    if any(not label.strip() for label in labels) or len(set(labels)) != len(labels):
        raise DataError(f"{source}: class names must be non-empty and distinct, got {list(labels)[:20]}")
    if y.max() >= len(labels):
        raise DataError(f"{source}: class ids must lie in 0..{len(labels) - 1} ({len(labels)} labels), "
                        f"got {int(y.min())}..{int(y.max())}")
    missing = sorted(set(range(len(labels))) - set(np.unique(y).tolist()))
    if missing:
        raise DataError(f"{source}: no examples of class(es) {[labels[i] for i in missing[:10]]}")
    return labels


def load_builtin() -> Dataset:
    """scikit-learn's 1,797 bundled 8x8 digits (no download): x (1797, 8, 8) values 0..16."""
    from sklearn.datasets import load_digits  # imported here: the edge runtime has no scikit-learn

    digits = load_digits()
    return validate(digits.images, digits.target, "sklearn load_digits", labels=DIGITS_LABELS, name=DIGITS_NAME,
                    value_range=DIGITS_RANGE)


def load_npz(path: Path, value_range: tuple[float, float] | None = None) -> Dataset:
    """Your own data: an .npz with `x` (N, H, W[, C]), `y` (N,) class ids, optional `labels` (K,), `name`."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = {"x", "y"} - set(archive.files)
            if missing:
                raise DataError(f"{path}: missing array(s) {sorted(missing)}; found {sorted(archive.files)}")
            x, y = archive["x"], archive["y"]
            labels = archive["labels"] if "labels" in archive.files else None
            # Without a name of its own, the file's name, cleaned as images_to_npz cleans a folder's
            # ("my data" -> my_data).
            name = str(archive["name"]) if "name" in archive.files else name_from(path.stem, fallback="data")
    except DataError:
        raise
    except Exception as error:  # not a zip, truncated, pickled objects...
        raise DataError(f"{path}: not a readable .npz file ({error})") from error
    return validate(x, y, str(path), labels=labels, name=name, value_range=value_range)


def split_indices(y: np.ndarray, seed: int, val_fraction: float = 0.1, test_fraction: float = 0.2) -> dict:
    """Stratified train/val/test indices, the same for a given seed on every machine."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    try:
        rest, test = train_test_split(index, test_size=test_fraction, random_state=seed, stratify=y)
        val_share = val_fraction / (1.0 - test_fraction)
        train, val = train_test_split(rest, test_size=val_share, random_state=seed, stratify=y[rest])
    except ValueError as error:  # e.g. a class with a single example cannot be stratified
        raise DataError(f"cannot make a stratified split: {error}") from error
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def make_split(x: np.ndarray, y: np.ndarray, seed: int) -> dict[str, Split]:
    return {name: Split(x[idx], y[idx], idx) for name, idx in split_indices(y, seed).items()}


def save_split(splits: dict[str, Split], path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"seed": np.array(seed)}
    for name, part in splits.items():
        arrays.update({f"x_{name}": part.x, f"y_{name}": part.y, f"index_{name}": part.index})
    np.savez_compressed(path, **arrays)


def load_split(path: Path | None = None) -> dict[str, Split]:
    """The saved split, as written by training (numpy only: usable in every environment)."""
    path = Path(path or paths.split_path())
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `make train` first")
    with np.load(path) as archive:
        return {name: Split(archive[f"x_{name}"], archive[f"y_{name}"], archive[f"index_{name}"]) for name in SPLITS}


def prepare(seed: int, data: Path | None, out: Path,
            value_range: tuple[float, float] | None = None) -> tuple[Dataset, dict[str, Split]]:
    """Load (built-in or your .npz), validate, split and save; return the data set and its split."""
    dataset = load_npz(data, value_range) if data else load_builtin()
    splits = make_split(dataset.x, dataset.y, seed)
    save_split(splits, out, seed)
    return dataset, splits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="split seed (default: 0)")
    parser.add_argument("--data", type=Path, help=".npz with x (N, H, W[, C]), y (N,) class ids, optional labels, name")
    args = parser.parse_args()
    out = paths.split_path()
    _, splits = prepare(args.seed, args.data, out)
    sizes = ", ".join(f"{name} {len(part)}" for name, part in splits.items())
    print(f"wrote {out}: {sizes}")


if __name__ == "__main__":
    main()


def augment_with_shifts(part: Split) -> Split:
    """The split plus four copies shifted by one pixel (up, down, left, right; zeros fill in).

    Handwriting is never centred to the pixel; seeing each digit a pixel off teaches both
    networks that, from one numpy implementation shared by the two training loops.
    """
    shifted = [part.x]
    for axis, step in ((1, -1), (1, 1), (2, -1), (2, 1)):
        moved = np.roll(part.x, step, axis=axis)
        edge = 0 if step == 1 else -1  # the row/column that wrapped around
        if axis == 1:
            moved[:, edge, :] = 0
        else:
            moved[:, :, edge] = 0
        shifted.append(moved)
    count = len(shifted)
    return Split(np.concatenate(shifted), np.tile(part.y, count), np.tile(part.index, count))
