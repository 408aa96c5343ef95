"""Statistics of a latent space that need no labels to fit: active units, per-dimension mean and std,
and, for a 2-d latent, the share of the latent area each class occupies.

Variant-specific statistics (a VAE's KL per dimension, a sparse autoencoder's mean activation) come from
the model's ``latent_statistics(x)`` hook and are added by eval under ``variant``.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import KNeighborsClassifier

#: A unit is active when its variance over the data exceeds this (Burda et al., 2016, use 0.01).
ACTIVE_THRESHOLD = 0.01
#: Cells per axis of the grid that the 2-d area share is measured on.
AREA_GRID = 200


def describe_latents(z: np.ndarray, threshold: float = ACTIVE_THRESHOLD) -> dict[str, object]:
    """Per-dimension mean, std and variance of codes ``z`` (n, latent), and the active units.

    Returns:
        ``active_units`` (count), ``active`` (bool per dimension), ``mean``, ``std`` (lists),
        ``active_threshold``.
    """
    z = np.asarray(z, dtype=np.float64)
    variance = z.var(axis=0)
    active = variance > threshold
    return {
        "active_units": int(active.sum()),
        "active_threshold": threshold,
        "active": active.tolist(),
        "mean": z.mean(axis=0).tolist(),
        "std": np.sqrt(variance).tolist(),
    }


def latent_bounds(z: np.ndarray, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """A (2, d) box holding the central mass of ``z``: the ``low``-th and ``high``-th percentiles per axis."""
    lo, hi = np.percentile(z, [low, high], axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return np.stack([lo - 0.05 * span, hi + 0.05 * span])


def class_area_share(
    z_train: np.ndarray, y_train: np.ndarray, num_classes: int, grid: int = AREA_GRID, k: int = 10
) -> dict[str, object]:
    """For a 2-d latent: the share of the latent box each class claims (the VAE notebook's question).

    Every cell of a ``grid`` x ``grid`` mesh over the box holding the train codes' central 98% is given the
    majority class of its ``k`` nearest train codes; a class's share is its fraction of the cells.

    Returns:
        ``share`` (a list per class, summing to 1), ``bounds`` ([[x0, y0], [x1, y1]]), ``grid``.
    """
    if z_train.shape[1] != 2:
        raise ValueError(f"class_area_share needs a 2-d latent, got {z_train.shape[1]} dimensions")
    bounds = latent_bounds(z_train)
    xs = np.linspace(bounds[0, 0], bounds[1, 0], grid)
    ys = np.linspace(bounds[0, 1], bounds[1, 1], grid)
    cells = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    knn = KNeighborsClassifier(n_neighbors=min(k, len(z_train))).fit(z_train, y_train)
    owner = knn.predict(cells)
    share = np.bincount(owner, minlength=num_classes) / len(cells)
    return {"share": share.tolist(), "bounds": bounds.tolist(), "grid": grid}
