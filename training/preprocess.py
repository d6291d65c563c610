"""A picture (PNG/JPEG bytes) -> one model input, the way the spec says: the one entry point of
every picture path (TorchServe handler, edge runners, TF Serving REST, the page's JS twin).

    from training.preprocess import picture_to_input
    values = picture_to_input(png_bytes, spec)     # float32, shape spec.item_shape

    python -m training.preprocess picture.png [--artifacts DIR]   # print the input of a picture

The spec's "reduction" section picks one of two reductions:

"ink_blocks" (the digits: how scikit-learn's dataset itself was made, every size from the spec)
    1. binarize        pixels on the ink side of the midpoint between darkest and lightest (or the
                       alpha channel, for a drawing on a transparent canvas)
    2. crop_to_ink     the bounding box of the inked pixels
    3. scale           into a bitmap_size square, keeping the aspect ratio, centred (nearest
                       neighbour, in integer arithmetic so the JavaScript twin gives identical bits)
    4. count           inked pixels per block_size square -> values 0..block_size^2

"resize" (every other task)
    1. decode          any PNG/JPEG mode to RGBA, EXIF orientation applied (as browsers do)
    2. composite       onto white: c' = (c*a + 255*(255 - a) + 127) // 255, in integers
    3. to_channels     grey (1 channel: Pillow's "L" weights, (19595 R + 38470 G + 7471 B + 2^15) >> 16)
                       or RGB (3 channels), as the spec's item shape says
    4. resize_area     to (H, W) by the area average (box filter): output pixel (i, j) is the mean
                       of the source over its rectangle, partial pixels weighted by their overlap.
                       Computed as exact integer sums (prefix sums), so the twin matches bit for bit
    5. map             0..255 linearly onto [value_min, value_max]: lo + (hi - lo) * (sum / (area * 255))
                       in float64, then rounded once to float32

Both reductions are defined once here and once in JavaScript (web/tfjs/page/preprocess.js, checked
against vectors written from this module by web/tfjs/fixtures.py). It needs numpy and Pillow only,
so the edge runtime and the TorchServe archive ship it.
"""
from __future__ import annotations

import argparse
import io
import struct
from pathlib import Path

import numpy as np

MAX_PIXELS = 16_000_000  # a 4000x4000 photo; larger pictures are refused before decoding
# All the pictures of one request together (a server reads each header first): two such photos, or the
# batch limit's 512 pictures of 250x250. Per picture alone, 512 photos would be 8 billion pixels to decode.
MAX_REQUEST_PIXELS = 2 * MAX_PIXELS


class ImageError(ValueError):
    """Raised when a picture cannot become a model input; the message names the problem."""


# -- the digits' ink-block reduction --------------------------------------------------------------

def scale_into_bitmap(ink: np.ndarray, size: int) -> np.ndarray:
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


def count_blocks(bitmap: np.ndarray, block: int) -> np.ndarray:
    """(S, S) bitmap -> (S/block, S/block) float32 counts of inked pixels per block, 0..block^2."""
    size = bitmap.shape[0] // block
    return bitmap.reshape(size, block, size, block).sum(axis=(1, 3)).astype(np.float32)


def reduce_ink(ink: np.ndarray, reduction: dict) -> np.ndarray:
    """Boolean ink mask of any size -> block counts (bitmap_size/block_size square) float32."""
    ink = np.asarray(ink, dtype=bool)
    if ink.ndim != 2:
        raise ImageError(f"an ink mask must be 2-D, got shape {ink.shape}")
    return count_blocks(scale_into_bitmap(ink, int(reduction["bitmap_size"])), int(reduction["block_size"]))


def binarize(grey: np.ndarray, alpha: np.ndarray | None, reduction: dict) -> np.ndarray:
    """Ink mask from a grey image (0..255); the background is the majority side of the midpoint.

    A picture with a varying alpha channel (a canvas drawing on a transparent background) uses the
    alpha as ink instead, whatever the colour of the strokes.
    """
    threshold = reduction["ink_alpha_threshold"]
    if alpha is not None and alpha.min() < threshold <= alpha.max():
        return alpha >= threshold
    grey = np.asarray(grey, dtype=np.float32)
    darkest, lightest = float(grey.min()), float(grey.max())
    if lightest - darkest < reduction["min_contrast"]:
        raise ImageError(f"no digit found: the picture has almost no contrast ({lightest - darkest:.0f} grey levels)")
    midpoint = (darkest + lightest) / 2.0
    dark = grey < midpoint
    # Ink is the minority: dark strokes on paper, or light strokes on a dark screen.
    return dark if dark.mean() <= 0.5 else ~dark


