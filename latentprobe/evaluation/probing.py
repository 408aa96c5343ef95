"""Offline probes on fixed features: linear, MLP and kNN classifiers, k-means clustering accuracy and NMI.

Everything is fitted on train features only and scored on test. Features are standardised with the
statistics of the probe's own training subset, so latents of any scale are read the same way.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, normalized_mutual_info_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

PROBES = ("linear", "mlp", "knn")


@dataclass(frozen=True)
class ProbeSettings:
    """How the offline probes are fitted (eval's options)."""

    k: int = 10  # kNN neighbours
    mlp_hidden: tuple[int, ...] = (64,)
    knn_max_train: int = 10000  # kNN reference points at most (a seeded subsample above it)
    kmeans_max_train: int = 10000  # k-means is fitted on at most this many train latents
    seed: int = 0


def build_probe(kind: str, n_train: int, settings: ProbeSettings):
    """An unfitted scikit-learn classifier (with standardisation) for probe ``kind``."""
    if kind == "linear":
        model = LogisticRegression(max_iter=200)  # multinomial softmax regression
    elif kind == "mlp":
        # Passes over the data shrink as it grows: ~600k example-updates, between 10 and 200 epochs.
        epochs = int(min(200, max(10, math.ceil(600_000 / max(n_train, 1)))))
        model = MLPClassifier(settings.mlp_hidden, max_iter=epochs, random_state=settings.seed)
    elif kind == "knn":
        model = KNeighborsClassifier(n_neighbors=min(settings.k, n_train))
    else:
        raise ValueError(f"unknown probe {kind!r}; expected one of {PROBES}")
    return make_pipeline(StandardScaler(), model)


def fit_predict(
    kind: str, z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, settings: ProbeSettings
) -> np.ndarray:
    """Fit probe ``kind`` on (z_train, y_train) and return its class predictions for ``z_test``."""
    if kind == "knn" and len(z_train) > settings.knn_max_train:
        keep = np.random.default_rng([settings.seed, 7]).choice(
            len(z_train), settings.knn_max_train, replace=False
        )
        z_train, y_train = z_train[keep], y_train[keep]
    if len(np.unique(y_train)) < 2:  # a one-class subset: sklearn refuses; the answer is that class
        return np.full(len(z_test), y_train[0])
    model = build_probe(kind, len(z_train), settings)
    with warnings.catch_warnings():
        # Capped iterations are a deliberate time bound, not a problem to report per fit.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(z_train.astype(np.float64), y_train)
    return model.predict(z_test.astype(np.float64))


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
