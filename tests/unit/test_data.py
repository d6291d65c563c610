import numpy as np
import pytest

from training import data
from training.spec import DIGITS_LABELS, DIGITS_RANGE

DIGITS_SHAPE = (8, 8)  # the built-in data set's images
Y10 = np.arange(10) % 2  # ten examples of two classes


@pytest.fixture(scope="module")
def digits():
    return data.load_builtin()


def test_builtin_digits_meet_the_contract(digits):
    x, y = digits.x, digits.y
    assert x.shape == (1797, *DIGITS_SHAPE) and x.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert (x.min(), x.max()) == DIGITS_RANGE == digits.value_range
    assert set(np.unique(y)) == set(range(len(DIGITS_LABELS))) and digits.labels == DIGITS_LABELS


def test_split_is_deterministic_disjoint_complete_and_stratified(digits):
    y = digits.y
    first, again, other = data.split_indices(y, seed=0), data.split_indices(y, seed=0), data.split_indices(y, seed=1)
    for name in data.SPLITS:
        np.testing.assert_array_equal(first[name], again[name])
    assert not np.array_equal(first["test"], other["test"])
    everything = np.concatenate([first[name] for name in data.SPLITS])
    assert len(everything) == len(y) and len(np.unique(everything)) == len(y)
    assert len(first["test"]) == 360 and len(first["val"]) == 180
    # Stratified: every class's share of the test split is within a point of its overall share.
    overall = np.bincount(y) / len(y)
    in_test = np.bincount(y[first["test"]]) / len(first["test"])
    assert np.max(np.abs(overall - in_test)) < 0.01


def test_saved_split_loads_back_identically(artifacts, digits):
    _, splits = data.prepare(seed=3, data=None, out=artifacts / "data" / "split.npz")
    loaded = data.load_split()  # resolves through DIGITS_ARTIFACTS
    for name in data.SPLITS:
        np.testing.assert_array_equal(loaded[name].x, splits[name].x)
        np.testing.assert_array_equal(loaded[name].y, splits[name].y)
        np.testing.assert_array_equal(loaded[name].x, digits.x[loaded[name].index])


def test_missing_split_names_the_fix(artifacts):
    with pytest.raises(FileNotFoundError, match="make train"):
        data.load_split()


def _write(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"x": np.zeros((0, 8, 8)), "y": np.zeros(0, int)}, "empty dataset"),
        ({"x": np.zeros((10, 8, 8, 2)), "y": Y10}, r"x must have shape \(N, H, W\) or \(N, H, W, C\) with C = 1 or 3"),
        ({"x": np.zeros((10, 64)), "y": Y10}, r"x must have shape \(N, H, W\) or \(N, H, W, C\)"),
        ({"x": np.zeros((10, 3, 8)), "y": Y10}, "4 to 256 pixels high and wide, got 3x8"),
        ({"x": np.zeros((10, 8, 300)), "y": Y10}, "4 to 256 pixels high and wide, got 8x300"),
        ({"x": np.zeros((10, 8, 8)), "y": np.zeros((10, 1), int)}, r"y must have shape \(N,\)"),
        ({"x": np.zeros((10, 8, 8)), "y": np.zeros(9, int)}, "10 images but y has 9 labels"),
        ({"x": np.full((10, 8, 8), np.nan), "y": np.zeros(10, int)}, "640 NaN or infinite"),
        ({"x": np.full((10, 8, 8), 700.0), "y": Y10}, "every value of x is 700: nothing to learn from"),
        ({"x": np.zeros((10, 8, 8)), "y": np.arange(10) % 3, "labels": np.array(["a", "b"])},
         r"class ids must lie in 0..1 \(2 labels\)"),
        ({"x": np.zeros((10, 8, 8)), "y": np.arange(10) - 1}, "class ids must be 0 or more, got -1"),
        ({"x": np.zeros((10, 8, 8)), "y": np.full(10, 0.5)}, "integer class ids"),
        ({"x": np.zeros((10, 8, 8)), "y": np.zeros(10, int)}, "1 classes; between 2 and 1000"),
        ({"x": np.zeros((10, 8, 8)), "y": Y10 * 2}, r"no examples of class\(es\) \['1'\]"),
        ({"x": np.zeros((10, 8, 8)), "y": Y10, "labels": np.array(["a", "a"])}, "non-empty and distinct"),
        ({"x": np.zeros((10, 8, 8)), "y": Y10, "labels": np.array([1, 2])}, "class names .strings."),
        ({"x": np.zeros((10, 8, 8)), "y": Y10, "name": np.array("My Model!")}, "name 'My Model!' must be lower-case"),
        ({"x": np.full((10, 8, 8), "a"), "y": np.zeros(10, int)}, "must be numeric"),
        ({"images": np.zeros((10, 8, 8)), "y": np.zeros(10, int)}, r"missing array\(s\) \['x'\]"),
    ],
)
def test_bad_user_data_gets_a_clear_error(tmp_path, arrays, message):
    path = _write(tmp_path / "mine.npz", **arrays)
    with pytest.raises(data.DataError, match=message):
        data.load_npz(path)


