"""eval's controls: the features a probe reads when the encoder has learned nothing.

- a randomly initialised model of the run's architecture, its weights drawn from the eval seed;
- the raw inputs projected onto their first ``latent`` principal components (fitted on train);
- the raw inputs themselves (every pixel), the baseline an encoder has to beat to be worth having.

PCA and the raw pixels depend on the data split alone (PCA also on the latent size), not on the run, so
what eval learns from them (probe predictions, clustering) is computed once per split, options and seed,
kept in the process and on disk (:func:`read_cached`, :func:`write_cached`; a folder beside the run or
``$LATENTPROBE_CACHE_DIR``), and reused by every later eval of a run of that split.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from latentprobe import components, pixels
from latentprobe import data as data_mod
from latentprobe.metrics import encode
from latentprobe.models import pretrained

#: Feature sets computed from the data split alone; their results are shared by the runs of a split.
DATA_ONLY = frozenset({"pca", "pixels"})
_REUSED: dict[Any, Any] = {}
#: The environment variable naming the cache folder of the data-only controls' results.
CACHE_ENV = "LATENTPROBE_CACHE_DIR"
CACHE_FOLDER = ".latentprobe-cache"  # the same names as the image folders' pixel cache (data.image_cache)
#: eval's own subfolder of that cache folder.
CACHE_SUBFOLDER = "eval-controls"
#: Part of every cache key: raise it when what is cached, or how it is computed, changes.
CACHE_VERSION = 1

#: Train examples the PCA control is fitted on at most (its components barely move beyond this).
PCA_MAX_TRAIN = 10000


def random_encoder_features(
    cfg: Any, splits: data_mod.Splits, seed: int, model: Any = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """Train and test latents of an untrained model of the same architecture, its weights from ``seed``.

    The same seed gives the same features whatever the global RNG state, which is left untouched. A
    pretrained encoder (``model``) is cloned with fresh weights; None when Keras cannot clone it.
    """
    if isinstance(model, pretrained.PretrainedEncoder):
        return random_features_of(
            model, splits.train.x, splits.test.x, seed, (splits.train.scale, splits.test.scale)
        )
    random_model = components.build_model(cfg, splits.input_shape, splits.num_classes, seed=seed)
    return (
        encode(random_model, splits.train.x, scale=splits.train.scale),
        encode(random_model, splits.test.x, scale=splits.test.scale),
    )


def random_features_of(
    model: pretrained.PretrainedEncoder,
    x_train: np.ndarray,
    x_test: np.ndarray,
    seed: int,
    scales: tuple[float, float] = (1.0, 1.0),
) -> tuple[np.ndarray, np.ndarray] | None:
    """A pretrained encoder's architecture with weights drawn from ``seed``: its train and test codes (of
    ``x_train / scales[0]`` and ``x_test / scales[1]``)."""
    clone = model.reinitialized(seed)
    if clone is None:
        return None
    return encode(clone, x_train, scale=scales[0]), encode(clone, x_test, scale=scales[1])


def pca_features(splits: data_mod.Splits, latent: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw inputs projected onto their first ``latent`` principal components, fitted on train."""
    from sklearn.decomposition import PCA

    x_train, x_test = pixel_features(splits)
    fit_rows = x_train
    if len(x_train) > PCA_MAX_TRAIN:
        fit_rows = x_train[
            np.random.default_rng([seed, 9]).choice(len(x_train), PCA_MAX_TRAIN, replace=False)
        ]
    n_components = min(latent, *fit_rows.shape)
    pca = PCA(n_components, svd_solver="randomized", random_state=seed).fit(fit_rows)
    return pca.transform(x_train).astype(np.float32), pca.transform(x_test).astype(np.float32)


def pixel_features(splits: data_mod.Splits) -> tuple[np.ndarray, np.ndarray]:
    """Train and test inputs flattened to one row of pixels each (float32 in [0, 1], as the encoder reads
    them: a float32 copy of byte images, made for eval's probes)."""
    x_train = pixels.scale_array(splits.train.x, splits.train.scale)
    x_test = pixels.scale_array(splits.test.x, splits.test.scale)
    return x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)


def split_key(splits: data_mod.Splits) -> tuple[str, str]:
    """Identifies a data split: the data's sha256 and which train rows it holds (the run seed decides)."""
    return splits.sha256, hashlib.sha256(np.ascontiguousarray(splits.train_index).tobytes()).hexdigest()


def cache_dir_for(run_dir: Path | None) -> Path | None:
    """Where eval keeps the data-only controls' results: ``eval-controls/`` in ``$LATENTPROBE_CACHE_DIR``
    (the variable that also places the image folders' pixel cache), else in ``.latentprobe-cache/``
    beside the run (in its study directory, shared by the study's runs)."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser() / CACHE_SUBFOLDER
    return None if run_dir is None else Path(run_dir).resolve().parent / CACHE_FOLDER / CACHE_SUBFOLDER


def cache_key(*parts: Any) -> str:
    """A file-name-safe digest of ``parts`` (their ``repr``: strings, numbers, tuples, dataclasses)."""
    import sklearn  # its version: another release may fit the same probe to other numbers

    return hashlib.sha256(repr((CACHE_VERSION, sklearn.__version__, *parts)).encode()).hexdigest()[:32]


def read_cached(directory: Path | None, key: str) -> dict[str, Any] | None:
    """The results stored under ``key`` (:func:`write_cached`), from this process or the disk; None."""
    if key in _REUSED:
        hit = _REUSED[key]
        if directory is not None and not (Path(directory) / f"{key}.npz").is_file():
            # Found in this process for another folder (another study): this folder's later evals read it too.
            write_cached(directory, key, hit["meta"], hit["arrays"])
        return hit
    if directory is None:
        return None
    path = Path(directory) / f"{key}.npz"
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            arrays = {name: npz[name] for name in npz.files if name != "meta"}
    except (OSError, ValueError, KeyError):  # absent, or half-written by a process killed before rename
        return None
    _REUSED[key] = {"meta": meta, "arrays": arrays}
    return _REUSED[key]


def write_cached(
    directory: Path | None, key: str, meta: dict[str, Any], arrays: dict[str, np.ndarray]
) -> None:
    """Keep ``meta`` (JSON) and ``arrays`` under ``key`` in this process and, atomically, on disk.

    Several eval processes (``--jobs N``) may write the same key at once: each writes its own temporary
    file and renames it into place, so a reader sees one whole file or none, and equal keys hold equal
    results. (Two workers that miss at once both compute; nothing waits on a lock.)
    """
    _REUSED[key] = {"meta": meta, "arrays": arrays}
    if directory is None:
        return
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{key}.", suffix=".npz", dir=directory)
        with os.fdopen(handle, "wb") as out:
            np.savez(out, meta=np.array(json.dumps(meta)), **arrays)
        os.replace(temporary, directory / f"{key}.npz")
    except OSError:  # a read-only or full disk: the cache is an optimisation, never a failure
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(temporary)
