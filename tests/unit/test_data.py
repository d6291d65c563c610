import numpy as np
import pytest

from training import data


@pytest.fixture(scope="module")
def digits():
    return data.load_builtin()


def test_builtin_digits_meet_the_contract(digits):
    x, y = digits
    assert x.shape == (1797, 8, 8) and x.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 16.0
    assert set(np.unique(y)) == set(range(10))


def test_split_is_deterministic_disjoint_complete_and_stratified(digits):
    _, y = digits
    first, again, other = data.split_indices(y, seed=0), data.split_indices(y, seed=0), data.split_indices(y, seed=1)
    for name in data.SPLITS:
        np.testing.assert_array_equal(first[name], again[name])
    assert not np.array_equal(first["test"], other["test"])
    everything = np.concatenate([first[name] for name in data.SPLITS])
    assert len(everything) == len(y) and len(np.unique(everything)) == len(y)
    assert len(first["test"]) == 360 and len(first["val"]) == 180
    # Stratified: every class's share of the test split is within a point of its overall share.
    overall = np.bincount(y, minlength=10) / len(y)
    in_test = np.bincount(y[first["test"]], minlength=10) / len(first["test"])
    assert np.max(np.abs(overall - in_test)) < 0.01


def test_saved_split_loads_back_identically(artifacts, digits):
    splits = data.prepare(seed=3, data=None, out=artifacts / "data" / "split.npz")
    loaded = data.load_split()  # resolves through DIGITS_ARTIFACTS
    for name in data.SPLITS:
        np.testing.assert_array_equal(loaded[name].x, splits[name].x)
        np.testing.assert_array_equal(loaded[name].y, splits[name].y)
        np.testing.assert_array_equal(loaded[name].x, digits[0][loaded[name].index])


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
        ({"x": np.zeros((10, 8, 9)), "y": np.zeros(10, int)}, r"x must have shape \(N, 8, 8\), got \(10, 8, 9\)"),
        ({"x": np.zeros((10, 64)), "y": np.zeros(10, int)}, r"x must have shape \(N, 8, 8\)"),
        ({"x": np.zeros((10, 8, 8)), "y": np.zeros((10, 1), int)}, r"y must have shape \(N,\)"),
        ({"x": np.zeros((10, 8, 8)), "y": np.zeros(9, int)}, "10 images but y has 9 labels"),
        ({"x": np.full((10, 8, 8), np.nan), "y": np.zeros(10, int)}, "640 NaN or infinite"),
        ({"x": np.full((10, 8, 8), 255.0), "y": np.zeros(10, int)}, r"must lie in \[0, 16\].*got \[255, 255\]"),
        ({"x": np.zeros((10, 8, 8)), "y": np.arange(10) + 1}, "labels must lie in 0..9, got 1..10"),
        ({"x": np.zeros((10, 8, 8)), "y": np.full(10, 0.5)}, "integer labels"),
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
    x, y = digits
    path = _write(tmp_path / "mine.npz", x=x[:100].astype(np.uint8), y=y[:100].astype(np.int32))
    loaded_x, loaded_y = data.load_npz(path)
    assert loaded_x.dtype == np.float32 and loaded_y.dtype == np.int64
    np.testing.assert_array_equal(loaded_x, x[:100])


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
