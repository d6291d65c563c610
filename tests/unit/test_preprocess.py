"""training/preprocess.py: the digits' ink-block reduction (from the spec's sizes) and the plain
resize of every other task (grey or RGB, any (H, W), onto the spec's range), one entry point."""
import io

import numpy as np
import pytest
from PIL import Image

from core.spec import Spec
from training import data
from training.preprocess import (
    ImageError,
    binarize,
    count_blocks,
    misnamed,
    picture_format,
    picture_to_input,
    reduce_ink,
    resize_area,
    scale_into_bitmap,
)
from training.spec import DIGITS_REDUCTION, RESIZE_REDUCTION, ModelConfig, derive_spec, digits_spec

DIGITS = Spec(digits_spec())
INK = DIGITS.reduction


def png_bytes(array: np.ndarray, mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array.astype(np.uint8), mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def dataset_bitmap(index: int = 0) -> np.ndarray:
    """A 32x32 bitmap whose 4x4 block counts are exactly dataset image `index` (ink packed per block)."""
    x = data.load_builtin().x
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
    counts = count_blocks(bitmap, INK["block_size"])
    assert counts.shape == (8, 8) and counts.dtype == np.float32
    assert counts[0, 0] == 16 and counts[1, 1] == 1 and counts.sum() == 17


def test_a_bitmap_that_fills_the_frame_reduces_to_its_own_counts():
    bitmap = dataset_bitmap(0)
    bitmap[0, :] = bitmap[-1, :] = True  # touch all four edges, so cropping changes nothing
    bitmap[:, 0] = bitmap[:, -1] = True
    np.testing.assert_array_equal(reduce_ink(bitmap, INK), count_blocks(bitmap, INK["block_size"]))


@pytest.mark.parametrize("factor", [2, 3, 9])
def test_scale_does_not_matter(factor):
    bitmap = dataset_bitmap(5)
    bitmap[0, :] = bitmap[-1, :] = bitmap[:, 0] = bitmap[:, -1] = True
    large = np.kron(bitmap, np.ones((factor, factor), bool))  # the same drawing, bigger
    np.testing.assert_array_equal(reduce_ink(large, INK), reduce_ink(bitmap, INK))


def test_position_and_margins_do_not_matter():
    stroke = np.zeros((40, 20), bool)
    stroke[:, 8:12] = True  # a tall "1"
    small_canvas = np.zeros((60, 60), bool)
    small_canvas[5:45, 3:23] = stroke
    big_canvas = np.zeros((300, 200), bool)
    big_canvas[200:240, 150:170] = stroke
    np.testing.assert_array_equal(reduce_ink(small_canvas, INK), reduce_ink(big_canvas, INK))


def test_aspect_ratio_is_kept_and_the_digit_centred():
    bar = np.ones((10, 40), bool)  # four times wider than tall
    bitmap = scale_into_bitmap(bar, INK["bitmap_size"])
    rows = np.flatnonzero(bitmap.any(axis=1))
    assert bitmap.all(axis=1).sum() == 8 and rows[0] == 12 and rows[-1] == 19


def test_dark_ink_light_ink_and_alpha_ink_agree():
    ink = np.zeros((64, 64), bool)
    ink[10:54, 28:36] = True
    ink[10:18, 20:36] = True
    expected = reduce_ink(ink, INK)
    dark_on_paper = np.where(ink, 20, 235)
    light_on_screen = np.where(ink, 250, 10)
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., 3] = np.where(ink, 255, 0)  # white strokes on a transparent canvas
    rgba[..., :3] = 255
    for picture in (png_bytes(dark_on_paper), png_bytes(light_on_screen), png_bytes(rgba, "RGBA")):
        np.testing.assert_array_equal(picture_to_input(picture, DIGITS), expected)


def test_jpeg_photos_are_read():
    ink = np.zeros((64, 64), bool)
    ink[8:56, 30:38] = True
    buffer = io.BytesIO()
    Image.fromarray(np.where(ink, 30, 220).astype(np.uint8)).convert("RGB").save(buffer, format="JPEG", quality=90)
    # JPEG blurs the edges a little; at this contrast the binarized digit is still the same.
    np.testing.assert_array_equal(picture_to_input(buffer.getvalue(), DIGITS), reduce_ink(ink, INK))


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"", "empty image"),
        (b"GIF89a not really", "unsupported picture format GIF: send PNG or JPEG"),
        (png_bytes(np.full((20, 20), 128)), "no contrast|almost no contrast"),
        (png_bytes(np.full((20, 20), 128))[:30], "not a readable PNG/JPEG"),
    ],
)
def test_pictures_without_a_digit_get_a_clear_error(payload, message):
    with pytest.raises(ImageError, match=message):
        picture_to_input(payload, DIGITS)


