"""The array readers: scikit-learn's digits, the Keras datasets (MNIST, Fashion-MNIST) and ``.npz`` files.

Each takes the data config and returns a :class:`Source`; image folders have their own reader in
``folder.py``.
"""

from __future__ import annotations

import dataclasses
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from latentprobe.data.source import Source, one_line
from latentprobe.errors import DataError

KEYS = ("x_train", "y_train", "x_test", "y_test")
UNLABELED_KEY = "x_unlabeled"
#: An npz's optional key: the name of each class 0..K-1 (strings, unique, non-empty).
CLASS_NAMES_KEY = "class_names"
#: Fashion-MNIST's item names, by label (keras.datasets.fashion_mnist's documentation).
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DATA_DIR_ENV = "LATENTPROBE_DATA_DIR"


def read_digits(cfg: Any) -> Source:
    """scikit-learn's bundled 8x8 digits with a fixed split, the same test set for every seed."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    # Pixel values are the integers 0..16; uint8 keeps the raw arrays (and their hash) compact and exact.
    x = digits.images.astype(np.uint8)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    return Source(x_train, y_train, x_test, y_test, "digits")


def read_keras_dataset(cfg: Any) -> Source:
    """MNIST or Fashion-MNIST: ``data.path``, else ``$LATENTPROBE_DATA_DIR/<name>.npz``, else a download."""
    file = find_file(cfg.name, cfg.path)
    if file is None:
        source = Source(*download_keras(cfg.name), f"keras.datasets.{cfg.name}")
    else:
        source = read_npz(file)
    if source.class_names is None and cfg.name == "fashion_mnist":
        num_classes = int(np.max(source.y_train)) + 1 if len(source.y_train) else 0
        if num_classes == len(FASHION_MNIST_CLASSES):
            source = dataclasses.replace(source, class_names=FASHION_MNIST_CLASSES)
    return source


def read_npz_source(cfg: Any) -> Source:
    """An ``.npz`` with ``x_train, y_train, x_test, y_test`` (and optionally ``x_unlabeled``)."""
    if not cfg.path:
        raise DataError("data.path is required when data.name is 'npz'")
    return read_npz(cfg.path)


def find_file(name: str, path: str | None) -> str | None:
    """Return the file to read for a Keras dataset: ``path``, else one in $LATENTPROBE_DATA_DIR, else None."""
    if path:
        return path
    data_dir = os.environ.get(DATA_DIR_ENV)
    if data_dir:
        candidate = Path(data_dir) / f"{name}.npz"
        if candidate.is_file():
            return str(candidate)
    return None


def download_keras(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return a Keras dataset through ``keras.datasets`` (downloads on first use)."""
    import keras  # lazily: importing it starts TensorFlow, which most data paths never need

    try:
        (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    except Exception as error:  # a download raises any of several errors; all mean the same to the user
        raise DataError(
            f"downloading {name} with keras.datasets failed ({one_line(error)}); "
            f"set data.path or ${DATA_DIR_ENV} to a folder holding {name}.npz"
        ) from error
    return x_train, y_train, x_test, y_test


def read_npz(path: str) -> Source:
    """The arrays of an ``.npz`` file, or a ``DataError`` naming the file and the problem."""
    with _open_npz(path) as npz:
        missing = [key for key in KEYS if key not in npz.files]
        if missing:
            raise DataError(f"{path}: missing key(s) {', '.join(missing)}; an .npz needs {', '.join(KEYS)}")
        arrays = _read_keys(npz, path, KEYS)
        unlabeled = _read_keys(npz, path, (UNLABELED_KEY,))[0] if UNLABELED_KEY in npz.files else None
        names = _read_class_names(npz, path) if CLASS_NAMES_KEY in npz.files else None
    return Source(*arrays, path, class_names=names, x_unlabeled=unlabeled)


def read_class_names(name: str, path: str | None, num_classes: int) -> tuple[str, ...]:
    """Return the name of each class 0..K-1.

    An npz file's ``class_names`` array wins (it must hold K unique, non-empty strings); else
    Fashion-MNIST's item names; else ``"0".."K-1"``.

    Raises:
        DataError: the file's ``class_names`` is not K unique, non-empty strings.
    """
    if name != "digits" and path and Path(path).is_file():
        with _open_npz(path) as npz:
            if CLASS_NAMES_KEY in npz.files:
                names = _read_class_names(npz, path)
                return check_class_names(names, f"{path}: {CLASS_NAMES_KEY}", num_classes)
    if name == "fashion_mnist" and num_classes == len(FASHION_MNIST_CLASSES):
        return FASHION_MNIST_CLASSES
    return tuple(str(k) for k in range(num_classes))


def check_class_names(names: tuple[str, ...], where: str, num_classes: int) -> tuple[str, ...]:
    """``names`` unless they are not K unique, non-empty strings; ``where`` starts the error's message."""
    if len(names) != num_classes:
        raise DataError(
            f"{where} has {len(names)} names but the labels have {num_classes} classes (0..{num_classes - 1})"
        )
    empty = [k for k, n in enumerate(names) if not n.strip()]
    if empty:
        raise DataError(f"{where}: the name of class {empty[0]} is empty")
    seen: dict[str, int] = {}
    for k, n in enumerate(names):
        if n in seen:
            raise DataError(f"{where}: classes {seen[n]} and {k} have the same name {n!r}")
        seen[n] = k
    return names


def _read_class_names(npz: Any, path: str) -> tuple[str, ...]:
    """An npz's ``class_names`` as strings (their count and values are checked with the labels)."""
    where = f"{path}: {CLASS_NAMES_KEY}"
    try:
        names = npz[CLASS_NAMES_KEY]
    except ValueError as error:  # an object array (pickled Python objects) that allow_pickle refuses
        raise DataError(f"{where} must be an array of strings ({one_line(error)})") from None
    if names.dtype.kind not in "US" or names.ndim != 1:
        raise DataError(
            f"{where} must be a 1-d array of strings; got dtype {names.dtype}, shape {names.shape}"
        )
    if names.dtype.kind == "S":
        try:
            names = np.char.decode(names, "utf-8")
        except UnicodeDecodeError as error:
            raise DataError(f"{where} holds bytes that are not UTF-8 ({error.reason})") from None
    return tuple(str(n) for n in names)


def read_unlabeled_npz(path: str) -> np.ndarray:
    """The ``x_unlabeled`` array of an ``.npz`` that ``data.unlabeled`` names."""
    with _open_npz(path) as npz:
        if UNLABELED_KEY not in npz.files:
            raise DataError(f"{path}: no key {UNLABELED_KEY}; an .npz of unlabeled examples needs it")
        return _read_keys(npz, path, (UNLABELED_KEY,))[0]


def check_npz(path: str, keys: tuple[str, ...] = KEYS) -> None:
    """Check, without reading an array, that ``path`` is an ``.npz`` holding ``keys`` (for ``validate``).

    Raises:
        DataError: naming the file: missing, a folder, not an .npz, or without one of the keys.
    """
    with _open_npz(path) as npz:
        missing = [key for key in keys if key not in npz.files]
    if missing:
        raise DataError(f"{path}: missing key(s) {', '.join(missing)}; an .npz needs {', '.join(keys)}")


def _open_npz(path: str) -> Any:
    file = Path(path)
    if not file.exists():
        raise DataError(f"{path}: no such file")
    if file.is_dir():
        raise DataError(f"{path}: a folder, not an .npz file (a folder of images is data.name 'folder')")
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
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: not a valid .npz file ({one_line(error)})") from error


def _read_keys(npz: Any, path: str, keys: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    try:
        return tuple(npz[key] for key in keys)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: not a valid .npz file ({one_line(error)})") from error