def ink_blocks(image, reduction: dict) -> np.ndarray:
    """A decoded Pillow image -> its block counts (the digits' reduction)."""
    alpha = np.asarray(image.getchannel("A")) if "A" in image.getbands() else None
    grey = np.asarray(image.convert("L"))
    return reduce_ink(binarize(grey, alpha, reduction), reduction)


# -- the plain resize of every other task ---------------------------------------------------------

def composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 -> (H, W, 3) int64 RGB over a white background, in integers."""
    rgb = rgba[..., :3].astype(np.int64)
    if rgba[..., 3].min() == 255:  # opaque (every JPEG, most PNGs): the formula leaves it as it is
        return rgb
    alpha = rgba[..., 3:].astype(np.int64)
    return (rgb * alpha + 255 * (255 - alpha) + 127) // 255


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) integers 0..255 -> (H, W, 1) grey, with Pillow's "L" weights in integers."""
    return ((rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16)[..., None]


def _area_sums(pixels: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Resample one axis from S to `size` pixels by overlap-weighted sums (exact integers).

    In units where a source pixel is `size` long and an output pixel S long, output j covers
    [j*S, (j+1)*S); its sum is F((j+1)*S) - F(j*S) with F(x) the integral of the source up to x,
    F(x) = size * (sum of pixels before x // size) + (x % size) * pixel[x // size]. The weights of
    one output add up to S.
    """
    pixels = np.moveaxis(pixels, axis, 0)
    source = pixels.shape[0]
    padded = np.concatenate([pixels, np.zeros_like(pixels[:1])])  # pixel[S] is read with weight 0 at x = S*size
    before = np.concatenate([np.zeros_like(pixels[:1]), np.cumsum(pixels, axis=0)])
    edges = np.arange(size + 1, dtype=np.int64) * source
    whole, part = edges // size, edges % size
    part = part.reshape(-1, *([1] * (pixels.ndim - 1)))
    integral = size * before[whole] + part * padded[whole]
    return np.moveaxis(integral[1:] - integral[:-1], 0, axis)


CHUNK_PIXELS = 1 << 20  # source pixels resized per step: a 16-megapixel photo never sits in int64 whole


def resize_area(pixels: np.ndarray, height: int, width: int, channels: int | None = None) -> tuple[np.ndarray, int]:
    """(h, w, C) integer pixels -> ((height, width, C) int64 sums, the area each sum covers).

    With `channels` (1 or 3), `pixels` is (h, w, 4) RGBA uint8, composited onto white and turned
    grey or RGB a band of columns at a time (the height pass treats each column alone).
    """
    h, w = pixels.shape[:2]
    step = max(1, CHUNK_PIXELS // h)
    bands = []
    for left in range(0, w, step):
        band = pixels[:, left:left + step]
        if channels is not None:
            rgb = composite_on_white(band)
            band = to_grey(rgb) if channels == 1 else rgb
        bands.append(_area_sums(band.astype(np.int64), height, 0))
    return _area_sums(np.concatenate(bands, axis=1), width, 1), h * w


def resize(image, spec) -> np.ndarray:
    """A decoded Pillow image -> spec.item_shape float32 values in the spec's range (the plain resize)."""
    from PIL import ImageOps

    image = ImageOps.exif_transpose(image)  # a phone photo the right way up, as a browser shows it
    channels = spec.channels
    if channels not in (1, 3):
        raise ImageError(f"the spec's images have {channels} channels; pictures can become 1 (grey) or 3 (RGB)")
    sums, area = resize_area(np.asarray(image.convert("RGBA")), spec.height, spec.width, channels)
    low, high = spec.value_min, spec.value_max
    values = (low + (high - low) * (sums / (area * 255))).astype(np.float32)
    return values.reshape(spec.item_shape)


# -- the entry point -------------------------------------------------------------------------------

# What every picture path reads. Pillow knows many more formats, but the page's JavaScript twin, the
# fixtures and every README promise these two, and each extra decoder is more parser to attack.
PICTURE_FORMATS = ("PNG", "JPEG")
SUFFIX_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}  # what a file's name says it holds


def picture_format(data: bytes) -> str | None:
    """The picture format Pillow recognizes in the first bytes ("PNG", "GIF", ...), or None.

    Only Pillow's own signature checks run (no parser): cheap enough to tell a picture from JSON.
    """
    from PIL import Image

    Image.init()
    prefix = bytes(data[:16])  # what Image.open hands each format's check
    for name, (_, accept) in Image.OPEN.items():
        try:
            if accept is not None and accept(prefix):
                return name
        except (SyntaxError, IndexError, TypeError, struct.error):  # a prefix too short for its check, as Image.open
            continue
    return None


def misnamed(name: str, data: bytes) -> str | None:
    """Words for a picture file whose content is not what its suffix says (None when it matches)."""
    claimed = SUFFIX_FORMATS.get(Path(name).suffix.lower())
    found = picture_format(data)
    if claimed is None or found == claimed:
        return None
    return f"its content is {found or 'no picture format'}, not the {claimed} its name says"


def decode(data: bytes):
    """PNG/JPEG bytes -> a loaded Pillow image; ImageError for empty, unreadable, other formats or huge pictures."""
    return load(open_picture(data))


def open_picture(data: bytes):
    """PNG/JPEG bytes -> a Pillow image whose header alone is read (size known, nothing decoded); ImageError
    as `decode`. `load` decodes it."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageError("empty image: no bytes received")
    found = picture_format(data)
    if found is not None and found not in PICTURE_FORMATS:
        raise ImageError(f"unsupported picture format {found}: send PNG or JPEG")
    try:
        image = Image.open(io.BytesIO(data), formats=PICTURE_FORMATS)  # reads the header only
    except UnidentifiedImageError:  # its text names the BytesIO object (a heap address), not the picture
        raise ImageError("not a readable PNG/JPEG image (no PNG or JPEG header Pillow can read)") from None
    except (Image.DecompressionBombError, OSError, ValueError, SyntaxError) as error:
        raise ImageError(f"not a readable PNG/JPEG image ({error})") from error
    if image.width * image.height > MAX_PIXELS:  # checked before decoding: no decompression bombs
        raise ImageError(f"image too large: {image.width}x{image.height} pixels (at most {MAX_PIXELS:,})")
    return image


def load(image):
    """An image `open_picture` returned, decoded; ImageError when its data is broken."""
    from PIL import Image

    try:
        image.load()
    except (Image.DecompressionBombError, OSError, ValueError, SyntaxError) as error:
        raise ImageError(f"not a readable PNG/JPEG image ({error})") from error
    return image


def _as_spec(spec):
    from core.spec import Spec

    return Spec(spec) if isinstance(spec, dict) else spec


def picture_to_input(data: bytes, spec) -> np.ndarray:
    """PNG/JPEG bytes of one picture -> float32 array of shape spec.item_shape, in the spec's range.

    `spec` is a core.spec.Spec (or the dict spec.json holds). ImageError names what is wrong.
    """
    return image_to_input(decode(data), spec)


def image_to_input(image, spec) -> np.ndarray:
    """A picture `decode` returned -> float32 array of shape spec.item_shape (picture_to_input's second half)."""
    spec = _as_spec(spec)
    reduction = spec.reduction
    kind = reduction.get("kind")
    if kind == "ink_blocks":
        values = ink_blocks(image, reduction)
        if values.size != int(np.prod(spec.item_shape)):
            raise ImageError(f"the spec's ink_blocks reduction makes {values.shape[0]}x{values.shape[1]} values, "
                             f"but its input is {spec.describe_item()}")
        return values.reshape(spec.item_shape)
    if kind == "resize":
        return resize(image, spec)
    raise ImageError(f"the spec's reduction kind {kind!r} is unknown (expected 'ink_blocks' or 'resize')")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image", type=Path, help="PNG or JPEG of one picture")
    parser.add_argument("--artifacts", type=Path, help="artifacts folder whose spec.json to use "
                        "(default: $DIGITS_ARTIFACTS or ./artifacts)")
    args = parser.parse_args(argv)
    from core import spec as core_spec

    try:
        task = core_spec.load(args.artifacts)
        values = picture_to_input(args.image.read_bytes(), task)
    except (OSError, ValueError) as error:
        raise SystemExit(f"error: {error}") from None
    np.set_printoptions(precision=4, suppress=True, linewidth=160)
    print(f"{args.image} -> {task.describe_item()} input, values in {task.value_range()}:")
    print(values)


if __name__ == "__main__":
    main()
