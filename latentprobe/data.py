"""Datasets: read the arrays, check them, divide the train split and say how to scale them to [0, 1].

``load(cfg, seed)`` returns a ``Splits``: train / validation / test parts, the class-balanced labeled
subset of ``train`` the probe learns from, and a sha256 that identifies the data. Every problem with the
data raises ``DataError`` before any training starts.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from latentprobe.errors import DataError, DataSettingError

KEYS = ("x_train", "y_train", "x_test", "y_test")
DATA_DIR_ENV = "LATENTPROBE_DATA_DIR"

# Separate random streams, so that changing e.g. `limit` does not shift the validation draw's stream.
_STREAM_LIMIT, _STREAM_VALIDATION, _STREAM_LABELED = 0, 1, 2

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


# eq=False: the fields are arrays, and a generated __eq__ would raise on `==` instead of comparing.
@dataclass(frozen=True, eq=False)
class Split:
    """One part of a dataset: inputs as stored, integer labels, and the divisor that maps x to [0, 1].

    Images with integer pixels stay bytes: ``x`` is uint8 and ``x / scale`` (16 for the digits, 255 for
    others) is what the networks see, computed batch by batch inside the compiled step
    (:func:`latentprobe.pixels.scale_batch`). Float images and flat feature vectors are float32 in [0, 1]
    already, with scale 1.
    """

    x: np.ndarray  # uint8 or float32, (n,) + input_shape
    y: np.ndarray  # int64, (n,), values 0..K-1
    scale: float = 1.0  # x / scale lies in [0, 1]


@dataclass(frozen=True, eq=False)
class Splits:
    """A dataset divided for a run.

    Attributes:
        train: the training part of the original train split (validation removed).
        val: held out, stratified, from the original train split.
        test: the dataset's own test split; never used for training or model selection.
        labeled_idx: sorted int64 indices into ``train``: the class-balanced subset the probe trains on.
        input_shape: shape of one example, e.g. ``(8, 8, 1)`` for images or ``(d,)`` for feature vectors.
        num_classes: K; labels are 0..K-1.
        name: the dataset's name (``cfg.name``).
        sha256: hex digest of the raw arrays (dtypes, shapes and bytes), before limiting or scaling.
        is_image: whether the inputs are images (H, W, C) rather than flat feature vectors.
        train_index: int64 indices of ``train``'s rows in the dataset's own train split.
        val_index: int64 indices of ``val``'s rows in the dataset's own train split.
    """

    train: Split
    val: Split
    test: Split
    labeled_idx: np.ndarray
    input_shape: tuple[int, ...]
    num_classes: int
    name: str
    sha256: str
    is_image: bool
    train_index: np.ndarray
    val_index: np.ndarray


def load(cfg: Any, seed: int) -> Splits:
    """Read, check, divide and scale the dataset that ``cfg`` names.

    Args:
        cfg: a ``DataConfig`` (or anything with ``name``, ``path``, ``labels``, ``validation``, ``limit``).
        seed: the run's seed; it alone decides the limit subsample, the validation hold-out and the
            labeled subset. The test split never depends on it.

    Returns:
        The ``Splits``.

    Raises:
        DataError: the file is missing or malformed, or the arrays or settings cannot make valid splits.
    """
    arrays = _read_checked(cfg)
    sha256 = hash_arrays(*arrays)
    x_train_raw, y_train_raw, x_test_raw, y_test_raw = arrays
    y_train = y_train_raw.astype(np.int64)
    y_test = y_test_raw.astype(np.int64)
    num_classes = int(y_train.max()) + 1

    # Indices first, from labels alone, so the (large) inputs are gathered and scaled only once per part.
    pool = select_limit(y_train, cfg.limit, np.random.default_rng([seed, _STREAM_LIMIT]))
    train_idx, val_idx = split_validation(
        y_train, pool, cfg.validation, num_classes, np.random.default_rng([seed, _STREAM_VALIDATION])
    )
    labeled_idx = select_labeled(
        y_train[train_idx], cfg.labels, num_classes, np.random.default_rng([seed, _STREAM_LABELED])
    )

    is_image = x_train_raw.ndim >= 3
    x_train = x_train_raw[train_idx]
    x_val = x_train_raw[val_idx]
    if is_image:
        scale = _image_scale(cfg.name, x_train_raw, x_test_raw)
        x_train, x_val, x_test = (_scale_image(x, scale) for x in (x_train, x_val, x_test_raw))
        if x_train.dtype != np.uint8:
            scale = 1.0  # float images were divided on the host
    else:
        x_train, x_val, x_test = _scale_features(x_train, x_val, x_test_raw)
        scale = 1.0

    return Splits(
        train=Split(x_train, y_train[train_idx], scale),
        val=Split(x_val, y_train[val_idx], scale),
        test=Split(x_test, y_test, scale),
        labeled_idx=labeled_idx,
        input_shape=tuple(int(d) for d in x_train.shape[1:]),
        num_classes=num_classes,
        name=cfg.name,
        sha256=sha256,
        is_image=is_image,
        train_index=np.asarray(train_idx, dtype=np.int64),
        val_index=np.asarray(val_idx, dtype=np.int64),
    )


def _read_checked(cfg: Any) -> Arrays:
    """The arrays ``cfg`` names, checked. A problem with the file ``data.path`` names is an error of that
    config key, so the CLI names the config file and the key's line (or the --set option) as well."""
    try:
        arrays, source = _read(cfg.name, cfg.path)
        check_arrays(*arrays, source=source)
    except DataSettingError:
        raise
    except DataError as error:
        if cfg.path is None:
            raise
        raise DataSettingError("data.path", str(error)) from None
    return arrays


