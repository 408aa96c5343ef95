"""Random draws inside the compiled training step: Philox, keyed by the model's ``SeedGenerator``.

``keras.random.uniform`` (and ``normal``) call TensorFlow's stateless ops with the automatic algorithm,
which XLA compiles to ThreeFry on a CPU: 100-200 ms for one (100, 784) uniform draw on a 2-core EPYC, 20x
a plain autoencoder's whole step there. The denoising autoencoder's mask is such a draw: an epoch of
10,000 MNIST images (784-256-128-8) took 6.5 s with it against 0.8 s with Philox, asked for by name,
which draws from the same distributions (``tests/test_noise.py`` holds them to account).

The key still comes from the model's ``SeedGenerator`` (a variable in its checkpoint), so a run stays
seeded by its seed and resumes exactly. Use these for draws the size of an input batch; a draw of a few
numbers per example (the VAE's (batch, latent) noise) costs little either way and stays on Keras's, as
does the AAE's input noise (a normal draw; its epoch took the same CPU time with Philox), so their
figures are unchanged.
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
