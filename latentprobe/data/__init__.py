"""Datasets: read the arrays, check them, divide the train split and say how to scale them to [0, 1].

``load(cfg, seed)`` returns a ``Splits``: train / validation / test parts, the class-balanced labeled
subset of ``train`` the probe learns from, any unlabeled examples, the class names, and a sha256 that
identifies the data. Every problem with the data raises ``DataError`` before any training starts.

One reader per source (``READERS``: digits, the Keras datasets and npz in ``readers.py``, image folders in
``folder.py``) returns a :class:`Source`; the checks, the splitting and the scaling here are shared.
"""

from __future__ import annotations

import hashlib
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from latentprobe.data import folder, readers
from latentprobe.data.readers import (
    CLASS_NAMES_KEY,
    DATA_DIR_ENV,
    FASHION_MNIST_CLASSES,
    KEYS,
    check_class_names,
    read_class_names,
)
from latentprobe.data.source import Source
from latentprobe.errors import DataError, DataSettingError
from latentprobe.pixels import scale_array

__all__ = [
    "CLASS_NAMES_KEY",
    "DATA_DIR_ENV",
    "FASHION_MNIST_CLASSES",
    "KEYS",
    "READERS",
    "Source",
    "Split",
    "Splits",
    "check_layout",
    "load",
    "read_class_names",
]

# Separate random streams, so that changing e.g. `limit` does not shift the validation draw's stream.
_STREAM_LIMIT, _STREAM_VALIDATION, _STREAM_LABELED = 0, 1, 2

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

#: ``data.name`` -> its reader: the data config in, a :class:`Source` out.
READERS: dict[str, Callable[[Any], Source]] = {
    "digits": readers.read_digits,
    "mnist": readers.read_keras_dataset,
    "fashion_mnist": readers.read_keras_dataset,
    "npz": readers.read_npz_source,
    "folder": folder.read_folder,
}


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
        class_names: the name of each class 0..K-1: an image folder's class folders, an npz's
            ``class_names``, Fashion-MNIST's items, else ``"0".."K-1"``.
        unlabeled: examples without labels, scaled like ``train.x``, shape (m,) + input_shape (m may be
            0). The autoencoder trains on them as well as on ``train``; they are in no labeled subset, no
            validation hold-out and no test split.
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
    class_names: tuple[str, ...]
    unlabeled: np.ndarray | None = None


def load(cfg: Any, seed: int) -> Splits:
    """Read, check, divide and scale the dataset that ``cfg`` names.

    Args:
        cfg: a ``DataConfig`` (or anything with ``name``, ``path``, ``labels``, ``validation``, ``limit``;
            ``unlabeled``, ``image_size``, ``color`` and ``test`` where they apply).
        seed: the run's seed; it alone decides the limit subsample, the validation hold-out and the
            labeled subset. The test split never depends on it.

    Returns:
        The ``Splits``.

    Raises:
        DataError: the file is missing or malformed, or the arrays or settings cannot make valid splits.
    """
    source = _read_checked(cfg)
    arrays = source.arrays
    unlabeled = _read_unlabeled(cfg, source)
    sha256 = hash_arrays(*arrays, unlabeled=[x for x, _ in unlabeled])
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
        own_parts = (x for x, own in unlabeled if own is None)
        raw_scale = _image_scale(cfg.name, x_train_raw, x_test_raw, *own_parts)
        x_train, x_val, x_test = (_scale_image(x, raw_scale) for x in (x_train, x_val, x_test_raw))
        scale = raw_scale
        scale = _stored_scale(x_train, scale)
        # Each part of the unlabeled examples in its own encoding: an image folder's are 0..255 bytes.
        parts = [_scale_image(x, own or raw_scale) for x, own in unlabeled]
        scales = [_stored_scale(x, own or raw_scale) for x, (_, own) in zip(parts, unlabeled, strict=True)]
        if any(x.dtype != x_train.dtype or s != scale for x, s in zip(parts, scales, strict=True)):
            # Parts that cannot share one stored encoding (the digits' 0..16 beside a folder's bytes):
            # every part as float32 in [0, 1], scaled here.
            x_train, x_val, x_test = (scale_array(x, scale) for x in (x_train, x_val, x_test))
            parts = [scale_array(x, s) for x, s in zip(parts, scales, strict=True)]
            scale = 1.0
        parts = parts or [x_train[:0]]
        x_unlabeled = parts[0] if len(parts) == 1 else np.concatenate(parts)
    else:
        raw = [x for x, _ in unlabeled]
        raw_unlabeled = (raw[0] if len(raw) == 1 else np.concatenate(raw)) if raw else x_train_raw[:0]
        x_train, x_val, x_test, x_unlabeled = _scale_features(x_train, x_val, x_test_raw, raw_unlabeled)
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
        class_names=source.class_names or tuple(str(k) for k in range(num_classes)),
        unlabeled=x_unlabeled,
    )