def test_blank_mask_and_huge_images_are_refused():
    with pytest.raises(ImageError, match="blank"):
        reduce_ink(np.zeros((10, 10), bool), INK)
    header_only = io.BytesIO()
    Image.new("1", (5000, 5000)).save(header_only, format="PNG")  # tiny file, 25 megapixels
    for spec in (DIGITS, task((12, 16, 3))):
        with pytest.raises(ImageError, match="too large: 5000x5000"):
            picture_to_input(header_only.getvalue(), spec)


def test_binarize_takes_the_minority_side_as_ink():
    grey = np.full((10, 10), 200)
    grey[2:5, 2:5] = 10
    assert binarize(grey, None, INK).sum() == 9
    assert binarize(255 - grey, None, INK).sum() == 9


def test_the_spec_sets_the_ink_block_sizes():
    """Bitmap and block sizes come from the spec: a 16-pixel bitmap in 2-pixel blocks gives 8x8 counts 0..4."""
    ink = np.zeros((40, 40), bool)
    ink[5:35, 5:35] = True  # a filled square fills the whole bitmap
    small = {**DIGITS_REDUCTION, "bitmap_size": 16, "block_size": 2}
    counts = reduce_ink(ink, small)
    assert counts.shape == (8, 8) and np.all(counts == 4)
    assert reduce_ink(ink, {**small, "bitmap_size": 12}).shape == (6, 6)
    assert np.all(reduce_ink(ink, DIGITS_REDUCTION) == 16)


# -- the plain resize --------------------------------------------------------------------------------

def task(shape, value_range=(0.0, 255.0)) -> Spec:
    return Spec(derive_spec(ModelConfig(), item_shape=shape, labels=("a", "b"), value_range=value_range,
                            model_name="pictures", reduction=RESIZE_REDUCTION))


def png_rgba(rgba: np.ndarray) -> bytes:
    return png_bytes(rgba, "RGBA")


@pytest.mark.parametrize("shape", [(12, 16), (12, 16, 1), (12, 16, 3), (9, 9, 3), (20, 7)])
def test_resize_gives_the_spec_item_shape(shape):
    rng = np.random.default_rng(0)
    picture = png_rgba(rng.integers(0, 256, (50, 70, 4)))
    values = picture_to_input(picture, task(shape))
    assert values.shape == shape and values.dtype == np.float32
    assert 0 <= values.min() and values.max() <= 255


def test_whole_blocks_average_exactly():
    """A picture made of 4x3 blocks of one colour each resizes back to those colours, bit for bit."""
    rng = np.random.default_rng(1)
    small = rng.integers(0, 256, (12, 16, 3)).astype(np.uint8)
    big = np.kron(small, np.ones((4, 3, 1), np.uint8))
    rgba = np.dstack([big, np.full(big.shape[:2], 255, np.uint8)])
    np.testing.assert_array_equal(picture_to_input(png_rgba(rgba), task((12, 16, 3))), small.astype(np.float32))


def test_area_average_weights_partial_pixels():
    """3 pixels onto 2: each output takes one whole pixel and half of the middle one."""
    sums, area = resize_area(np.array([[[0], [30], [90]]]), 1, 2)
    # In units of 1/(2*3) of the source: output 0 = 2*0 + 1*30, output 1 = 1*30 + 2*90, area 3 pixels.
    assert sums.ravel().tolist() == [30, 210] and area == 3
    means = sums.ravel() / (area / 2)  # each output covers 1.5 source pixels
    assert means.tolist() == [20.0, 140.0]


def test_upscaling_repeats_pixels():
    sums, area = resize_area(np.array([[[10], [20]], [[30], [40]]]), 4, 4)
    means = sums[..., 0] * 16 / (area * 4 * 4) / 1
    np.testing.assert_array_equal(means, np.kron([[10, 20], [30, 40]], np.ones((2, 2))))


def test_values_are_mapped_onto_the_spec_range():
    white = png_bytes(np.full((10, 10), 255))
    black = png_bytes(np.zeros((10, 10)))
    for low, high in ((0.0, 1.0), (-1.0, 1.0), (0.0, 16.0), (-3.5, 17.25)):
        spec = task((4, 4), (low, high))
        assert np.all(picture_to_input(white, spec) == np.float32(high))
        assert np.all(picture_to_input(black, spec) == np.float32(low))
    grey = picture_to_input(png_bytes(np.full((10, 10), 51)), task((4, 4), (0.0, 1.0)))
    assert np.all(grey == np.float32(0.2))


def test_grey_uses_pillow_weights_and_colour_keeps_channels():
    rgb = np.zeros((6, 6, 3), np.uint8)
    rgb[..., 0] = 200  # pure red
    picture = png_bytes(rgb, "RGB")
    grey = picture_to_input(picture, task((3, 3)))
    assert np.all(grey == np.asarray(Image.fromarray(rgb).convert("L"))[0, 0])  # 60, Pillow's own grey
    colour = picture_to_input(picture, task((3, 3, 3)))
    assert colour[..., 0].min() == 200 and colour[..., 1:].max() == 0


