"""Tests for latentprobe.data: real digits, MNIST from the shared folder, small synthetic .npz files."""

from __future__ import annotations

import math
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from latentprobe import data, pixels
from latentprobe.errors import DataError, UserError

MNIST = Path(__file__).resolve().parents[1].parent / "shared/data/mnist.npz"
# First train labels of the shared MNIST file (see shared/data/README.md).
MNIST_FIRST_TRAIN_LABELS = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def make_cfg(name="digits", path=None, labels="all", validation=0.1, limit=None) -> SimpleNamespace:
    """Return a stand-in for config.DataConfig."""
    return SimpleNamespace(name=name, path=path, labels=labels, validation=validation, limit=limit)


def make_arrays(n_train=60, n_test=15, classes=3, shape=(4, 4), seed=0) -> dict[str, np.ndarray]:
    """Return a small valid dataset: uint8 images and labels 0..classes-1 cycling."""
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
        "y_train": np.arange(n_train) % classes,
        "x_test": rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        "y_test": np.arange(n_test) % classes,
    }


def write_npz(tmp_path: Path, name="d.npz", **overrides) -> str:
    """Write ``make_arrays()`` with some arrays replaced (or dropped, when given None) and return the path."""
    arrays = make_arrays()
    arrays.update(overrides)
    path = tmp_path / name
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return str(path)


def find_mnist() -> Path:
    """Return the shared MNIST file, or skip the test when this machine has none."""
    env_dir = os.environ.get("LATENTPROBE_DATA_DIR")
    for candidate in ([Path(env_dir) / "mnist.npz"] if env_dir else []) + [MNIST]:
        if candidate.is_file():
            return candidate
    pytest.skip(f"no MNIST at {MNIST} or $LATENTPROBE_DATA_DIR")


# --- digits ---------------------------------------------------------------------------------------------


def test_digits_shapes_dtypes_and_range():
    splits = data.load(make_cfg(labels=100, validation=0.1), seed=0)

    assert splits.input_shape == (8, 8, 1)
    assert splits.num_classes == 10
    assert splits.is_image and splits.name == "digits"
    # 1797 images, a fixed 20 % test split, then 10 % of the remaining 1437 held out (rounded up).
    assert len(splits.test.y) == 360
    assert len(splits.val.y) == math.ceil(0.1 * 1437) == 144
    assert len(splits.train.y) == 1437 - 144
    for part in (splits.train, splits.val, splits.test):
        # Bytes, the raw values 0..16: the model sees x / 16, scaled inside the compiled step.
        assert part.x.dtype == np.uint8 and part.y.dtype == np.int64
        assert part.x.shape == (len(part.y), 8, 8, 1)
        assert part.scale == 16.0
        assert part.x.min() == 0 and part.x.max() == 16
        assert set(np.unique(part.y)) == set(range(10))


def test_digits_read_arrays_gives_raw_pixels():
    x_train, y_train, x_test, y_test = data.read_arrays("digits", None)

    assert x_train.shape == (1437, 8, 8) and x_test.shape == (360, 8, 8)
    assert x_train.max() == 16 and x_train.min() == 0
    assert len(y_train) == 1437 and len(y_test) == 360


def test_digits_test_split_and_hash_do_not_depend_on_seed():
    a = data.load(make_cfg(labels=50), seed=0)
    b = data.load(make_cfg(labels=50), seed=1)

    np.testing.assert_array_equal(a.test.x, b.test.x)
    np.testing.assert_array_equal(a.test.y, b.test.y)
    assert a.sha256 == b.sha256
    assert len(a.sha256) == 64 and int(a.sha256, 16) >= 0


def test_same_seed_gives_identical_splits():
    a = data.load(make_cfg(labels=37, validation=0.2, limit=900), seed=7)
    b = data.load(make_cfg(labels=37, validation=0.2, limit=900), seed=7)

    for part_a, part_b in ((a.train, b.train), (a.val, b.val), (a.test, b.test)):
        np.testing.assert_array_equal(part_a.x, part_b.x)
        np.testing.assert_array_equal(part_a.y, part_b.y)
    np.testing.assert_array_equal(a.labeled_idx, b.labeled_idx)


def test_different_seed_gives_different_splits():
    a = data.load(make_cfg(labels=50, validation=0.2), seed=0)
    b = data.load(make_cfg(labels=50, validation=0.2), seed=1)

    assert len(a.val.y) == len(b.val.y)
    assert not np.array_equal(a.val.x, b.val.x)
    assert not np.array_equal(a.train.x[a.labeled_idx], b.train.x[b.labeled_idx])


