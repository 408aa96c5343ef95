"""Random draws inside the compiled training step: Philox, keyed by the model's ``SeedGenerator``.

``keras.random.uniform`` and ``normal`` call TensorFlow's stateless ops leaving the algorithm to TensorFlow
("auto_select"), and XLA on a CPU compiles that path far slower than the same ops with Philox named: one
(100, 784) uniform draw took 100-200 ms against about 5 ms, on a 2-core EPYC under load. The draws are
the same bits either way (``tests/test_noise.py``), so results do not change. The denoising
autoencoder's mask is such a draw: an epoch of 10,000 MNIST images (784-256-128-8) took 6.5 s with
Keras's call and 0.8 s with this one; the probe-table study's dae runs went from 460-1240 s to 72-77 s
each, with the same test accuracies to the last digit.

The key comes from the model's ``SeedGenerator`` (a variable in its checkpoint) exactly as Keras takes
it, so a run stays seeded by its seed and resumes exactly.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


def _key(seed_generator: keras.random.SeedGenerator):
    # The generator's state is int64 (a TF device-placement constraint); stateless ops under XLA want
    # int32 seeds: fold it the way Keras's own TensorFlow backend does.
    seed = seed_generator.next()
    return tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)


def normal(shape: Any, seed_generator: keras.random.SeedGenerator, dtype: str = "float32"):
    """Standard normal draws of ``shape``."""
    return tf.random.stateless_normal(shape, seed=_key(seed_generator), dtype=dtype, alg="philox")


def uniform(shape: Any, seed_generator: keras.random.SeedGenerator, dtype: str = "float32"):
    """Uniform draws in [0, 1) of ``shape``."""
    return tf.random.stateless_uniform(shape, seed=_key(seed_generator), dtype=dtype, alg="philox")
