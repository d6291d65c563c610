"""A small made-up colour data set, to try `DATA=` without data of your own (and for the tests).

    python -m training.example_data --out artifacts/bars.npz        # 600 images (12, 16, 3) uint8, 5 classes
    make deploy-all DATA=artifacts/bars.npz                          # every target answers with its labels

Each image is noise with one bright bar or block whose place says its class ("top", "bottom",
"left", "right", "centre"); its colour is random, so the network must learn where, not which
colour. Non-square, colour, uint8 0..255 and named classes: everything the digits are not.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

LABELS = ("top", "bottom", "left", "right", "centre")


def make(count: int = 600, height: int = 12, width: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    """x (count, height, width, 3) uint8, y (count,) class ids, labels (5,), name: ready for np.savez."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 70, (count, height, width, 3)).astype(np.uint8)  # background noise
    y = np.arange(count) % len(LABELS)
    for image, label in zip(x, y, strict=False):
        colour = rng.integers(150, 256, 3)
        colour[rng.integers(0, 3)] = 255  # always bright in one channel at least
        dy, dx = rng.integers(-1, 2, 2)  # the place jitters a pixel either way
        rows, cols = {
            0: (slice(1 + dy + 1, 4 + dy + 1), slice(2, width - 2)),
            1: (slice(height - 4 + dy - 1, height - 1 + dy - 1), slice(2, width - 2)),
            2: (slice(2, height - 2), slice(1 + dx + 1, 4 + dx + 1)),
            3: (slice(2, height - 2), slice(width - 4 + dx - 1, width - 1 + dx - 1)),
            4: (slice(height // 2 - 2 + dy, height // 2 + 2 + dy), slice(width // 2 - 2 + dx, width // 2 + 2 + dx)),
        }[int(label)]
        image[rows, cols] = colour
    return {"x": x, "y": y, "labels": np.array(LABELS), "name": np.array("bars")}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="the .npz to write")
    parser.add_argument("--count", type=int, default=600, help="images (default: 600)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    args = parser.parse_args(argv)
    arrays = make(args.count, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out}: x {arrays['x'].shape} {arrays['x'].dtype}, labels {list(LABELS)}")


if __name__ == "__main__":
    main()
