"""Reduce a drawing or photo of one digit to the model's 8x8 input, the way the dataset was made.

scikit-learn's digits come from 32x32 bitmaps of handwritten digits, divided into 4x4 blocks whose
inked pixels were counted (0..16). This module reproduces that for any picture:

    1. binarize        pixels on the ink side of the midpoint between darkest and lightest
    2. crop_to_ink     the bounding box of the inked pixels
    3. scale           into a 32x32 bitmap, keeping the aspect ratio, centred (nearest neighbour,
                       in integer arithmetic so the JavaScript twin gives identical bits)
    4. count           inked pixels per 4x4 block -> (8, 8) float32 values 0..16

It needs numpy only (Pillow to decode PNG/JPEG bytes), so the edge runtime, the TorchServe handler
and the tests share it; the browser demo re-implements steps 2-4 and is checked against test
vectors written from here.

    python -m training.preprocess drawing.png     # print the 8x8 input of a picture
"""
from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np

from training.spec import DIGITS_REDUCTION

BITMAP_SIZE, BLOCK_SIZE = DIGITS_REDUCTION["bitmap_size"], DIGITS_REDUCTION["block_size"]
INK_ALPHA_THRESHOLD, MIN_CONTRAST = DIGITS_REDUCTION["ink_alpha_threshold"], DIGITS_REDUCTION["min_contrast"]

MAX_PIXELS = 16_000_000  # a 4000x4000 photo; larger pictures are refused before decoding


class ImageError(ValueError):
    """Raised when a picture cannot be reduced to a digit; the message names the problem."""


def scale_into_bitmap(ink: np.ndarray, size: int = BITMAP_SIZE) -> np.ndarray:
    """Crop a boolean ink mask (H, W) to its ink and scale it into a centred (size, size) bitmap."""
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        raise ImageError("no ink found: the picture is blank")
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    height, width = crop.shape
    longest = max(height, width)
    # The longer side fills the bitmap; the other keeps the aspect ratio (at least one pixel).
    out_h = max(1, (height * size + longest // 2) // longest)
    out_w = max(1, (width * size + longest // 2) // longest)
    # Nearest neighbour: target pixel i samples source row floor((i + 0.5) * height / out_h).
    src_rows = ((2 * np.arange(out_h) + 1) * height) // (2 * out_h)
    src_cols = ((2 * np.arange(out_w) + 1) * width) // (2 * out_w)
    bitmap = np.zeros((size, size), dtype=bool)
    top, left = (size - out_h) // 2, (size - out_w) // 2
    bitmap[top : top + out_h, left : left + out_w] = crop[np.ix_(src_rows, src_cols)]
    return bitmap


def count_blocks(bitmap: np.ndarray, block: int = BLOCK_SIZE) -> np.ndarray:
    """(32, 32) bitmap -> (8, 8) float32 counts of inked pixels per block, 0..16."""
    size = bitmap.shape[0] // block
    return bitmap.reshape(size, block, size, block).sum(axis=(1, 3)).astype(np.float32)


def reduce_ink(ink: np.ndarray) -> np.ndarray:
    """Boolean ink mask of any size -> the model input (8, 8) float32, values 0..16."""
    ink = np.asarray(ink, dtype=bool)
    if ink.ndim != 2:
        raise ImageError(f"an ink mask must be 2-D, got shape {ink.shape}")
    return count_blocks(scale_into_bitmap(ink))


def binarize(grey: np.ndarray, alpha: np.ndarray | None = None) -> np.ndarray:
    """Ink mask from a grey image (0..255); the background is the majority side of the midpoint.

    A picture with a varying alpha channel (a canvas drawing on a transparent background) uses the
    alpha as ink instead, whatever the colour of the strokes.
    """
    if alpha is not None and alpha.min() < INK_ALPHA_THRESHOLD <= alpha.max():
        return alpha >= INK_ALPHA_THRESHOLD
    grey = np.asarray(grey, dtype=np.float32)
    darkest, lightest = float(grey.min()), float(grey.max())
    if lightest - darkest < MIN_CONTRAST:
        raise ImageError(f"no digit found: the picture has almost no contrast ({lightest - darkest:.0f} grey levels)")
    threshold = (darkest + lightest) / 2.0
    dark = grey < threshold
    # Ink is the minority: dark strokes on paper, or light strokes on a dark screen.
    return dark if dark.mean() <= 0.5 else ~dark


def image_to_input(data: bytes) -> np.ndarray:
    """PNG/JPEG bytes of one digit -> (8, 8) float32 input, values 0..16."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageError("empty image: no bytes received")
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only
        if image.width * image.height > MAX_PIXELS:  # checked before decoding: no decompression bombs
            raise ImageError(f"image too large: {image.width}x{image.height} pixels (at most {MAX_PIXELS:,})")
        image.load()
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as error:
        if isinstance(error, ImageError):
            raise
        raise ImageError(f"not a readable PNG/JPEG image ({error})") from error
    alpha = np.asarray(image.getchannel("A")) if "A" in image.getbands() else None
    grey = np.asarray(image.convert("L"))
    return reduce_ink(binarize(grey, alpha))


def picture_to_input(data: bytes, spec) -> np.ndarray:
    """PNG/JPEG bytes -> one input of the spec's item shape."""
    return image_to_input(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image", type=Path, help="PNG or JPEG of one digit")
    args = parser.parse_args()
    values = image_to_input(args.image.read_bytes())
    for row in values.astype(int):
        print(" ".join(f"{v:2d}" for v in row))


if __name__ == "__main__":
    main()