def test_labeled_subset_is_balanced_sorted_and_inside_train():
    splits = data.load(make_cfg(labels=50), seed=3)

    idx = splits.labeled_idx
    assert idx.dtype == np.int64 and len(idx) == 50
    assert np.all(np.diff(idx) > 0)  # sorted, no repeats
    assert idx.min() >= 0 and idx.max() < len(splits.train.y)
    np.testing.assert_array_equal(np.bincount(splits.train.y[idx], minlength=10), [5] * 10)


def test_labeled_remainder_goes_one_each_to_seeded_classes():
    counts = {}
    for seed in (0, 1, 2):
        splits = data.load(make_cfg(labels=53), seed=seed)
        counts[seed] = np.bincount(splits.train.y[splits.labeled_idx], minlength=10)
        assert sorted(counts[seed]) == [5] * 7 + [6] * 3
    # The three classes with an extra example are drawn by the seed, not always the first three.
    assert len({tuple(c) for c in counts.values()}) > 1


def test_labels_all_selects_every_train_index():
    splits = data.load(make_cfg(labels="all"), seed=0)

    np.testing.assert_array_equal(splits.labeled_idx, np.arange(len(splits.train.y)))


def test_validation_count_is_stratified():
    splits = data.load(make_cfg(validation=200), seed=0)

    assert len(splits.val.y) == 200
    # Digits train classes hold 142..146 images, so 200 held out is 19 or 21 per class, never far off.
    val_counts = np.bincount(splits.val.y, minlength=10)
    train_counts = np.bincount(splits.train.y, minlength=10)
    expected = (val_counts + train_counts) * 200 / 1437
    assert np.all(np.abs(val_counts - expected) < 1)


def test_split_validation_indices_are_disjoint_and_cover_the_pool():
    y = np.arange(100) % 4
    pool = np.arange(10, 90)

    train_idx, val_idx = data.split_validation(y, pool, 0.25, 4, np.random.default_rng(0))

    assert len(val_idx) == 20 and len(train_idx) == 60
    assert len(np.intersect1d(train_idx, val_idx)) == 0
    np.testing.assert_array_equal(np.union1d(train_idx, val_idx), pool)
    np.testing.assert_array_equal(np.bincount(y[val_idx]), [5, 5, 5, 5])


def test_limit_subsamples_train_stratified_and_leaves_test_alone():
    splits = data.load(make_cfg(validation=0.1, limit=500), seed=0)

    assert len(splits.train.y) + len(splits.val.y) == 500
    assert len(splits.val.y) == 50
    assert len(splits.test.y) == 360
    # Stratified: each class keeps its share of the 1437 train images, to within rounding.
    counts = np.bincount(np.concatenate([splits.train.y, splits.val.y]), minlength=10)
    full_counts = np.bincount(data.read_arrays("digits", None)[1], minlength=10)
    assert np.all(np.abs(counts - full_counts * 500 / 1437) < 1)


def test_limit_keeps_a_rare_class():
    y = np.array([0] * 1000 + [1] * 2)

    idx = data.select_limit(y, 10, np.random.default_rng(0))

    assert len(idx) == 10
    np.testing.assert_array_equal(np.bincount(y[idx]), [9, 1])


# --- npz inputs and scaling ------------------------------------------------------------------------------


def test_npz_uint8_images_are_divided_by_255_with_a_channel_axis(tmp_path):
    arrays = make_arrays()
    path = write_npz(tmp_path)

    splits = data.load(make_cfg("npz", path, validation=6), seed=0)

    assert splits.input_shape == (4, 4, 1) and splits.is_image
    assert splits.num_classes == 3
    # Kept as bytes (no float32 copy) with scale 255: the networks see exactly NumPy's x / 255.
    assert splits.test.x.dtype == np.uint8 and splits.test.scale == 255.0
    np.testing.assert_array_equal(splits.test.x[..., 0], arrays["x_test"])
    scaled = pixels.scale_array(splits.test.x, splits.test.scale)
    np.testing.assert_array_equal(scaled[..., 0], arrays["x_test"] / np.float32(255))


def test_npz_float_images_in_unit_range_are_kept(tmp_path):
    x_test = np.random.default_rng(1).random((15, 4, 4, 3)).astype(np.float32) * 0.5
    x_train = np.random.default_rng(2).random((60, 4, 4, 3)).astype(np.float32)
    path = write_npz(tmp_path, x_train=x_train, x_test=x_test)

    splits = data.load(make_cfg("npz", path), seed=0)

    assert splits.input_shape == (4, 4, 3)
    np.testing.assert_array_equal(splits.test.x, x_test)
    assert splits.test.x.dtype == np.float32 and splits.test.scale == 1.0


