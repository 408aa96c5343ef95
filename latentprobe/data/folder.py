"""The image-folder reader: a sub-folder per class (``train/`` and ``test/`` inside when the data has its own
test split), and folders of unlabeled images in any layout.

The layout is checked from names alone (:func:`scan_layout`, what ``latentprobe validate`` runs: no
decoding, no TensorFlow); the pixels come from :mod:`latentprobe.data.image_cache`, which decodes each
file once. Class names are the class folders' names, sorted; label k is the k-th name.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from latentprobe.data import image_cache
from latentprobe.data.source import Source
from latentprobe.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_EXPECTED = "png, jpg, jpeg, bmp or gif"


@dataclass(frozen=True)
class Layout:
    """An image folder's files and labels, in a fixed order (class by class, file names sorted).

    ``test_files`` is None when the folder has no ``test/`` sub-folder (the test split is then held out
    of the train files).
    """

    root: Path
    class_names: tuple[str, ...]
    train_files: tuple[Path, ...]
    train_labels: np.ndarray
    test_files: tuple[Path, ...] | None
    test_labels: np.ndarray | None


def scan_layout(path: str | os.PathLike) -> Layout:
    """Read an image folder's layout from its names, without decoding any image.

    Raises:
        DataError: the folder does not exist, a class folder is empty, there is a single class, a file is
            not an image (by its extension), or ``test/`` holds a class that ``train/`` does not.
    """
    root = Path(path)
    if not root.exists():
        raise DataError(f"{root}: no such folder")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (data.name 'folder' reads a folder of class sub-folders)")
    train_dir, test_dir = root / "train", root / "test"
    if test_dir.is_dir() and not train_dir.is_dir():
        raise DataError(f"{root}: has test/ but no train/; put the training images in {train_dir}")
    split = train_dir.is_dir()
    train = _class_folders(train_dir if split else root)
    if len(train) < 2:
        only = f"a single class ({next(iter(train))})" if train else "no class"
        raise DataError(
            f"{train_dir if split else root}: {only}; a probe needs at least 2 class folders of images"
        )
    names = tuple(sorted(train))
    train_files, train_labels = _flatten(train, names)
    test_files = test_labels = None
    if split and test_dir.is_dir():
        test = _class_folders(test_dir)
        unknown = sorted(set(test) - set(names))
        if unknown:
            raise DataError(
                f"{test_dir / unknown[0]}: test class {unknown[0]!r} is not a class of {train_dir} "
                f"(train classes: {', '.join(names)})"
            )
        if not test:
            raise DataError(f"{test_dir}: no class folders of test images")
        test_files, test_labels = _flatten(test, names)
    return Layout(root, names, train_files, train_labels, test_files, test_labels)


def read_folder(cfg: Any) -> Source:
    """``data.name: folder``: the images of ``data.path``, decoded (or read from the cache), as uint8
    (n, H, W, C) with C 1 (grayscale) or 3 (rgb)."""
    layout = scan_layout(cfg.path)
    files = layout.train_files + (layout.test_files or ())
    x = image_cache.load_images(layout.root, files, cfg.image_size, cfg.color)
    n_train = len(layout.train_files)
    if layout.test_files is not None:
        x_train, y_train = x[:n_train], layout.train_labels
        x_test, y_test = x[n_train:], layout.test_labels
    else:
        train_idx, test_idx = hold_out(layout.root, layout.train_files, layout.train_labels, cfg.test)
        x_train, y_train = x[train_idx], layout.train_labels[train_idx]
        x_test, y_test = x[test_idx], layout.train_labels[test_idx]
    return Source(x_train, y_train, x_test, y_test, str(layout.root), class_names=layout.class_names)


def read_unlabeled_folder(path: str | os.PathLike, image_size: Any, color: str | None) -> np.ndarray:
    """Every image under ``path``, in any layout (sub-folders read recursively), as uint8 (n, H, W, C)."""
    root = Path(path)
    return image_cache.load_images(root, list_unlabeled(root), image_size, color)


def list_unlabeled(path: str | os.PathLike) -> tuple[Path, ...]:
    """The image files of an unlabeled folder, found by name (what ``validate`` checks).

    Raises:
        DataError: the folder does not exist, holds no image, or holds a file that is not an image.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder (data.unlabeled: a folder of images, or an .npz)")
    files = _images_under(root)
    if not files:
        raise DataError(f"{root}: no images ({_EXPECTED}) in this folder or below it")
    return tuple(files)


def hold_out(
    root: Path, files: tuple[Path, ...], labels: np.ndarray, fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, test) indices: per class, ``round(fraction * n)`` files (at least one stays in train).

    The choice depends on the file names alone (the files whose names hash lowest), never on a seed: every
    run of a folder tests on the same images, and adding a file moves no other file between the splits.
    """
    ranks = np.array([_name_rank(file.relative_to(root)) for file in files], dtype=object)
    test = []
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        count = min(int(round(fraction * len(members))), len(members) - 1)
        order = sorted(members, key=lambda i: ranks[i])
        test.extend(order[:count])
    test_idx = np.sort(np.asarray(test, dtype=np.int64))
    train_idx = np.setdiff1d(np.arange(len(files), dtype=np.int64), test_idx)
    return train_idx, test_idx


def _name_rank(relative: Path) -> str:
    return hashlib.sha256(relative.as_posix().encode()).hexdigest()


def _class_folders(folder: Path) -> dict[str, list[Path]]:
    """Class name -> its image files; loose files beside the class folders are left alone."""
    classes = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        files = _images_under(entry)
        if not files:
            raise DataError(f"{entry}: empty class folder (no {_EXPECTED} images)")
        classes[entry.name] = files
    if not classes and _images_under(folder, recursive=False):
        raise DataError(
            f"{folder}: holds images but no class folders; put each class's images in a sub-folder "
            "named for the class"
        )
    return classes


def _images_under(folder: Path, recursive: bool = True) -> list[Path]:
    """Image files in ``folder`` (and below), sorted; hidden files and folders skipped.

    Raises:
        DataError: a file that is not an image by its extension.
    """
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            file = Path(dirpath) / name
            if file.suffix.lower() not in IMAGE_EXTENSIONS:
                if not recursive:
                    continue
                raise DataError(f"{file}: not an image (expected {_EXPECTED})")
            found.append(file)
        if not recursive:
            break
    return found


def _flatten(classes: dict[str, list[Path]], names: tuple[str, ...]) -> tuple[tuple[Path, ...], np.ndarray]:
    files, labels = [], []
    for name in sorted(classes):
        files.extend(classes[name])
        labels.extend([names.index(name)] * len(classes[name]))
    return tuple(files), np.asarray(labels, dtype=np.int64)
