"""The array readers: scikit-learn's digits, the Keras datasets (MNIST, Fashion-MNIST) and ``.npz`` files.

Each takes the data config and returns a :class:`Source`; image folders have their own reader in
``folder.py``.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from latentprobe.data.source import Source, one_line
from latentprobe.errors import DataError

KEYS = ("x_train", "y_train", "x_test", "y_test")
UNLABELED_KEY = "x_unlabeled"
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
        return Source(*download_keras(cfg.name), f"keras.datasets.{cfg.name}")
    return read_npz(file)


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
    return Source(*arrays, path, x_unlabeled=unlabeled)


def read_unlabeled_npz(path: str) -> np.ndarray:
    """The ``x_unlabeled`` array of an ``.npz`` that ``data.unlabeled`` names."""
    with _open_npz(path) as npz:
        if UNLABELED_KEY not in npz.files:
            raise DataError(f"{path}: no key {UNLABELED_KEY}; an .npz of unlabeled examples needs it")
        return _read_keys(npz, path, (UNLABELED_KEY,))[0]


def _open_npz(path: str) -> Any:
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
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: not a valid .npz file ({one_line(error)})") from error


def _read_keys(npz: Any, path: str, keys: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    try:
        return tuple(npz[key] for key in keys)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: not a valid .npz file ({one_line(error)})") from error