def test_npz_float_images_up_to_255_are_divided(tmp_path):
    x_test = np.full((15, 4, 4), 127.5)
    x_train = np.full((60, 4, 4), 255.0)
    path = write_npz(tmp_path, x_train=x_train, x_test=x_test)

    splits = data.load(make_cfg("npz", path), seed=0)

    np.testing.assert_allclose(splits.test.x, 0.5)
    np.testing.assert_allclose(splits.train.x, 1.0)
    assert splits.train.x.dtype == np.float32 and splits.train.scale == 1.0  # divided on the host


def test_npz_flat_features_are_min_max_scaled_with_train_statistics(tmp_path):
    n = 60
    x_train = np.stack(
        [np.linspace(-10, 10, n), np.full(n, 3.0), np.arange(n) * 100.0], axis=1
    )  # (n, 3): a range, a constant, a large range
    x_test = np.array([[0.0, 3.0, 50.0], [-50.0, 7.0, 1e6], [10.0, 3.0, 0.0]])
    path = write_npz(tmp_path, x_train=x_train, x_test=x_test, y_test=np.array([0, 1, 2]))

    splits = data.load(make_cfg("npz", path, validation=6), seed=0)

    assert splits.input_shape == (3,) and not splits.is_image
    assert splits.train.x.dtype == np.float32 and splits.train.scale == 1.0
    train = splits.train.x
    # Train statistics: every varying train feature spans exactly [0, 1]; the constant one is all 0.
    np.testing.assert_allclose(train.min(axis=0), [0, 0, 0])
    np.testing.assert_allclose(train.max(axis=0), [1, 0, 1])
    # Test values beyond the train range are clipped; the constant feature stays 0 whatever its value.
    assert splits.test.x.min() >= 0 and splits.test.x.max() <= 1
    np.testing.assert_array_equal(splits.test.x[:, 1], [0, 0, 0])
    assert splits.test.x[1, 0] == 0.0 and splits.test.x[1, 2] == 1.0
    assert 0.4 < splits.test.x[0, 0] < 0.6


def test_sha256_is_stable_and_changes_with_the_data(tmp_path):
    arrays = make_arrays()
    first = data.load(make_cfg("npz", write_npz(tmp_path, "a.npz")), seed=0).sha256
    again = data.load(make_cfg("npz", write_npz(tmp_path, "b.npz")), seed=5).sha256
    arrays["x_test"][0, 0, 0] ^= 1
    changed_pixel = data.load(make_cfg("npz", write_npz(tmp_path, "c.npz", x_test=arrays["x_test"])), 0)
    changed_dtype = data.load(
        make_cfg("npz", write_npz(tmp_path, "d.npz", y_train=make_arrays()["y_train"].astype(np.int32))), 0
    )

    assert first == again == data.hash_arrays(*(make_arrays()[k] for k in data.KEYS))
    assert changed_pixel.sha256 != first
    assert changed_dtype.sha256 != first


# --- data errors -------------------------------------------------------------------------------------------


def test_error_missing_file(tmp_path):
    missing = tmp_path / "nope.npz"
    with pytest.raises(DataError, match=f"{missing}: no such file"):
        data.load(make_cfg("npz", str(missing)), seed=0)


def test_error_npz_needs_a_path():
    with pytest.raises(DataError, match="data.path is required"):
        data.load(make_cfg("npz", None), seed=0)


def test_error_not_an_npz(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("x_train,y_train\n1,2\n")
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))

    with pytest.raises(DataError, match=r"notes\.npz: not a valid \.npz file \(not a zip archive\)"):
        data.load(make_cfg("npz", str(text)), seed=0)
    with pytest.raises(
        DataError, match=r"single\.npy: not a valid \.npz file \(it is a \.npy holding one array"
    ):
        data.load(make_cfg("npz", str(single)), seed=0)


def test_error_data_error_is_a_user_error():
    assert issubclass(DataError, UserError)


def test_error_missing_keys_named(tmp_path):
    path = write_npz(tmp_path, y_train=None, x_test=None)
    with pytest.raises(DataError, match=r"d\.npz: missing key\(s\) y_train, x_test"):
        data.load(make_cfg("npz", path), seed=0)


def test_error_object_arrays(tmp_path):
    path = tmp_path / "obj.npz"
    arrays = make_arrays()
    arrays["y_train"] = np.array([{"label": 1}] * 60, dtype=object)
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=r"obj\.npz: not a valid \.npz file"):
        data.load(make_cfg("npz", str(path)), seed=0)


