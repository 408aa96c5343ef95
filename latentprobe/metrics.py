"""Split-level metrics of an autoencoder and its probe, computed in a few large compiled calls.

``train`` (for val/test at the end of a run) and ``eval`` (from the saved models) both call
:func:`measure`, so a run's summary.json and its eval.json agree to the last digit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
from keras import ops

from latentprobe import pixels
from latentprobe.models import losses

#: Examples per compiled call; the MNIST test split is three calls.
CHUNK = 4096


def measure(
    model: Any,
    head: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    autoencoder: bool = True,
    probe: bool = True,
    chunk: int = CHUNK,
    scale: float = 1.0,
) -> dict[str, float]:
    """Mean loss terms (``reconstruction_loss``, variant terms, the model's ``label_metrics``) and probe
    loss/accuracy on (x, y).

    Args:
        model: an :class:`~latentprobe.models.autoencoder.Autoencoder`.
        head: the probe head (codes -> class probabilities).
        x: inputs as a split stores them (uint8 images stay bytes); the model sees ``x / scale``.
        autoencoder / probe: which of the two to measure.
        scale: the split's scale (``Split.scale``).

    Returns:
        Example-weighted means over the whole split, as Python floats.
    """
    fn = _measure_fn(model, head, autoencoder, probe, scale)
    totals: dict[str, float] = {}
    for start in range(0, len(x), chunk):
        xb, yb = x[start : start + chunk], y[start : start + chunk]
        out = fn(tf.convert_to_tensor(xb), tf.convert_to_tensor(yb, tf.int32))
        for name, value in out.items():
            totals[name] = totals.get(name, 0.0) + float(value) * len(xb)
    return {name: total / len(x) for name, total in totals.items()}


def _measure_fn(model: Any, head: Any, autoencoder: bool, probe: bool, scale: float):
    # One traced function per (model, head, what, scale), kept on the model so repeated epochs reuse it.
    cache = model.__dict__.setdefault("_latentprobe_measure", {})
    key = (id(head), autoencoder, probe, scale)
    if key not in cache:
        scale_t = pixels.scale_tensor(scale)  # eager: captured, not a graph constant

        def fn(x, y):
            x = pixels.scale_batch(x, scale_t)
            out = {}
            if autoencoder:
                terms = model.compute_terms(x, training=False)
                out.update({k: v for k, v in terms.items() if k != "loss"})
                out.update(model.label_metrics(x, y))
            if probe:
                probabilities = head(model.probe_features(x, training=False), training=False)
                out["probe_loss"] = ops.mean(losses.classification(y, probabilities))
                out["probe_accuracy"] = ops.mean(losses.correct(y, probabilities))
            return out

        cache[key] = tf.function(fn, reduce_retracing=True)
    return cache[key]


def encode(model: Any, x: np.ndarray, chunk: int = CHUNK, scale: float = 1.0) -> np.ndarray:
    """The probe's features for every row of ``x`` (stored inputs; the model sees ``x / scale``), shape
    (n, latent)."""
    cache = model.__dict__.setdefault("_latentprobe_measure", {})
    key = ("encode", scale)
    if key not in cache:
        scale_t = pixels.scale_tensor(scale)
        cache[key] = tf.function(
            lambda xb: model.probe_features(pixels.scale_batch(xb, scale_t), training=False),
            reduce_retracing=True,
        )
    fn = cache[key]
    parts = [fn(tf.convert_to_tensor(x[s : s + chunk])).numpy() for s in range(0, len(x), chunk)]
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def chance_accuracy(y_labeled: np.ndarray, y_test: np.ndarray, num_classes: int) -> float:
    """Expected test accuracy of guessing at random with the labeled subset's class frequencies.

    For a class-balanced subset this is 1/K whatever the test split's balance.
    """
    p_train = np.bincount(y_labeled, minlength=num_classes) / len(y_labeled)
    p_test = np.bincount(y_test, minlength=num_classes) / len(y_test)
    return float(np.dot(p_train, p_test))
