"""eval's controls: the features a probe reads when the encoder has learned nothing.

- a randomly initialised model of the run's architecture, its weights drawn from the eval seed;
- the raw inputs projected onto their first ``latent`` principal components (fitted on train).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from latentprobe import components
from latentprobe import data as data_mod
from latentprobe.metrics import encode

#: Train examples the PCA control is fitted on at most (its components barely move beyond this).
PCA_MAX_TRAIN = 10000


def random_encoder_features(cfg: Any, splits: data_mod.Splits, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test latents of an untrained model of the same architecture, its weights from ``seed``.

    The same seed gives the same features whatever the global RNG state, which is left untouched.
    """
    random_model = components.build_model(cfg, splits.input_shape, splits.num_classes, seed=seed)
    return encode(random_model, splits.train.x), encode(random_model, splits.test.x)


def pca_features(splits: data_mod.Splits, latent: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw inputs projected onto their first ``latent`` principal components, fitted on train."""
    from sklearn.decomposition import PCA

    x_train = splits.train.x.reshape(len(splits.train.x), -1)
    x_test = splits.test.x.reshape(len(splits.test.x), -1)
    fit_rows = x_train
    if len(x_train) > PCA_MAX_TRAIN:
        fit_rows = x_train[
            np.random.default_rng([seed, 9]).choice(len(x_train), PCA_MAX_TRAIN, replace=False)
        ]
    n_components = min(latent, *fit_rows.shape)
    pca = PCA(n_components, svd_solver="randomized", random_state=seed).fit(fit_rows)
    return pca.transform(x_train).astype(np.float32), pca.transform(x_test).astype(np.float32)