def test_error_x_and_y_lengths_differ(tmp_path):
    path = write_npz(tmp_path, y_test=np.arange(14) % 3)
    with pytest.raises(DataError, match="test split: x_test has 15 examples but y_test has 14"):
        data.load(make_cfg("npz", path), seed=0)


@pytest.mark.parametrize(
    ("y_train", "words"),
    [
        (np.array([1, 2, 5] * 20), r"0\.\.K-1 with every class present; got classes \[1, 2, 5\]"),
        (np.array([-1, 0, 1] * 20), r"y_train holds negative labels \(e\.g\. -1\)"),
        (np.array([0.0, 1.0, 1.5] * 20), r"y_train holds labels that are not integers \(e\.g\. 1\.5\)"),
        (np.array([0.0, 1.0, np.nan] * 20), r"y_train holds labels that are not integers"),
        (np.array(["a", "b", "c"] * 20), r"y_train has dtype <U1; labels must be integers"),
    ],
)
def test_error_labels_not_integers_0_to_k(tmp_path, y_train, words):
    path = write_npz(tmp_path, y_train=y_train)
    with pytest.raises(DataError, match=words):
        data.load(make_cfg("npz", path), seed=0)


def test_whole_float_labels_are_accepted(tmp_path):
    path = write_npz(tmp_path, y_train=(np.arange(60) % 3).astype(np.float64))
    splits = data.load(make_cfg("npz", path), seed=0)
    assert splits.train.y.dtype == np.int64 and splits.num_classes == 3


def test_error_nan_or_inf_in_inputs_names_the_split(tmp_path):
    x_test = np.zeros((15, 4, 4))
    x_test[3, 1, 1] = np.nan
    x_train = np.zeros((60, 5))
    x_train[0, 0] = np.inf
    nan_path = write_npz(tmp_path, "nan.npz", x_test=x_test)
    inf_path = write_npz(tmp_path, "inf.npz", x_train=x_train, x_test=np.zeros((15, 5)))

    with pytest.raises(DataError, match=r"nan\.npz: x_test \(test split\) contains NaN or inf"):
        data.load(make_cfg("npz", nan_path), seed=0)
    with pytest.raises(DataError, match=r"inf\.npz: x_train \(train split\) contains NaN or inf"):
        data.load(make_cfg("npz", inf_path), seed=0)


def test_error_single_class(tmp_path):
    path = write_npz(tmp_path, y_train=np.zeros(60, dtype=int), y_test=np.zeros(15, dtype=int))
    with pytest.raises(DataError, match=r"y_train has a single class \(0\)"):
        data.load(make_cfg("npz", path), seed=0)


def test_error_empty_split(tmp_path):
    path = write_npz(tmp_path, x_test=np.zeros((0, 4, 4), np.uint8), y_test=np.zeros(0, int))
    with pytest.raises(DataError, match=r"the test split is empty \(x_test has 0 examples\)"):
        data.load(make_cfg("npz", path), seed=0)


def test_error_test_labels_outside_train_classes(tmp_path):
    path = write_npz(tmp_path, y_test=np.arange(15) % 5)
    with pytest.raises(
        DataError, match=r"y_test has labels \[3, 4\] that are not among the train classes 0\.\.2"
    ):
        data.load(make_cfg("npz", path), seed=0)


def test_error_bad_shapes(tmp_path):
    mismatch = write_npz(tmp_path, "m.npz", x_test=np.zeros((15, 5, 5), np.uint8))
    flat_y = write_npz(tmp_path, "y.npz", y_train=np.zeros((60, 1), int))

    with pytest.raises(DataError, match=r"x_train examples have shape \(4, 4\) but x_test examples \(5, 5\)"):
        data.load(make_cfg("npz", mismatch), seed=0)
    with pytest.raises(DataError, match=r"y_train has shape \(60, 1\); expected \(n,\) labels"):
        data.load(make_cfg("npz", flat_y), seed=0)


def test_error_image_values_out_of_range(tmp_path):
    path = write_npz(tmp_path, x_train=np.full((60, 4, 4), 300.0))
    with pytest.raises(DataError, match=r"x_train image values span \[300\.0, 300\.0\]"):
        data.load(make_cfg("npz", path), seed=0)


@pytest.mark.parametrize(
    ("labels", "words"),
    [
        (2000, r"data\.labels: 2000 is larger than the 1293 examples of the train part"),
        (7, r"data\.labels: 7 is smaller than the number of classes \(10\)"),
    ],
)
def test_error_labels_out_of_bounds(labels, words):
    with pytest.raises(DataError, match=words):
        data.load(make_cfg(labels=labels), seed=0)


