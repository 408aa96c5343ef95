"""Inputs as the networks see them: a split's stored values divided by its ``scale``, in [0, 1].

Images stay bytes (uint8) in memory, on the host and on the device; every compiled function that reads a
split (the strategies' epochs, ``metrics.measure`` and ``metrics.encode``) scales the batch it has just
taken with :func:`scale_batch`, so no float32 copy of a split is ever kept. Flat feature vectors and float
images are float32 in [0, 1] already, with scale 1, and pass through unchanged.

The division is the host's: ``uint8 / float32(scale)``, correctly rounded, so a run on bytes computes on
the same float32 inputs as a run on a float32 copy would, to the last bit. For that, ``scale`` reaches a
compiled function as a tensor made outside it (:func:`scale_tensor`): TensorFlow's graph optimiser and XLA
rewrite a division by a graph constant into a multiplication by its reciprocal, which differs in the last
bit for about half of the 256 byte values over 255.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def scale_tensor(scale: float) -> Any:
    """``scale`` as a float32 scalar tensor; make it eagerly (outside any ``tf.function``) and let the
    compiled functions capture it."""
    import tensorflow as tf

    return tf.constant(scale, dtype=tf.float32)


def scale_batch(x: Any, scale: Any) -> Any:
    """A batch of stored inputs (uint8 or float32 tensor) as float32 in [0, 1]: ``x / scale``.

    Args:
        x: a batch gathered from a split, any shape.
        scale: the split's scale from :func:`scale_tensor` (a captured tensor, not a Python number).
    """
    import tensorflow as tf

    if x.dtype == tf.float32 and float(scale) == 1.0:  # scale is eager: readable while tracing
        return x  # features and float images: scaled on the host already
    return tf.cast(x, tf.float32) / scale


def scale_array(x: np.ndarray, scale: float) -> np.ndarray:
    """NumPy's ``x / scale`` as float32: for the few examples shown on the host (image grids, sprites)."""
    if x.dtype == np.float32 and scale == 1.0:
        return x
    return np.divide(x, np.float32(scale), dtype=np.float32)
