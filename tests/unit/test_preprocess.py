import io

import numpy as np
import pytest
from PIL import Image

from training import data
from training.preprocess import ImageError, binarize, count_blocks, image_to_input, reduce_ink, scale_into_bitmap


def png_bytes(array: np.ndarray, mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array.astype(np.uint8), mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def dataset_bitmap(index: int = 0) -> np.ndarray:
    """A 32x32 bitmap whose 4x4 block counts are exactly dataset image `index` (ink packed per block)."""
    x, _ = data.load_builtin()
    bitmap = np.zeros((32, 32), bool)
    for (row, col), count in np.ndenumerate(x[index].astype(int)):
        block = np.zeros(16, bool)
        block[:count] = True
        bitmap[4 * row : 4 * row + 4, 4 * col : 4 * col + 4] = block.reshape(4, 4)
    return bitmap


def test_counting_blocks_gives_values_0_to_16():
    bitmap = np.zeros((32, 32), bool)
    bitmap[:4, :4] = True  # one full block
    bitmap[4, 4] = True  # one pixel of the next block on the diagonal
    counts = count_blocks(bitmap)
    assert counts.shape == (8, 8) and counts.dtype == np.float32
    assert counts[0, 0] == 16 and counts[1, 1] == 1 and counts.sum() == 17


def test_a_bitmap_that_fills_the_frame_reduces_to_its_own_counts():
    bitmap = dataset_bitmap(0)
    bitmap[0, :] = bitmap[-1, :] = True  # touch all four edges, so cropping changes nothing
    bitmap[:, 0] = bitmap[:, -1] = True
    np.testing.assert_array_equal(reduce_ink(bitmap), count_blocks(bitmap))


@pytest.mark.parametrize("factor", [2, 3, 9])
def test_scale_does_not_matter(factor):
    bitmap = dataset_bitmap(5)
    bitmap[0, :] = bitmap[-1, :] = bitmap[:, 0] = bitmap[:, -1] = True
    large = np.kron(bitmap, np.ones((factor, factor), bool))  # the same drawing, bigger
    np.testing.assert_array_equal(reduce_ink(large), reduce_ink(bitmap))


def test_position_and_margins_do_not_matter():
    stroke = np.zeros((40, 20), bool)
    stroke[:, 8:12] = True  # a tall "1"
    small_canvas = np.zeros((60, 60), bool)
    small_canvas[5:45, 3:23] = stroke
    big_canvas = np.zeros((300, 200), bool)
    big_canvas[200:240, 150:170] = stroke
    np.testing.assert_array_equal(reduce_ink(small_canvas), reduce_ink(big_canvas))


def test_aspect_ratio_is_kept_and_the_digit_centred():
    bar = np.ones((10, 40), bool)  # four times wider than tall
    bitmap = scale_into_bitmap(bar)
    rows = np.flatnonzero(bitmap.any(axis=1))
    assert bitmap.all(axis=1).sum() == 8 and rows[0] == 12 and rows[-1] == 19


def test_dark_ink_light_ink_and_alpha_ink_agree():
    ink = np.zeros((64, 64), bool)
    ink[10:54, 28:36] = True
    ink[10:18, 20:36] = True
    expected = reduce_ink(ink)
    dark_on_paper = np.where(ink, 20, 235)
    light_on_screen = np.where(ink, 250, 10)
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., 3] = np.where(ink, 255, 0)  # white strokes on a transparent canvas
    rgba[..., :3] = 255
    for picture in (png_bytes(dark_on_paper), png_bytes(light_on_screen), png_bytes(rgba, "RGBA")):
        np.testing.assert_array_equal(image_to_input(picture), expected)


def test_jpeg_photos_are_read():
    ink = np.zeros((64, 64), bool)
    ink[8:56, 30:38] = True
    buffer = io.BytesIO()
    Image.fromarray(np.where(ink, 30, 220).astype(np.uint8)).convert("RGB").save(buffer, format="JPEG", quality=90)
    # JPEG blurs the edges a little; at this contrast the binarized digit is still the same.
    np.testing.assert_array_equal(image_to_input(buffer.getvalue()), reduce_ink(ink))


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"", "empty image"),
        (b"GIF89a not really", "not a readable PNG/JPEG"),
        (png_bytes(np.full((20, 20), 128)), "no contrast|almost no contrast"),
        (png_bytes(np.full((20, 20), 128))[:30], "not a readable PNG/JPEG"),
    ],
)
def test_pictures_without_a_digit_get_a_clear_error(payload, message):
    with pytest.raises(ImageError, match=message):
        image_to_input(payload)


def test_blank_mask_and_huge_images_are_refused():
    with pytest.raises(ImageError, match="blank"):
        reduce_ink(np.zeros((10, 10), bool))
    header_only = io.BytesIO()
    Image.new("1", (5000, 5000)).save(header_only, format="PNG")  # tiny file, 25 megapixels
    with pytest.raises(ImageError, match="too large"):
        image_to_input(header_only.getvalue())


def test_binarize_takes_the_minority_side_as_ink():
    grey = np.full((10, 10), 200)
    grey[2:5, 2:5] = 10
    assert binarize(grey).sum() == 9
    assert binarize(255 - grey).sum() == 9
