"""The data: scikit-learn's bundled digits (or your own .npz), validated and split once.

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

from training import paths
from training.spec import IMAGE_SIZE, NUM_CLASSES, VALUE_MAX, VALUE_MIN

SPLITS = ("train", "val", "test")


class DataError(ValueError):
    """Raised when a dataset does not meet the input contract; the message names the problem."""


@dataclass(frozen=True)
class Split:
    """Arrays for one split: x (N, 8, 8) float32 raw 0..16, y (N,) int64, and the source indices."""

    x: np.ndarray
    y: np.ndarray
    index: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


def validate_images(x: np.ndarray, source: str = "input") -> np.ndarray:
    """Check a batch of images against the input contract; return it as float32 (N, 8, 8).

    The checks every consumer of the contract shares: training data, edge runners, servers.
    """
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"{source}: x must have shape (N, {IMAGE_SIZE}, {IMAGE_SIZE}), got {x.shape}")
    if len(x) == 0:
        raise DataError(f"{source}: empty batch (x has shape {x.shape})")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{source}: x must be numeric, got dtype {x.dtype}")
    if not np.all(np.isfinite(x)):
        raise DataError(f"{source}: x contains {int(np.sum(~np.isfinite(x)))} NaN or infinite values")
    if x.min() < VALUE_MIN or x.max() > VALUE_MAX:
        raise DataError(
            f"{source}: x values must lie in [{VALUE_MIN:g}, {VALUE_MAX:g}] (raw ink counts), "
            f"got [{x.min():g}, {x.max():g}]"
        )
    return x.astype(np.float32)


def validate(x: np.ndarray, y: np.ndarray, source: str = "data") -> tuple[np.ndarray, np.ndarray]:
    """Check images and labels against the contract; return them as float32 / int64."""
    x = np.asarray(x)
    y = np.asarray(y)
    if x.size == 0 or y.size == 0:
        raise DataError(f"{source}: empty dataset (x has shape {x.shape}, y has shape {y.shape})")
    x = validate_images(x, source)
    if y.ndim != 1:
        raise DataError(f"{source}: y must have shape (N,), got {y.shape}")
    if len(x) != len(y):
        raise DataError(f"{source}: x has {len(x)} images but y has {len(y)} labels")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.issubdtype(y.dtype, np.floating) or not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise DataError(f"{source}: y must hold integer labels, got dtype {y.dtype}")
    if y.min() < 0 or y.max() >= NUM_CLASSES:
        raise DataError(f"{source}: labels must lie in 0..{NUM_CLASSES - 1}, got {int(y.min())}..{int(y.max())}")
    return x, y.astype(np.int64)


def load_builtin() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 bundled 8x8 digits (no download): x (1797, 8, 8) float32, y (1797,)."""
    from sklearn.datasets import load_digits  # imported here: the edge runtime has no scikit-learn

    digits = load_digits()
    return validate(digits.images, digits.target, "sklearn load_digits")


def load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Your own data: an .npz with `x` (N, 8, 8) raw values 0..16 and `y` (N,) labels 0..9."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = {"x", "y"} - set(archive.files)
            if missing:
                raise DataError(f"{path}: missing array(s) {sorted(missing)}; found {sorted(archive.files)}")
            x, y = archive["x"], archive["y"]
    except DataError:
        raise
    except Exception as error:  # not a zip, truncated, pickled objects...
        raise DataError(f"{path}: not a readable .npz file ({error})") from error
    return validate(x, y, str(path))


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


def prepare(seed: int, data: Path | None, out: Path) -> dict[str, Split]:
    """Load (built-in or your .npz), validate, split and save; return the split."""
    x, y = load_npz(data) if data else load_builtin()
    splits = make_split(x, y, seed)
    save_split(splits, out, seed)
    return splits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="split seed (default: 0)")
    parser.add_argument("--data", type=Path, help=".npz with x (N, 8, 8) values 0..16 and y (N,) labels 0..9")
    args = parser.parse_args()
    out = paths.split_path()
    splits = prepare(args.seed, args.data, out)
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