def test_transparency_is_composited_onto_white():
    rgba = np.zeros((4, 4, 4), np.uint8)  # black, fully transparent -> white
    assert np.all(picture_to_input(png_rgba(rgba), task((2, 2, 3))) == 255)
    rgba[..., 3] = 128  # black at half opacity -> (255 * 127 + 127) // 255 = 127
    assert np.all(picture_to_input(png_rgba(rgba), task((2, 2))) == 127)


def test_jpeg_and_palette_pictures_are_read():
    rng = np.random.default_rng(3)
    photo = Image.fromarray(rng.integers(0, 256, (40, 30, 3)).astype(np.uint8))
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=90)
    assert picture_to_input(buffer.getvalue(), task((8, 6, 3))).shape == (8, 6, 3)
    buffer = io.BytesIO()
    photo.convert("P").save(buffer, format="PNG")
    assert picture_to_input(buffer.getvalue(), task((8, 6))).shape == (8, 6)


def test_exif_orientation_is_applied_like_a_browser():
    tall = np.zeros((20, 10), np.uint8)
    tall[:10] = 255  # white on top
    image = Image.fromarray(tall)
    exif = image.getexif()
    exif[0x0112] = 6  # stored sideways: "rotate 90 degrees clockwise to view"
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", exif=exif, quality=95)
    shown = picture_to_input(buffer.getvalue(), task((10, 20)))  # the viewed picture is 10 high, 20 wide
    assert shown.shape == (10, 20) and shown[:, :8].mean() < 30 and shown[:, 12:].mean() > 225


@pytest.mark.parametrize("payload, message", [
    (b"", "empty image"),
    (b"\x89PNG\r\n\x1a\n broken", "not a readable PNG/JPEG"),
])
def test_resize_errors_are_clear(payload, message):
    with pytest.raises(ImageError, match=message):
        picture_to_input(payload, task((12, 16, 3)))


def test_an_unknown_reduction_or_a_mismatched_spec_is_named():
    spec = task((12, 16))
    with pytest.raises(ImageError, match="reduction kind 'sharpen' is unknown"):
        picture_to_input(png_bytes(np.zeros((4, 4))), Spec({**spec.data, "reduction": {"kind": "sharpen"}}))
    wrong = Spec({**DIGITS.data, "input": {**DIGITS.data["input"], "shape": [-1, 12, 12]}})
    with pytest.raises(ImageError, match="makes 8x8 values, but its input is 12x12"):
        picture_to_input(png_bytes(np.where(np.eye(20), 0, 255)), wrong)


def test_bands_of_columns_give_the_same_sums(monkeypatch):
    """Large photos are resized a band of columns at a time; the sums are the same, bit for bit."""
    from training import preprocess

    rng = np.random.default_rng(4)
    picture = png_rgba(rng.integers(0, 256, (37, 53, 4)))
    whole = picture_to_input(picture, task((7, 9, 3)))
    monkeypatch.setattr(preprocess, "CHUNK_PIXELS", 37 * 5)  # bands of 5 columns
    np.testing.assert_array_equal(picture_to_input(picture, task((7, 9, 3))), whole)


def picture_as(fmt: str) -> bytes:
    """A readable digit (a dark bar on white) saved in picture format `fmt`."""
    buffer = io.BytesIO()
    picture = np.full((24, 24), 255, np.uint8)
    picture[4:20, 10:14] = 0
    Image.fromarray(picture).convert("RGB").save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "WEBP", "TIFF"])
def test_other_picture_formats_are_named_and_refused(fmt):
    """Pillow could decode these, but every picture path reads PNG and JPEG only, and says so by name."""
    assert picture_format(picture_as(fmt)) == fmt
    with pytest.raises(ImageError, match=f"^unsupported picture format {fmt}: send PNG or JPEG$"):
        picture_to_input(picture_as(fmt), DIGITS)


@pytest.mark.parametrize("body", [b'{"instances": []}', b"  [1, 2]", b"\x00\x01garbage\xff\xfe", b"", b"seven"])
def test_json_and_garbage_are_no_picture_format(body):
    assert picture_format(body) is None


def test_a_picture_whose_content_is_not_its_name_is_named():
    assert misnamed("seven.jpg", picture_as("GIF")) == "its content is GIF, not the JPEG its name says"
    assert misnamed("seven.JPG", picture_as("PNG")) == "its content is PNG, not the JPEG its name says"
    assert misnamed("seven.png", b"hello") == "its content is no picture format, not the PNG its name says"
    assert misnamed("seven.jpeg", picture_as("JPEG")) is None
    assert misnamed("seven.webp", picture_as("WEBP")) is None  # a name that claims nothing we read
