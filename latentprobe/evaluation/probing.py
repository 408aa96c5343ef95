"""Offline probes on fixed features: linear, MLP and kNN classifiers, k-means clustering accuracy and NMI.

Everything is fitted on train features only and scored on test. Features are standardised with the
statistics of the probe's own training subset, so latents of any scale are read the same way.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, normalized_mutual_info_score
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

PROBES = ("linear", "mlp", "knn")

#: The regularisation each probe tunes, by its name in eval.json's ``chosen``.
TUNED = {"linear": "C", "knn": "k", "mlp": "alpha"}
#: The untuned probes' settings: what eval used before it tuned (``--no-tune`` keeps them).
FIXED_LINEAR_C = 1.0
FIXED_LINEAR_MAX_ITER = 200
FIXED_MLP_ALPHA = 1e-4  # scikit-learn's default


@dataclass(frozen=True)
class ProbeSettings:
    """How the offline probes are fitted (eval's options).

    With ``tune`` each probe picks its regularisation (linear: C, kNN: k, MLP: L2 alpha) from its grid by
    stratified k-fold cross-validation on the labels it is given (:func:`fit_probe`); without, it uses
    the fixed settings eval used before (C = 1 with 200 iterations, ``k``, alpha 1e-4).
    """

    k: int = 10  # kNN neighbours when not tuned
    mlp_hidden: tuple[int, ...] = (64,)
    knn_max_train: int = 10000  # kNN reference points at most (a seeded subsample above it)
    kmeans_max_train: int = 10000  # k-means is fitted on at most this many train latents
    seed: int = 0
    tune: bool = True
    folds: int = 5  # at most; fewer when a class has fewer labels (see tuning_folds)
    mlp_folds: int = 3  # the MLP's fits are the dear ones
    tune_max_train: int = 2000  # cross-validate on a stratified subsample of at most this many labels
    mlp_tune_max_train: int = 1000
    mlp_tune_updates: int = 100_000  # example-updates of one MLP fit while tuning, at most
    linear_max_iter: int = 1000  # L-BFGS iterations of a tuned linear probe
    linear_cs: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
    knn_ks: tuple[int, ...] = (1, 3, 5, 10, 20, 50)
    mlp_alphas: tuple[float, ...] = (1e-4, 1e-2, 1.0)


@dataclass(frozen=True)
class ProbeFit:
    """One probe fitted on one labeled subset.

    Attributes:
        prediction: its class predictions for the test features.
        chosen: the regularisation it was fitted with (``{"C": 0.1}``, ``{"k": 5}``, ``{"alpha": 0.01}``).
        converged: whether the final fit converged (None for kNN, which has no iterations).
        n_iter: iterations (linear: L-BFGS; MLP: epochs) of the final fit.
        tuning: how ``chosen`` was picked: ``folds``, ``examples`` (the labels cross-validated on),
            ``scores`` (mean validation accuracy per grid value); or ``reason`` when it was not tuned.
    """

    prediction: np.ndarray
    chosen: dict[str, float | int]
    converged: bool | None
    n_iter: int | None
    tuning: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        """What eval.json records of the fit (everything but the predictions)."""
        return {
            "chosen": self.chosen,
            "converged": self.converged,
            "n_iter": self.n_iter,
            "tuning": self.tuning,
        }


def mlp_epochs(n_train: int) -> int:
    """Passes over the data shrink as it grows: ~600k example-updates, between 10 and 200 epochs."""
    return int(min(200, max(10, math.ceil(600_000 / max(n_train, 1)))))


def build_probe(kind: str, n_train: int, settings: ProbeSettings, value: float | None = None):
    """An unfitted classifier for probe ``kind`` (without standardisation), regularised by ``value``
    (C, k or alpha; None: the untuned setting)."""
    if kind == "linear":
        if value is None:
            return LogisticRegression(C=FIXED_LINEAR_C, max_iter=FIXED_LINEAR_MAX_ITER)
        return LogisticRegression(C=float(value), max_iter=settings.linear_max_iter)
    if kind == "mlp":
        alpha = FIXED_MLP_ALPHA if value is None else float(value)
        return MLPClassifier(
            settings.mlp_hidden, alpha=alpha, max_iter=mlp_epochs(n_train), random_state=settings.seed
        )
    if kind == "knn":
        k = settings.k if value is None else int(value)
        return KNeighborsClassifier(n_neighbors=max(1, min(k, n_train)))
    raise ValueError(f"unknown probe {kind!r}; expected one of {PROBES}")


def fit_predict(
    kind: str, z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, settings: ProbeSettings
) -> np.ndarray:
    """Fit probe ``kind`` on (z_train, y_train) and return its class predictions for ``z_test``."""
    return fit_probe(kind, z_train, y_train, z_test, settings).prediction


def fit_probe(
    kind: str, z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, settings: ProbeSettings
) -> ProbeFit:
    """Fit probe ``kind`` on (z_train, y_train), its regularisation tuned if ``settings.tune``.

    Features are standardised with the statistics of ``z_train``. Tuning never sees ``z_test``: the
    grid value with the best mean accuracy over stratified folds of (a subsample of) the labeled rows is
    chosen (ties: the first in the grid), then the probe is refitted on every labeled row.
    """
    if kind not in PROBES:
        raise ValueError(f"unknown probe {kind!r}; expected one of {PROBES}")
    if kind == "knn" and len(z_train) > settings.knn_max_train:
        keep = np.random.default_rng([settings.seed, 7]).choice(
            len(z_train), settings.knn_max_train, replace=False
        )
        z_train, y_train = z_train[keep], y_train[keep]
    if len(np.unique(y_train)) < 2:  # a one-class subset: sklearn refuses; the answer is that class
        fixed = {"linear": FIXED_LINEAR_C, "knn": settings.k, "mlp": FIXED_MLP_ALPHA}[kind]
        return ProbeFit(
            np.full(len(z_test), y_train[0]), {TUNED[kind]: fixed}, None, None, {"reason": "one class"}
        )
    # Tuned probes compute in float32 (scikit-learn keeps it): 2.5-3x faster on 784 pixels here. Untuned
    # ones keep float64, and so the numbers eval gave before it tuned.
    dtype = np.float32 if settings.tune else np.float64
    scaler = StandardScaler().fit(z_train.astype(dtype))
    x_train = scaler.transform(z_train.astype(dtype))
    x_test = scaler.transform(z_test.astype(dtype))
    value, tuning, subsample = (None, {"reason": "--no-tune"}, None)
    if settings.tune:
        value, tuning, subsample = tune(kind, x_train, y_train, settings)
        if kind == "mlp" and value is not None and subsample is not None:
            # scikit-learn's alpha is a penalty per example of a batch: held fixed, a larger set would be
            # regularised as hard as its small subsample. Scaled by m / n, the total penalty stays the
            # one chosen (as the linear probe's fixed C does: its penalty is not per example).
            value = float(value) * len(subsample[1]) / len(y_train)
            tuning["alpha_scaled_by"] = len(subsample[1]) / len(y_train)
    model = build_probe(kind, len(x_train), settings, value)
    if kind == "linear" and value is not None and subsample is not None:
        # Start from the optimum on the tuning subsample: the same convex problem, fewer L-BFGS steps.
        start = build_probe(kind, len(subsample[0]), settings, value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            start.fit(*subsample)
        model.set_params(warm_start=True)
        model.coef_, model.intercept_ = start.coef_.copy(), start.intercept_.copy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(x_train, y_train)
    prediction = model.predict(x_test)
    if kind == "knn":
        return ProbeFit(prediction, {"k": int(model.n_neighbors)}, None, None, tuning)
    n_iter = int(np.max(model.n_iter_))
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    chosen = {"C": float(model.C)} if kind == "linear" else {"alpha": float(model.alpha)}
    return ProbeFit(prediction, chosen, converged, n_iter, tuning)


def fit_timed(
    key: Any, kind: str, z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, settings: ProbeSettings
) -> tuple[Any, ProbeFit, tuple[float, float]]:
    """:func:`fit_probe` with one BLAS thread, returning ``(key, fit, (wall seconds, CPU seconds))``.

    What eval's probe worker processes run: this module imports scikit-learn alone, so a worker starts
    without TensorFlow.
    """
    from threadpoolctl import threadpool_limits

    started, cpu = time.perf_counter(), time.process_time()
    with threadpool_limits(1):
        fit = fit_probe(kind, z_train, y_train, z_test, settings)
    return key, fit, (time.perf_counter() - started, time.process_time() - cpu)


def tuning_folds(y: np.ndarray, folds: int) -> int:
    """Folds for stratified cross-validation of labels ``y``: ``folds``, fewer when the smallest class
    has fewer members (each fold must hold one of every class), 0 when it has fewer than 2."""
    smallest = int(np.min(np.bincount(y)[np.unique(y)]))
    return min(folds, smallest) if smallest >= 2 else 0


def tune(
    kind: str, x: np.ndarray, y: np.ndarray, settings: ProbeSettings
) -> tuple[float | int | None, dict[str, Any], tuple[np.ndarray, np.ndarray] | None]:
    """Pick probe ``kind``'s regularisation by stratified k-fold cross-validation on (x, y) alone.

    Above ``tune_max_train`` labels (``mlp_tune_max_train`` for the MLP) the folds are drawn from a
    stratified, seeded subsample. Returns the chosen value (None: the untuned one, when a class has
    fewer than 2 labels), how it was chosen, and the subsample (x, y) when one was drawn.
    """
    limit = settings.mlp_tune_max_train if kind == "mlp" else settings.tune_max_train
    subsample = None
    if len(y) > limit:
        keep, _ = next(StratifiedShuffleSplit(1, train_size=limit, random_state=settings.seed).split(x, y))
        x, y = x[keep], y[keep]
        subsample = (x, y)
    folds = tuning_folds(y, settings.mlp_folds if kind == "mlp" else settings.folds)
    if folds < 2:
        return None, {"reason": "a class has fewer than 2 labels", "examples": len(y)}, None
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=settings.seed).split(x, y))
    if kind == "linear":
        grid, scores = _cv_linear(x, y, splits, settings)
    elif kind == "knn":
        grid, scores = _cv_knn(x, y, splits, settings)
    else:
        grid, scores = _cv_mlp(x, y, splits, settings)
    best = int(np.argmax(scores))  # the first of equal scores: the most regularised C, the smallest k/alpha
    scored = {_grid_name(v): float(s) for v, s in zip(grid, scores, strict=True)}
    return grid[best], {"folds": folds, "examples": len(y), "scores": scored}, subsample


def _grid_name(value: float | int) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _cv_linear(x, y, splits, settings) -> tuple[list[float], np.ndarray]:
    """Mean fold accuracy per C; along each fold's path of increasing C, each fit starts from the last."""
    grid = sorted(settings.linear_cs)
    scores = np.zeros(len(grid))
    for train, val in splits:
        model = LogisticRegression(max_iter=settings.linear_max_iter, warm_start=True)
        for i, c in enumerate(grid):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # reported for the final fit only
                model.set_params(C=c).fit(x[train], y[train])
            scores[i] += np.mean(model.predict(x[val]) == y[val]) / len(splits)
    return grid, scores


def _cv_knn(x, y, splits, settings) -> tuple[list[int], np.ndarray]:
    """Mean fold accuracy per k, k at most the smallest class's count in any training fold; one
    neighbour search per fold serves every k."""
    smallest = min(int(np.min(np.bincount(y[train])[np.unique(y)])) for train, _ in splits)
    grid = sorted(k for k in settings.knn_ks if k <= smallest) or [1]
    num_classes = int(y.max()) + 1
    scores = np.zeros(len(grid))
    for train, val in splits:
        search = KNeighborsClassifier(n_neighbors=grid[-1]).fit(x[train], y[train])
        neighbours = y[train][search.kneighbors(x[val], return_distance=False)]  # (val, max k)
        for i, k in enumerate(grid):
            votes = np.zeros((len(val), num_classes))
            np.add.at(votes, (np.arange(len(val))[:, None], neighbours[:, :k]), 1)
            scores[i] += np.mean(np.argmax(votes, axis=1) == y[val]) / len(splits)
    return grid, scores


def _cv_mlp(x, y, splits, settings) -> tuple[list[float], np.ndarray]:
    """Mean fold accuracy per L2 alpha, each fold's fit as long as a final fit of its size, at most
    ``mlp_tune_updates`` example-updates."""
    grid = sorted(settings.mlp_alphas)
    scores = np.zeros(len(grid))
    for train, val in splits:
        epochs = max(1, min(mlp_epochs(len(train)), settings.mlp_tune_updates // len(train)))
        for i, alpha in enumerate(grid):
            model = build_probe("mlp", len(train), settings, alpha).set_params(max_iter=epochs)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(x[train], y[train])
            scores[i] += np.mean(model.predict(x[val]) == y[val]) / len(splits)
    return grid, scores


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of correct predictions."""
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> list[float | None]:
    """Recall of each class 0..K-1 (None for a class absent from ``y_true``)."""
    out: list[float | None] = []
    for k in range(num_classes):
        members = y_true == k
        out.append(float(np.mean(y_pred[members] == k)) if members.any() else None)
    return out


def confusion(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts, rows the true class, columns the predicted one."""
    return confusion_matrix(y_true, y_pred, labels=np.arange(num_classes))


def match_clusters(y_true: np.ndarray, clusters: np.ndarray) -> dict[int, int]:
    """The one-to-one cluster -> class mapping with most agreements (Hungarian algorithm)."""
    classes, cluster_ids = np.unique(y_true), np.unique(clusters)
    counts = np.zeros((len(cluster_ids), len(classes)), dtype=np.int64)
    np.add.at(counts, (np.searchsorted(cluster_ids, clusters), np.searchsorted(classes, y_true)), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return {int(cluster_ids[r]): int(classes[c]) for r, c in zip(rows, cols, strict=True)}


def cluster_accuracy(
    y_true: np.ndarray, clusters: np.ndarray, mapping: dict[int, int] | None = None
) -> float:
    """Accuracy of ``clusters`` read as classes through ``mapping`` (the best one for ``y_true`` if None).

    A cluster without a mapped class counts as wrong.
    """
    if mapping is None:
        mapping = match_clusters(y_true, clusters)
    predicted = np.array([mapping.get(int(c), -1) for c in clusters])
    return accuracy(y_true, predicted)


def score_clustering(
    z_train: np.ndarray,
    y_train: np.ndarray,
    z_test: np.ndarray,
    y_test: np.ndarray,
    num_classes: int,
    settings: ProbeSettings,
) -> dict[str, float]:
    """k-means with K clusters fitted on train latents; accuracy and NMI on test.

    The cluster -> class matching is made on the train latents' labels, so the test split only scores.
    """
    rng = np.random.default_rng([settings.seed, 8])
    if len(z_train) > settings.kmeans_max_train:
        keep = rng.choice(len(z_train), settings.kmeans_max_train, replace=False)
        z_train, y_train = z_train[keep], y_train[keep]
    scaler = StandardScaler().fit(z_train)
    kmeans = KMeans(num_classes, n_init=3, random_state=settings.seed).fit(scaler.transform(z_train))
    mapping = match_clusters(y_train, kmeans.labels_)
    test_clusters = kmeans.predict(scaler.transform(z_test))
    return {
        "kmeans_accuracy": cluster_accuracy(y_test, test_clusters, mapping),
        "nmi": float(normalized_mutual_info_score(y_test, test_clusters)),
    }
