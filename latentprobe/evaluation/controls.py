"""eval's controls: the features a probe reads when the encoder has learned nothing.

- a randomly initialised model of the run's architecture, its weights drawn from the eval seed;
- the raw inputs projected onto their first ``latent`` principal components (fitted on train);
- the raw inputs themselves (every pixel), the baseline an encoder has to beat to be worth having.

The raw pixels depend on the data split alone, not on the run, so what is learned from them is computed
once per split and options in a process (:func:`reused`) and reused by every run of that split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from latentprobe import components, pixels
from latentprobe import data as data_mod
from latentprobe.metrics import encode
from latentprobe.models import pretrained

T = TypeVar("T")

#: Feature sets computed from the data split alone; their results are shared by the runs of a split.
DATA_ONLY = frozenset({"pixels"})
_REUSED: dict[tuple[Any, ...], Any] = {}

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


def reused(key: tuple[Any, ...], compute: Callable[[], T]) -> T:
    """``compute()``, or its result from an earlier call with the same ``key`` in this process.

    For results of a ``DATA_ONLY`` feature set: ``key`` must name the split and every option they
    depend on. Fitting probes on every pixel takes far longer than on a latent, and would be repeated
    identically for each run of a study.
    """
    if key not in _REUSED:
        _REUSED[key] = compute()
    return _REUSED[key]