def check_layout(cfg: Any) -> None:
    """Check what can be checked of the data without reading it: an image folder's layout (``data.path``
    of ``data.name: folder``, a ``data.unlabeled`` folder). Imports no TensorFlow; decodes no image.

    Raises:
        DataSettingError: naming ``data.path`` or ``data.unlabeled``, and the folder or file at fault.
    """
    try:
        if cfg.name == "folder":
            folder.scan_layout(cfg.path)
        elif cfg.path:  # npz, or a Keras dataset's own file: a file with the four arrays
            readers.check_npz(cfg.path)
    except DataError as error:
        raise DataSettingError("data.path", str(error)) from None
    unlabeled = getattr(cfg, "unlabeled", None)
    if unlabeled:
        try:
            if _is_npz(unlabeled):
                readers.check_npz(unlabeled, (readers.UNLABELED_KEY,))
            else:
                folder.list_unlabeled(unlabeled)
        except DataError as error:
            raise DataSettingError("data.unlabeled", str(error)) from None


def _read_checked(cfg: Any) -> Source:
    """The arrays ``cfg`` names, checked. A problem with the file ``data.path`` names is an error of that
    config key, so the CLI names the config file and the key's line (or the --set option) as well."""
    try:
        source = READERS[cfg.name](cfg)
        check_arrays(*source.arrays, source=source.where)
        _check_class_names(source)
    except DataSettingError:
        raise
    except DataError as error:
        if cfg.path is None:
            raise
        raise DataSettingError("data.path", str(error)) from None
    return source


def _read_unlabeled(cfg: Any, source: Source) -> list[tuple[np.ndarray, float | None]]:
    """The unlabeled examples, raw, each part with its own pixel divisor (None: the data's own): the
    source's (``x_unlabeled`` in an npz), then those ``data.unlabeled`` names (an npz with
    ``x_unlabeled``, or a folder of images in any layout), checked against the train examples."""
    parts = []
    key = "data.path"
    try:
        if source.x_unlabeled is not None:
            parts.append((_check_unlabeled(source.x_unlabeled, source.x_train, source.where), None))
        path = getattr(cfg, "unlabeled", None)
        if path:
            key = "data.unlabeled"
            if _is_npz(path):
                x = _check_unlabeled(readers.read_unlabeled_npz(path), source.x_train, path)
                parts.append((x, None))
            else:
                x = _read_unlabeled_folder(cfg, path, source.x_train)
                x = _check_unlabeled(x, source.x_train, path, decoded=True)
                parts.append((x, 255.0))
    except DataError as error:
        raise DataSettingError(key, str(error)) from None
    return parts


def _read_unlabeled_folder(cfg: Any, path: str, x_train: np.ndarray) -> np.ndarray:
    # Decoded to the train images' colour, so unlabeled colour photos can join grayscale ones and back.
    channels = x_train.shape[3] if x_train.ndim == 4 else 1
    color = getattr(cfg, "color", None) or ("rgb" if channels == 3 else "grayscale")
    images = folder.read_unlabeled_folder(path, getattr(cfg, "image_size", None), color)
    if x_train.ndim == 3 and images.shape[1:3] == x_train.shape[1:]:
        images = images[..., 0]  # the npz keeps grayscale images without a channel axis
    return images