def test_unreadable_or_absent_files_are_named(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip archive")
    with pytest.raises(data.DataError, match="not a readable .npz"):
        data.load_npz(garbage)
    with pytest.raises(data.DataError, match="no such file"):
        data.load_npz(tmp_path / "absent.npz")


def test_valid_user_data_is_accepted_and_cast(tmp_path, digits):
    x, y = digits.x, digits.y
    path = _write(tmp_path / "my-digits.npz", x=x[:100].astype(np.uint8), y=y[:100].astype(np.int32))
    loaded = data.load_npz(path)
    assert loaded.x.dtype == np.float32 and loaded.y.dtype == np.int64
    np.testing.assert_array_equal(loaded.x, x[:100])
    assert loaded.value_range == (0.0, 255.0)  # uint8: the dtype's range, not the values seen
    assert loaded.name == "my_digits" and loaded.labels == tuple(str(i) for i in range(int(y[:100].max()) + 1))


def test_colour_data_with_names_and_a_given_range(tmp_path):
    x = np.random.default_rng(0).random((20, 12, 16, 3)).astype(np.float32)
    path = _write(tmp_path / "mine.npz", x=x, y=np.arange(20) % 4, labels=np.array(["w", "x", "y", "z"]),
                  name=np.array("colours"))
    loaded = data.load_npz(path)
    assert loaded.item_shape == (12, 16, 3) and loaded.labels == ("w", "x", "y", "z") and loaded.name == "colours"
    assert loaded.value_range == (0.0, 1.0)
    assert data.load_npz(path, value_range=(-2.0, 2.0)).value_range == (-2.0, 2.0)
    with pytest.raises(data.DataError, match=r"must lie in \[0, 0.5\]"):
        data.load_npz(path, value_range=(0.0, 0.5))


@pytest.mark.parametrize("x, what", [
    (np.zeros((10, 8, 8), np.uint8), "every value is 0"),  # uint8: range 0..255, so the range check passes it
    (np.tile(np.eye(8, dtype=np.uint8) * 200, (10, 1, 1)), "the same picture"),
])
def test_identical_images_are_refused_before_training(tmp_path, x, what):
    """Constant images once trained to chance accuracy with exit 0."""
    path = _write(tmp_path / "mine.npz", x=x, y=Y10)
    with pytest.raises(data.DataError, match=rf"all 10 images are identical \({what}\): nothing to learn from"):
        data.load_npz(path)


@pytest.mark.parametrize("file_name, name", [("my data.npz", "my_data"), ("My-Data (2).npz", "my_data_2"),
                                             ("2024 scans.npz", "m_2024_scans"), ("---.npz", "data")])
def test_the_default_name_from_a_file_name_is_cleaned_like_images_to_npz_does(tmp_path, digits, file_name, name):
    """A file "my data.npz" without a name of its own was refused over a model name the user never gave."""
    path = _write(tmp_path / file_name, x=digits.x[:20].astype(np.uint8), y=digits.y[:20] % 2)
    assert data.load_npz(path).name == name


def test_shift_augmentation_moves_ink_by_one_pixel():
    x = np.zeros((1, 8, 8), np.float32)
    x[0, 0, 0] = x[0, 7, 7] = 16.0
    x[0, 3, 4] = 5.0
    part = data.Split(x, np.array([4]), np.array([42]))
    augmented = data.augment_with_shifts(part)
    assert augmented.x.shape == (5, 8, 8)
    np.testing.assert_array_equal(augmented.y, [4] * 5)
    np.testing.assert_array_equal(augmented.index, [42] * 5)
    np.testing.assert_array_equal(augmented.x[0], x[0])
    # Each copy moves the interior pixel one step, and ink pushed off an edge is dropped, not wrapped.
    moved = {tuple(np.argwhere(copy == 5.0)[0]) for copy in augmented.x[1:]}
    assert moved == {(2, 4), (4, 4), (3, 3), (3, 5)}
    for copy in augmented.x[1:]:
        assert copy.sum() <= x.sum() and np.count_nonzero(copy == 16.0) == 1