def read_arrays(name: str, path: str | None) -> Arrays:
    """Return the raw ``x_train, y_train, x_test, y_test`` of a dataset, unchecked and unscaled.

    Args:
        name: ``digits``, ``mnist``, ``fashion_mnist`` or ``npz``.
        path: the ``.npz`` to read; required for ``npz``, optional for ``mnist`` / ``fashion_mnist``
            (then ``$LATENTPROBE_DATA_DIR/<name>.npz``, then a Keras download); ignored for ``digits``.
    """
    return _read(name, path)[0]


def hash_arrays(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> str:
    """Return the sha256 hex digest of the four arrays: per array its dtype, shape, then bytes."""
    digest = hashlib.sha256()
    for key, array in zip(KEYS, (x_train, y_train, x_test, y_test), strict=True):
        digest.update(f"{key}:{array.dtype.str}:{array.shape};".encode())
        # No copy for the usual C-contiguous array: hashlib reads its buffer directly.
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def check_arrays(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, source: str
) -> None:
    """Raise ``DataError`` unless the arrays form a usable classification dataset.

    Checks shapes, lengths, emptiness, finite numeric inputs, pixel ranges of images, and labels that are
    the integers 0..K-1 (K >= 2, every class in train) with test labels among the train classes.
    """
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.ndim not in (2, 3, 4):
            raise DataError(
                f"{source}: x_{split} has shape {x.shape}; expected (n, d) features, "
                "(n, H, W) or (n, H, W, C) images"
            )
        if y.ndim != 1:
            raise DataError(f"{source}: y_{split} has shape {y.shape}; expected (n,) labels")
        if len(x) != len(y):
            raise DataError(
                f"{source}: {split} split: x_{split} has {len(x)} examples but y_{split} has {len(y)}"
            )
        if len(x) == 0:
            raise DataError(f"{source}: the {split} split is empty (x_{split} has 0 examples)")
        if x.dtype.kind not in "biuf":
            raise DataError(f"{source}: x_{split} has dtype {x.dtype}; expected numbers")
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            raise DataError(f"{source}: x_{split} ({split} split) contains NaN or inf")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"{source}: x_train examples have shape {x_train.shape[1:]} but x_test examples "
            f"{x_test.shape[1:]}"
        )
    if x_train.ndim >= 3:
        _check_pixels(x_train, x_test, source)

    for split, y in (("train", y_train), ("test", y_test)):
        _check_label_values(y, f"{source}: y_{split}")
    classes = np.unique(y_train).astype(np.int64)
    num_classes = int(classes[-1]) + 1
    if len(classes) < 2:
        raise DataError(
            f"{source}: y_train has a single class ({classes[0]}); a probe needs at least 2 classes"
        )
    if len(classes) != num_classes:
        raise DataError(
            f"{source}: y_train labels must be the integers 0..K-1 with every class present; "
            f"got classes {_preview(classes)}"
        )
    unknown = np.setdiff1d(np.unique(y_test).astype(np.int64), classes)
    if len(unknown):
        raise DataError(
            f"{source}: y_test has labels {_preview(unknown)} that are not among the train classes "
            f"0..{num_classes - 1}"
        )