def _check_unlabeled(x: np.ndarray, x_train: np.ndarray, where: str, decoded: bool = False) -> np.ndarray:
    """``x`` unless it breaks the rules of ``x_train``'s; ``decoded`` images (a folder's) are 0..255 bytes."""
    if x.ndim < 2 or x.shape[1:] != x_train.shape[1:]:
        raise DataError(
            f"{where}: unlabeled examples have shape {x.shape[1:]} but the train examples {x_train.shape[1:]}"
            + ("; set data.image_size to resize them" if x.ndim == 4 else "")
        )
    if x.dtype.kind not in "biuf":
        raise DataError(f"{where}: x_unlabeled has dtype {x.dtype}; expected numbers")
    if x_train.ndim >= 3 and not decoded and (x.dtype.kind == "f") != (x_train.dtype.kind == "f"):
        raise DataError(
            f"{where}: x_unlabeled has dtype {x.dtype} but x_train {x_train.dtype}; "
            "give unlabeled images the pixel encoding of the labeled ones"
        )
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise DataError(f"{where}: x_unlabeled contains NaN or inf")
    if x.ndim >= 3 and len(x) and (x.min() < 0 or x.max() > 255):
        raise DataError(
            f"{where}: x_unlabeled image values span [{x.min()}, {x.max()}]; expected [0, 1] or [0, 255]"
        )
    return x


def _check_class_names(source: Source) -> None:
    if source.class_names is not None:
        num_classes = int(np.max(source.y_train)) + 1
        check_class_names(source.class_names, f"{source.where}: {CLASS_NAMES_KEY}", num_classes)


def _is_npz(path: str) -> bool:
    return str(path).lower().endswith(".npz")


def read_arrays(name: str, path: str | None) -> Arrays:
    """Return the raw ``x_train, y_train, x_test, y_test`` of a dataset, unchecked and unscaled.

    Args:
        name: ``digits``, ``mnist``, ``fashion_mnist`` or ``npz``.
        path: the ``.npz`` to read; required for ``npz``, optional for ``mnist`` / ``fashion_mnist``
            (then ``$LATENTPROBE_DATA_DIR/<name>.npz``, then a Keras download); ignored for ``digits``.
    """
    from types import SimpleNamespace

    cfg = SimpleNamespace(name=name, path=path, image_size=None, color=None, test=0.2)
    return READERS[name](cfg).arrays


def hash_arrays(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    unlabeled: Sequence[np.ndarray] = (),
) -> str:
    """Return the sha256 hex digest of the arrays: per array its dtype, shape, then bytes.

    Each part of ``unlabeled`` follows; data without unlabeled examples keeps the digest of its four.
    """
    digest = hashlib.sha256()
    named = [*zip(KEYS, (x_train, y_train, x_test, y_test), strict=True)]
    named += [("x_unlabeled", x) for x in unlabeled]
    for key, array in named:
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


def _image_scale(name: str, x_train: np.ndarray, x_test: np.ndarray, *unlabeled: np.ndarray) -> float:
    """Return the divisor that maps this dataset's pixels to [0, 1]."""
    if name == "digits":
        return 16.0
    if x_train.dtype.kind in "biu":
        return 255.0
    # Float images: one decision for every split, from the file's encoding ([0, 1] or [0, 255]).
    return 1.0 if max(x.max() for x in (x_train, x_test, *unlabeled) if len(x)) <= 1 else 255.0


def _stored_scale(stored: np.ndarray, scale: float) -> float:
    """The ``Split.scale`` of images as :func:`_scale_image` stored them: bytes keep ``scale``; float
    images were divided already."""
    return scale if stored.dtype == np.uint8 else 1.0


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
    x_train: np.ndarray, x_val: np.ndarray, x_test: np.ndarray, x_unlabeled: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Min-max scale each feature to [0, 1] with the train part's statistics; constant features become 0.

    Validation, test and unlabeled examples use the same statistics, so they are clipped to [0, 1].
    """
    # copy=False: x_train and x_val are already fresh gathers, x_test and x_unlabeled this load's own arrays
    # (an empty x_unlabeled may be a view, but holds nothing to change).
    x_train = x_train.astype(np.float32, copy=False)
    low = x_train.min(axis=0)
    span = x_train.max(axis=0) - low
    varies = span > 0
    scaled = []
    for x in (x_train, *(x.astype(np.float32, copy=False) for x in (x_val, x_test, x_unlabeled))):
        x -= low
        np.divide(x, span, out=x, where=varies)
        x[:, ~varies] = 0.0
        # Clip train too: float32 rounding can land a hair outside [0, 1].
        np.clip(x, 0.0, 1.0, out=x)
        scaled.append(x)
    return scaled[0], scaled[1], scaled[2], scaled[3]
