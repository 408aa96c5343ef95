"""Decode image files once: a process pool decodes them, a cache keeps the uint8 pixels for later runs.

The cache entry is one ``.npy`` file named for its key: the files (relative names, sizes, modification
times) and the decode options (size, colour, Pillow's version). A changed, added or removed file gives a
new key, so the folder is decoded again and the stale entries are removed. Entries are written to a
temporary file and renamed into place, so workers of a study that load the same folder at once never
read a half-written entry.

Where: ``$LATENTPROBE_CACHE_DIR`` if set; else ``<folder>/.latentprobe-cache/`` if the folder is writable;
else ``~/.cache/latentprobe/`` (``$XDG_CACHE_HOME/latentprobe``).
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from latentprobe.errors import DataError

CACHE_ENV = "LATENTPROBE_CACHE_DIR"
CACHE_FOLDER = ".latentprobe-cache"
#: Bump when the decoded pixels of the same files and options would change.
FORMAT_VERSION = 1
#: Below this many files the process pool costs more than it saves.
POOL_MIN_FILES = 256


def load_images(
    root: Path, files: tuple[Path, ...], image_size: Any = None, color: str | None = None
) -> np.ndarray:
    """The images ``files`` (under ``root``) as one uint8 array (n, H, W, C), from the cache or decoded.

    Args:
        image_size: (H, W) to resize every image to; None: the images' own size (they must all agree).
        color: ``grayscale`` (C = 1) or ``rgb`` (C = 3); None: grayscale unless an image has colour.

    Raises:
        DataError: a file is not an image or is corrupt or truncated, or the sizes differ without
            ``image_size``; the message names the file(s).
    """
    stats = [_stat(file) for file in files]
    files_key = _digest(
        [[file.relative_to(root).as_posix(), *stat] for file, stat in zip(files, stats, strict=True)]
    )
    options = {"version": FORMAT_VERSION, "size": image_size and list(image_size), "color": color}
    options["pillow"] = _pillow_version()
    entry = f"{files_key[:32]}-{_digest(options)[:16]}.npy"
    folder = cache_folder(root)
    cached = _read_entry(folder / entry if folder else None, len(files))
    if cached is not None:
        return cached
    images = decode_files(files, image_size, color)
    if folder is not None:
        _write_entry(folder, entry, images)
    return images


def cache_folder(root: Path) -> Path | None:
    """Where ``root``'s cache entries go (made if missing); None when nowhere is writable."""
    named = os.environ.get(CACHE_ENV)
    own = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:16]
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "latentprobe"
    candidates = [Path(named) / own] if named else [Path(root) / CACHE_FOLDER, home / own]
    for candidate in candidates:
        try:
            candidate.mkdir(parents=True, exist_ok=True)
            if os.access(candidate, os.W_OK):
                return candidate
        except OSError:
            continue
    return None


def decode_files(files: tuple[Path, ...], image_size: Any = None, color: str | None = None) -> np.ndarray:
    """Decode ``files`` on every core of the machine into uint8 (n, H, W, C); see :func:`load_images`."""
    paths = [str(file) for file in files]
    workers = min(_cores(), max(1, len(paths) // POOL_MIN_FILES))
    # A study's worker is a daemon process, which may start none: it decodes alone (the study's parent
    # has usually filled the cache before any worker starts).
    if workers <= 1 or multiprocessing.current_process().daemon:
        decoded = _decode_chunk(paths, image_size, color)
    else:
        size = math.ceil(len(paths) / (workers * 4))
        chunks = [paths[i : i + size] for i in range(0, len(paths), size)]
        # spawn, not fork: the parent may run TensorFlow's threads, which a forked child must not inherit.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            parts = pool.map(_decode_chunk, chunks, [image_size] * len(chunks), [color] * len(chunks))
            decoded = [item for part in parts for item in part]
    for path, item in zip(paths, decoded, strict=True):
        if isinstance(item, str):
            raise DataError(f"{path}: {item}")
    return _stack(paths, decoded, image_size, color)


def _decode_chunk(paths: list[str], image_size: Any, color: str | None) -> list[np.ndarray | str]:
    """Each file's pixels (H, W, C), or the reason it cannot be decoded."""
    return [_decode_one(path, image_size, color) for path in paths]


def _decode_one(path: str, image_size: Any, color: str | None) -> np.ndarray | str:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()  # decodes every byte: a truncated or corrupt file fails here
            palette = image.mode == "P"
            if color is None:
                gray = image.mode in ("1", "L", "LA", "I", "I;16", "F")
                image = image.convert("L" if gray else "RGB")
            else:
                image = image.convert("L" if color == "grayscale" else "RGB")
            if image_size is not None:
                height, width = image_size
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8)
    except UnidentifiedImageError:
        return "not an image (Pillow cannot identify the file)"
    except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError, zlib errors, ...
        text = " ".join(str(error).split()) or type(error).__name__
        return f"corrupt or truncated image ({text})"
    if pixels.ndim == 2:
        pixels = pixels[..., np.newaxis]
    if color is None and palette and _all_gray(pixels):
        pixels = pixels[..., :1]  # a palette image (GIF, PNG-8) whose colours are all gray
    return pixels


def _all_gray(pixels: np.ndarray) -> bool:
    return bool((pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all())


def _stack(paths: list[str], decoded: list[np.ndarray], image_size: Any, color: str | None) -> np.ndarray:
    if image_size is None:
        first = decoded[0].shape[:2]
        for path, pixels in zip(paths, decoded, strict=True):
            if pixels.shape[:2] != first:
                raise DataError(
                    f"{path}: {_size(pixels)} pixels (width x height), but {paths[0]}: {_size(decoded[0])}; "
                    "set data.image_size: [H, W] to resize the images to one size"
                )
    channels = max(pixels.shape[-1] for pixels in decoded)
    out = np.empty((len(decoded), *decoded[0].shape[:2], channels), dtype=np.uint8)
    for i, pixels in enumerate(decoded):
        out[i] = pixels  # a grayscale image among colour ones broadcasts to 3 equal channels
    return out


def _size(pixels: np.ndarray) -> str:
    return f"{pixels.shape[1]}x{pixels.shape[0]}"


def _stat(file: Path) -> tuple[int, int]:
    try:
        stat = file.stat()
    except OSError as error:
        raise DataError(f"{file}: cannot read ({error.strerror})") from None
    return stat.st_size, stat.st_mtime_ns


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, separators=(",", ":")).encode()).hexdigest()


def _read_entry(path: Path | None, count: int) -> np.ndarray | None:
    """A cache entry's images, or None when absent or unusable (it is then rebuilt)."""
    if path is None or not path.is_file():
        return None
    try:
        images = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) != count:
        return None
    return images


def _write_entry(folder: Path, entry: str, images: np.ndarray) -> None:
    """Write atomically, then remove the entries of earlier versions of the files (a different files key).

    A cache that cannot be written is no error: the next run decodes again.
    """
    files_key = entry.split("-")[0]
    try:
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{entry}.", suffix=".tmp")
        with os.fdopen(handle, "wb") as stream:
            np.save(stream, images)
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide the entry from other users of the data
        os.replace(temporary, folder / entry)
    except OSError:
        return
    for stale in folder.glob("*.npy"):
        if not stale.name.startswith(files_key):
            try:
                stale.unlink()
            except OSError:
                pass


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _pillow_version() -> str:
    import PIL

    return PIL.__version__
