"""Building a run's model from its config, and rebuilding a saved run's (a minimal version for eval).

Replaced at merge by the lead's module of the same name and signatures; eval relies on these contracts:

- ``build_model(cfg, input_shape, num_classes, seed)``: with a seed, the weights are drawn from it and
  Python's ``random``, NumPy's global state and the TensorFlow/Keras global seeds are left as they were;
- ``restore_model(cfg, run_dir, input_shape, num_classes)``: leaves the same global state untouched, and
  rebuilds under the dtype policy the run trained under (summary.json's ``environment.precision``), so
  eval of a mixed-precision run reproduces its summary.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras.src.backend.common import global_state
from keras.src.random import seed_generator
from keras.src.utils import rng_utils
from tensorflow.python.eager import context

from latentprobe import models, rundir
from latentprobe.config import RunConfig
from latentprobe.errors import RunDirError
from latentprobe.models.autoencoder import Autoencoder
from latentprobe.probes import build_optimizer

#: Any seed does for a model whose weights are loaded next; a fixed one keeps global RNGs untouched.
_RESTORE_SEED = 0


def build_model(
    cfg: RunConfig, input_shape: Sequence[int], num_classes: int, seed: int | None = None
) -> Autoencoder:
    """The variant ``cfg.model.kind`` built by the registry and compiled with the configured optimizer.

    Args:
        seed: draw the weights from this seed without touching global RNG state; None draws them from
            the global state (as a run does after seeding everything).
    """
    scope = seeded(seed) if seed is not None else contextlib.nullcontext()
    with scope:
        model = models.build(cfg.model, cfg.model.latent, input_shape, num_classes)
        model.compile(optimizer=build_optimizer(cfg.train.optimizer, cfg.train.learning_rate))
    return model


def restore_model(
    cfg: RunConfig, run_dir: Path, input_shape: Sequence[int], num_classes: int
) -> tuple[Autoencoder, keras.Model]:
    """A saved run's model (weights from encoder.keras/decoder.keras) and its probe head (probe.keras).

    Raises:
        RunDirError: naming the file, when a saved model cannot be loaded.
    """
    run_dir = Path(run_dir)
    summary = rundir.read_json(run_dir / rundir.SUMMARY)
    policy = (summary.get("environment") or {}).get("precision") or "float32"
    with _dtype_policy(policy):
        model = build_model(cfg, input_shape, num_classes, seed=_RESTORE_SEED)
        _load_weights(model.encoder, run_dir / rundir.ENCODER)
        _load_weights(model.decoder, run_dir / rundir.DECODER)
    with seeded(_RESTORE_SEED):  # deserialising builds layers, whose initialisers draw seeds
        head = _load(run_dir / rundir.PROBE)
    return model, head


def _load_weights(network: keras.Model, path: Path) -> None:
    try:
        network.load_weights(path)
    except Exception as exc:  # a truncated or foreign file: say which, not a Keras traceback
        raise RunDirError(f"{path}: cannot load the saved model ({type(exc).__name__}: {exc})") from None


def _load(path: Path) -> keras.Model:
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:
        raise RunDirError(f"{path}: cannot load the saved model ({type(exc).__name__}: {exc})") from None


@contextlib.contextmanager
def _dtype_policy(name: str) -> Iterator[None]:
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed Python, NumPy, TensorFlow and Keras with ``seed`` inside; restore their global state after."""
    python_state = random.getstate()
    numpy_state = np.random.get_state()
    keras_seed = global_state.get_global_attribute(rng_utils.GLOBAL_RANDOM_SEED)
    keras_generator = global_state.get_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR)
    tf_seed = context.global_seed()
    keras.utils.set_random_seed(seed)
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, keras_seed)
        global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, keras_generator)
        tf.random.set_seed(tf_seed)
