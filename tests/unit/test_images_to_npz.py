"""training/images_to_npz.py: a folder of pictures per class -> the .npz training reads, with the
servers' own resize, and clear errors for a folder that cannot become a data set."""

import numpy as np
import pytest
from PIL import Image

from core.spec import Spec
from training import data, images_to_npz
from training.preprocess import picture_to_input
from training.spec import RESIZE_REDUCTION, ModelConfig, derive_spec


def save(path, array, fmt="PNG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8)).save(path, format=fmt)


@pytest.fixture
def folder(tmp_path):
    """Three classes, pictures of several sizes and modes, and a file that is no picture."""
    rng = np.random.default_rng(0)
    root = tmp_path / "My Pets"
    for name, colour in (("dog", (200, 120, 40)), ("cat", (90, 90, 90)), ("bird", (40, 120, 220))):
        for i in range(3):
            h, w = int(rng.integers(20, 60)), int(rng.integers(20, 60))
            save(root / name / f"{i}.png", np.full((h, w, 3), colour) + rng.integers(0, 20, (h, w, 3)))
        save(root / name / "photo.JPG", np.full((30, 40, 3), colour), fmt="JPEG")
        save(root / name / "alpha.png", np.dstack([np.full((10, 10, 3), colour), np.full((10, 10), 128)]))
    (root / "cat" / "notes.txt").write_text("not a picture")
    return root


def test_a_folder_becomes_an_npz_training_reads(folder, tmp_path, capsys):
    out = tmp_path / "mine.npz"
    images_to_npz.main([str(folder), "--size", "12x16", "-o", str(out)])
    printed = capsys.readouterr().out
    assert "skipped 1 file(s)" in printed and "notes.txt" in printed
    assert "3 classes: bird (5), cat (5), dog (5)" in printed
    dataset = data.load_npz(out)
    assert dataset.x.shape == (15, 12, 16, 3)
    assert dataset.labels == ("bird", "cat", "dog")  # sub-folder names, sorted
    assert dataset.name == "my_pets" and dataset.value_range == (0.0, 255.0)
    # Every picture is the servers' own resize of it, rounded to uint8.
    spec = Spec(derive_spec(ModelConfig(), item_shape=(12, 16, 3), labels=dataset.labels, value_range=(0.0, 255.0),
                            model_name="my_pets", reduction=RESIZE_REDUCTION))
    with np.load(out) as archive:
        assert archive["x"].dtype == np.uint8
        first = np.round(picture_to_input((folder / "bird" / "0.png").read_bytes(), spec))
        np.testing.assert_array_equal(archive["x"][0], first.astype(np.uint8))
        assert archive["y"].tolist() == [0] * 5 + [1] * 5 + [2] * 5


def test_grey_and_a_name(folder, tmp_path):
    out = tmp_path / "grey.npz"
    images_to_npz.main([str(folder), "--size", "8x8", "--grey", "--name", "pets", "-o", str(out)])
    dataset = data.load_npz(out)
    assert dataset.x.shape == (15, 8, 8) and dataset.name == "pets"


@pytest.mark.parametrize("size, message", [("32", "size must be HxW"), ("2x32", "each side must be 4..256"),
                                           ("32x300", "each side must be 4..256")])
def test_a_bad_size_is_refused(folder, tmp_path, size, message, capsys):
    with pytest.raises(SystemExit):
        images_to_npz.main([str(folder), "--size", size, "-o", str(tmp_path / "x.npz")])
    assert message in capsys.readouterr().err


def run_error(argv) -> str:
    with pytest.raises(SystemExit) as stopped:
        images_to_npz.main(argv)
    return str(stopped.value)


def test_bad_folders_get_clear_errors(tmp_path):
    out = ["--size", "8x8", "-o", str(tmp_path / "x.npz")]
    assert "not a folder" in run_error([str(tmp_path / "missing"), *out])
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no class folders" in run_error([str(empty), *out])
    save(tmp_path / "one" / "only" / "a.png", np.zeros((8, 8)))
    assert "only one class (only)" in run_error([str(tmp_path / "one"), *out])
    save(tmp_path / "two" / "a" / "a.png", np.zeros((8, 8)))
    (tmp_path / "two" / "b").mkdir()
    (tmp_path / "two" / "b" / "readme.md").write_text("pictures to come")
    assert "class 'b' holds no pictures" in run_error([str(tmp_path / "two"), *out])
    broken = tmp_path / "two" / "b" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n and then nothing")
    message = run_error([str(tmp_path / "two"), *out])
    assert str(broken) in message and "not a readable PNG/JPEG image" in message
    assert "name 'Bad Name'" in run_error([str(tmp_path / "two"), *out, "--name", "Bad Name"])
    assert not (tmp_path / "x.npz").exists()  # nothing is written when the folder is refused


def test_links_out_of_the_folder_are_skipped_and_named(folder, tmp_path, capsys):
    """A class folder linked to / (a PermissionError traceback once) or to a folder of pictures elsewhere,
    and a picture linked from elsewhere: skipped, each named with where it leads; links inside are read."""
    elsewhere = tmp_path / "elsewhere"
    save(elsewhere / "fish" / "0.png", np.zeros((20, 20, 3)))
    (folder / "root").symlink_to("/")
    (folder / "fish").symlink_to(elsewhere / "fish")
    (folder / "cat" / "stolen.png").symlink_to(elsewhere / "fish" / "0.png")
    (folder / "dog" / "again.png").symlink_to(folder / "dog" / "0.png")  # inside: read
    out = tmp_path / "mine.npz"
    images_to_npz.main([str(folder), "--size", "12x16", "-o", str(out)])
    printed = capsys.readouterr().out
    assert (f"warning: skipped 3 link(s) that lead out of the folder: {folder / 'fish'} -> {elsewhere / 'fish'}, "
            f"{folder / 'root'} -> /, {folder / 'cat' / 'stolen.png'} -> {elsewhere / 'fish' / '0.png'}") in printed
    assert "3 classes: bird (5), cat (5), dog (6)" in printed


def test_a_gif_named_jpg_is_refused_and_a_png_named_jpg_is_named(folder, tmp_path, capsys):
    out = ["--size", "12x16", "-o", str(tmp_path / "x.npz")]
    save(folder / "cat" / "moved.jpg", np.zeros((20, 20, 3)), fmt="PNG")
    images_to_npz.main([str(folder), *out])
    assert (f"warning: 1 picture(s) whose content is not what their name says: {folder / 'cat' / 'moved.jpg'} "
            "(its content is PNG, not the JPEG its name says)") in capsys.readouterr().out
    save(folder / "cat" / "moving.jpg", np.zeros((20, 20, 3)), fmt="GIF")
    assert run_error([str(folder), *out]) == (f"error: {folder / 'cat' / 'moving.jpg'}: unsupported picture format "
                                              "GIF: send PNG or JPEG (its content is GIF, not the JPEG its name says)")


def test_pictures_far_from_the_size_are_named(folder, tmp_path, capsys):
    """A 3x3 icon and a 10x1000 strip beside photos of about 12x16: taken, and named with their sizes."""
    save(folder / "bird" / "icon.png", np.zeros((3, 3, 3)))
    save(folder / "dog" / "strip.png", np.zeros((10, 1000, 3)))
    images_to_npz.main([str(folder), "--size", "12x16", "-o", str(tmp_path / "x.npz")])
    printed = capsys.readouterr().out
    assert (f"warning: 2 picture(s) far from 12x16 (enlarged more than 4x or stretched more than 4x: their input is "
            f"mostly guesswork): {folder / 'bird' / 'icon.png'} (3x3), "
            f"{folder / 'dog' / 'strip.png'} (10x1000)") in printed