def test_error_class_too_small_for_balanced_labels(tmp_path):
    # Class 2 has 4 train examples; 30 labels need 10 of each.
    y_train = np.array([0] * 30 + [1] * 26 + [2] * 4)
    path = write_npz(tmp_path, y_train=y_train)
    with pytest.raises(DataError, match=r"data\.labels: 30 needs 10 .* class 2 has only 4 in the train part"):
        data.load(make_cfg("npz", path, labels=30, validation=1), seed=0)


@pytest.mark.parametrize(
    ("validation", "words"),
    [
        (60, r"data\.validation: 60 holds out 60 of the 60 train examples, leaving no training data"),
        (0.999, r"data\.validation: 0\.999 holds out 60 of the 60 train examples, leaving no training data"),
        (1.5, r"data\.validation: 1\.5: a fraction must lie strictly between 0 and 1"),
        (0, r"data\.validation: 0: expected a fraction in \(0, 1\) or a count >= 1"),
    ],
)
def test_error_validation_leaves_no_training_data(tmp_path, validation, words):
    with pytest.raises(DataError, match=words):
        data.load(make_cfg("npz", write_npz(tmp_path), validation=validation), seed=0)


def test_error_validation_empties_a_class(tmp_path):
    y_train = np.array([0] * 59 + [1])
    path = write_npz(tmp_path, y_train=y_train, y_test=np.arange(15) % 2)
    with pytest.raises(DataError, match=r"holds out every train example of class 1 \(1 examples\)"):
        data.load(make_cfg("npz", path, validation=0.5), seed=0)


def test_error_limit_below_class_count():
    with pytest.raises(DataError, match=r"data\.limit: 5 is smaller than the number of classes \(10\)"):
        data.load(make_cfg(limit=5), seed=0)


def test_error_messages_are_one_line(tmp_path):
    text = tmp_path / "bad.npz"
    text.write_bytes(b"PK\x03\x04 not really a zip\n\nat all")
    with pytest.raises(DataError) as caught:
        data.load(make_cfg("npz", str(text)), seed=0)
    assert "\n" not in str(caught.value)


# --- MNIST (shared file) ---------------------------------------------------------------------------------


def test_mnist_from_path():
    path = find_mnist()

    splits = data.load(make_cfg("mnist", str(path), labels=100, validation=1000), seed=0)

    assert splits.input_shape == (28, 28, 1) and splits.num_classes == 10
    assert splits.train.x.shape == (59000, 28, 28, 1) and splits.val.x.shape == (1000, 28, 28, 1)
    assert splits.test.x.shape == (10000, 28, 28, 1)
    # Bytes, as in the file: 47 MB for the train part, where float32 took 185 MB.
    assert splits.train.x.dtype == np.uint8 and splits.train.x.nbytes == 59000 * 784
    assert splits.train.scale == splits.test.scale == 255.0
    assert splits.test.x.min() == 0 and splits.test.x.max() == 255
    np.testing.assert_array_equal(np.bincount(splits.train.y[splits.labeled_idx]), [10] * 10)
    # Limiting off and the train part sorted: the original order shows through.
    x_train, y_train, _, _ = data.read_arrays("mnist", str(path))
    assert x_train.dtype == np.uint8 and list(y_train[:10]) == MNIST_FIRST_TRAIN_LABELS


def test_mnist_from_data_dir_matches_path(monkeypatch):
    path = find_mnist()
    cfg = make_cfg("mnist", None, labels=20, validation=0.1, limit=200)
    monkeypatch.setenv("LATENTPROBE_DATA_DIR", str(path.parent))

    from_env = data.load(cfg, seed=0)
    from_path = data.load(make_cfg("mnist", str(path), labels=20, validation=0.1, limit=200), seed=0)

    assert from_env.sha256 == from_path.sha256
    np.testing.assert_array_equal(from_env.val.x, from_path.val.x)
    assert len(from_env.train.y) == 180 and len(from_env.test.y) == 10000


@pytest.mark.slow
def test_error_download_failure_says_how_to_fix(monkeypatch, tmp_path):
    # Nothing cached in a fresh KERAS_HOME, so keras must download (if keras is not yet imported).
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("LATENTPROBE_DATA_DIR", raising=False)
    try:
        data.read_arrays("fashion_mnist", None)
    except DataError as error:
        message = str(error)
    else:
        pytest.skip("this machine can download fashion_mnist")
    assert message.startswith("downloading fashion_mnist with keras.datasets failed")
    assert "set data.path or $LATENTPROBE_DATA_DIR" in message
    assert "\n" not in message