def select_limit(y: np.ndarray, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    """Return sorted indices of a stratified subsample of ``limit`` examples (all of them if ``None``)."""
    n = len(y)
    if limit is None or limit >= n:
        return np.arange(n, dtype=np.int64)
    num_classes = int(y.max()) + 1
    if limit < num_classes:
        raise DataSettingError("data.limit", f"{limit} is smaller than the number of classes ({num_classes})")
    by_class = _indices_by_class(y, np.arange(n, dtype=np.int64), num_classes)
    counts = np.array([len(i) for i in by_class])
    # One example of every class first, so a rare class cannot round away to nothing.
    take = 1 + _allocate(counts - 1, limit - num_classes, rng)
    return np.sort(
        np.concatenate([rng.choice(i, k, replace=False) for i, k in zip(by_class, take, strict=True)])
    )


def split_validation(
    y: np.ndarray, pool: np.ndarray, validation: float, num_classes: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Divide ``pool`` (indices into ``y``) into sorted train and validation indices, stratified by class.

    ``validation`` is a fraction in (0, 1) of the pool, or a count >= 1. Every class must keep at least one
    training example.
    """
    n = len(pool)
    if isinstance(validation, bool) or not isinstance(validation, numbers.Real):
        raise DataSettingError(
            "data.validation", f"{validation!r}: expected a fraction in (0, 1) or a count >= 1"
        )
    if not isinstance(validation, numbers.Integral):
        if not 0 < validation < 1:
            raise DataSettingError(
                "data.validation", f"{validation}: a fraction must lie strictly between 0 and 1"
            )
        n_val = math.ceil(validation * n)
    else:
        n_val = int(validation)
    if n_val < 1:
        raise DataSettingError(
            "data.validation", f"{validation}: expected a fraction in (0, 1) or a count >= 1"
        )
    if n_val >= n:
        raise DataSettingError(
            "data.validation",
            f"{validation} holds out {n_val} of the {n} train examples, leaving no training data",
        )
    by_class = _indices_by_class(y[pool], pool, num_classes)
    counts = np.array([len(i) for i in by_class])
    take = _allocate(counts, n_val, rng)
    emptied = np.flatnonzero(take >= counts)
    if len(emptied):
        raise DataSettingError(
            "data.validation",
            f"{validation} holds out every train example of class {emptied[0]} "
            f"({counts[emptied[0]]} examples), leaving none to train on",
        )
    val_parts = [rng.choice(i, k, replace=False) for i, k in zip(by_class, take, strict=True)]
    val_idx = np.sort(np.concatenate(val_parts))
    train_idx = np.setdiff1d(pool, val_idx, assume_unique=True)
    return train_idx, val_idx


def select_labeled(
    y: np.ndarray, labels: int | str, num_classes: int, rng: np.random.Generator
) -> np.ndarray:
    """Return sorted indices into ``y`` of a class-balanced labeled subset of ``labels`` examples.

    Each class gets ``labels // K``; the ``labels % K`` left over go one each to classes the RNG picks among
    those that have an example to spare. ``"all"`` selects every index.
    """
    n = len(y)
    if labels == "all":
        return np.arange(n, dtype=np.int64)
    if isinstance(labels, bool) or not isinstance(labels, numbers.Integral):
        raise DataSettingError("data.labels", f"{labels!r}: expected a number of examples or 'all'")
    if labels > n:
        raise DataSettingError("data.labels", f"{labels} is larger than the {n} examples of the train part")
    if labels < num_classes:
        raise DataSettingError(
            "data.labels",
            f"{labels} is smaller than the number of classes ({num_classes}); "
            "a balanced subset needs at least one example per class",
        )
    by_class = _indices_by_class(y, np.arange(n, dtype=np.int64), num_classes)
    counts = np.array([len(i) for i in by_class])
    per_class, extra = divmod(int(labels), num_classes)
    short = np.flatnonzero(counts < per_class)
    spare = np.flatnonzero(counts > per_class)
    if len(short) or len(spare) < extra:
        needy = short[0] if len(short) else int(np.argmin(counts))
        raise DataSettingError(
            "data.labels",
            f"{labels} needs {per_class} (or {per_class + 1}) examples per class, but class "
            f"{needy} has only {counts[needy]} in the train part",
        )
    take = np.full(num_classes, per_class)
    take[rng.choice(spare, extra, replace=False)] += 1
    parts = [rng.choice(i, k, replace=False) for i, k in zip(by_class, take, strict=True)]
    return np.sort(np.concatenate(parts)).astype(np.int64)


def _read(name: str, path: str | None) -> tuple[Arrays, str]:
    """Return the raw arrays and a description of where they came from, for error messages."""
    if name == "digits":
        return _read_digits(), "digits"
    if name in ("mnist", "fashion_mnist"):
        file = _find_file(name, path)
        if file is None:
            return _download_keras(name), f"keras.datasets.{name}"
        return _read_npz(file), file
    if not path:  # name "npz" (config validation allows no other)
        raise DataError("data.path is required when data.name is 'npz'")
    return _read_npz(path), path


def _read_digits() -> Arrays:
    """Return scikit-learn's bundled 8x8 digits with a fixed split, the same test set for every seed."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    # Pixel values are the integers 0..16; uint8 keeps the raw arrays (and their hash) compact and exact.
    x = digits.images.astype(np.uint8)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    return x_train, y_train, x_test, y_test


def _find_file(name: str, path: str | None) -> str | None:
    """Return the file to read for a Keras dataset: ``path``, else one in $LATENTPROBE_DATA_DIR, else None."""
    if path:
        return path
    data_dir = os.environ.get(DATA_DIR_ENV)
    if data_dir:
        candidate = Path(data_dir) / f"{name}.npz"
        if candidate.is_file():
            return str(candidate)
    return None


def _download_keras(name: str) -> Arrays:
    """Return a Keras dataset through ``keras.datasets`` (downloads on first use)."""
    import keras  # lazily: importing it starts TensorFlow, which most data paths never need

    try:
        (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    except Exception as error:  # a download raises any of several errors; all mean the same to the user
        raise DataError(
            f"downloading {name} with keras.datasets failed ({_one_line(error)}); "
            f"set data.path or ${DATA_DIR_ENV} to a folder holding {name}.npz"
        ) from error
    return x_train, y_train, x_test, y_test


def _read_npz(path: str) -> Arrays:
    """Return the four arrays of an ``.npz`` file, or raise ``DataError`` naming the file and the problem."""
    file = Path(path)
    if not file.exists():
        raise DataError(f"{path}: no such file")
    if not file.is_file():
        raise DataError(f"{path}: not a file")
    # np.load falls back to .npy and pickle for non-zip files; its errors then mislead ("pickled data").
    with file.open("rb") as stream:
        magic = stream.read(6)
    if magic.startswith(b"\x93NUMPY"):
        raise DataError(f"{path}: not a valid .npz file (it is a .npy holding one array, not named arrays)")
    if not magic.startswith(b"PK"):
        raise DataError(f"{path}: not a valid .npz file (not a zip archive)")
    try:
        npz = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: not a valid .npz file ({_one_line(error)})") from error
    with npz:
        missing = [key for key in KEYS if key not in npz.files]
        if missing:
            raise DataError(f"{path}: missing key(s) {', '.join(missing)}; an .npz needs {', '.join(KEYS)}")
        try:
            return tuple(npz[key] for key in KEYS)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
            raise DataError(f"{path}: not a valid .npz file ({_one_line(error)})") from error


def _one_line(error: Exception) -> str:
    """Return an exception's message on one line, for the CLI's one-line ``error:`` output."""
    return " ".join(str(error).split())


def _check_pixels(x_train: np.ndarray, x_test: np.ndarray, source: str) -> None:
    """Raise ``DataError`` unless image pixels lie in [0, 255] (integers) or [0, 1] / [0, 255] (floats)."""
    for split, x in (("train", x_train), ("test", x_test)):
        low, high = x.min(), x.max()
        if low < 0 or high > 255:
            raise DataError(
                f"{source}: x_{split} image values span [{low}, {high}]; expected [0, 1] or [0, 255]"
            )


def _check_label_values(y: np.ndarray, where: str) -> None:
    """Raise ``DataError`` unless ``y`` holds non-negative whole numbers."""
    if y.dtype.kind not in "biuf":
        raise DataError(f"{where} has dtype {y.dtype}; labels must be integers 0..K-1")
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            raise DataError(f"{where} holds labels that are not integers (e.g. {y[bad][0]})")
    if y.min() < 0:
        raise DataError(f"{where} holds negative labels (e.g. {y.min()}); labels must be integers 0..K-1")


def _preview(values: np.ndarray, limit: int = 10) -> str:
    """Return a short list of values for an error message."""
    shown = ", ".join(str(int(v)) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


def _indices_by_class(y: np.ndarray, indices: np.ndarray, num_classes: int) -> list[np.ndarray]:
    """Return, for each class 0..K-1, the entries of ``indices`` whose label (in ``y``, aligned) is it."""
    return [indices[y == k] for k in range(num_classes)]


def _allocate(counts: np.ndarray, total: int, rng: np.random.Generator) -> np.ndarray:
    """Return how many of each class to take so ``total`` is split in proportion to ``counts``.

    Largest remainders get the leftover units; the RNG breaks ties, so no class is favoured by its index.
    """
    if total <= 0 or counts.sum() == 0:
        return np.zeros(len(counts), dtype=np.int64)
    exact = counts * (total / counts.sum())
    take = np.floor(exact).astype(np.int64)
    fraction = exact - take
    order = np.lexsort((rng.random(len(counts)), -fraction))
    take[order[: total - int(take.sum())]] += 1
    return np.minimum(take, counts)


def _image_scale(name: str, x_train: np.ndarray, x_test: np.ndarray) -> float:
    """Return the divisor that maps this dataset's pixels to [0, 1]."""
    if name == "digits":
        return 16.0
    if x_train.dtype.kind in "biu":
        return 255.0
    # Float images: one decision for both splits, from the file's encoding ([0, 1] or [0, 255]).
    return 1.0 if max(x_train.max(), x_test.max()) <= 1 else 255.0


def _scale_image(x: np.ndarray, scale: float) -> np.ndarray:
    """Return images with a channel axis: integer pixels as uint8 (their values, ``scale`` left to the
    compiled step), float pixels as float32 ``x / scale``; no copy of a uint8 array."""
    if x.dtype.kind in "biu":
        stored = x.astype(np.uint8, copy=False)  # _check_pixels: integers in [0, 255]
    elif scale == 1.0:
        stored = np.asarray(x, dtype=np.float32)
    else:
        stored = np.divide(x, np.float32(scale), dtype=np.float32)
    return stored[..., np.newaxis] if stored.ndim == 3 else stored


def _scale_features(
    x_train: np.ndarray, x_val: np.ndarray, x_test: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min-max scale each feature to [0, 1] with the train part's statistics; constant features become 0.

    Validation and test use the same statistics, so they are clipped to [0, 1].
    """
    # copy=False: x_train and x_val are already fresh gathers, x_test is this load's own array.
    x_train = x_train.astype(np.float32, copy=False)
    low = x_train.min(axis=0)
    span = x_train.max(axis=0) - low
    varies = span > 0
    scaled = []
    for x in (x_train, x_val.astype(np.float32, copy=False), x_test.astype(np.float32, copy=False)):
        x -= low
        np.divide(x, span, out=x, where=varies)
        x[:, ~varies] = 0.0
        # Clip train too: float32 rounding can land a hair outside [0, 1].
        np.clip(x, 0.0, 1.0, out=x)
        scaled.append(x)
    return scaled[0], scaled[1], scaled[2]
