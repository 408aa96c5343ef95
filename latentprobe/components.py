"""A run's parts built from its config: the one place that wires model, optimizer, probe head, Probe and
strategy, used by ``train``, ``eval``, the benchmarks and the tests.

Data flows config -> :func:`build_components` -> ``Strategy.run()``; eval rebuilds a saved run with
:func:`restore_model` (the registry builds the architecture, the saved files give the weights).
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from latentprobe import config as config_mod
from latentprobe import models, rundir
from latentprobe import schedules as schedules_mod
from latentprobe.config import RunConfig
from latentprobe.errors import ConfigError, RunDirError
from latentprobe.models import pretrained
from latentprobe.models.autoencoder import Autoencoder
from latentprobe.strategies import STRATEGIES, Probe, Strategy, build_head, build_optimizer

# Independent NumPy streams drawn from a run's seed ([seed, stream]); data.py uses 0-2 for its own.
STREAM_BATCHES = 2  # the strategy's batch order
STREAM_MODEL = 3  # the model's own noise and samples (keras SeedGenerator)


@dataclass
class Components:
    """Everything a run trains: the autoencoder, the probe head, its optimizer wrapper, the strategy."""

    model: Autoencoder
    head: keras.Model
    probe: Probe
    strategy: Strategy
    # "train" and "probe": each block's learning-rate schedule (latentprobe.schedules.plan).
    schedules: dict[str, schedules_mod.BlockSchedule] = field(default_factory=dict)


def derived_seed(seed: int, stream: int) -> int:
    """A 31-bit seed for one purpose (``stream``), drawn from the run's seed without any global RNG."""
    return int(np.random.default_rng([seed, stream]).integers(2**31 - 1))


@contextlib.contextmanager
def isolated_python_random(seed: int) -> Iterator[None]:
    """Seed Python's ``random`` (what Keras initializers draw from) for a block, then restore it."""
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


def build_model(
    cfg: RunConfig,
    input_shape: Sequence[int],
    num_classes: int,
    seed: int | None = None,
    schedule: schedules_mod.BlockSchedule | None = None,
) -> Autoencoder:
    """The variant ``cfg.model.kind`` through the registry, compiled with its optimizer (slots built).

    Args:
        seed: draw the initial weights from this seed, leaving every global RNG as it was (eval's
            random-encoder control). None: draw from the global state the run seeded (``train``).
        schedule: ``train``'s learning-rate schedule; None: the constant ``train.learning_rate``.
    """
    model_seed = derived_seed(cfg.seed if seed is None else seed, STREAM_MODEL)
    context = contextlib.nullcontext() if seed is None else isolated_python_random(seed)
    with context:
        model = models.build(cfg.model, cfg.model.latent, input_shape, num_classes, seed=model_seed)

    def optimizer(base: float) -> keras.optimizers.Optimizer:
        rate = schedule.learning_rate(base) if schedule is not None else base
        return build_optimizer(cfg.train.optimizer, rate)

    model.compile(optimizer=optimizer(cfg.train.learning_rate))
    networks = [n for n in (model.encoder, model.decoder) if n is not None]  # a pretrained may lack one
    model.optimizer.build([v for network in networks for v in network.trainable_variables])
    # A variant with optimizers of its own (the AAE's phases): train.optimizer's kind and settings and
    # train.schedule's shape, each at its own base rate.
    rates = getattr(model, "phase_learning_rates", None)
    if rates is not None:
        model.use_phase_optimizers({phase: optimizer(base) for phase, base in rates.items()})
    return model


def build_components(cfg: RunConfig, splits: Any) -> Components:
    """Build a run's parts for ``splits`` (a :class:`latentprobe.data.Splits`).

    The autoencoder trains on ``splits.train`` followed by ``splits.unlabeled`` (label -1, never read:
    ``labeled_idx`` points into the ``train`` rows, which come first), so the probe and a variant that
    ``uses_labels`` see labeled examples only, while the autoencoder's batches draw from both.
    """
    x_train, y_train = autoencoder_inputs(splits)
    return assemble(
        cfg,
        x_train,
        y_train,
        splits.labeled_idx,
        splits.input_shape,
        splits.num_classes,
        scale=splits.train.scale,
    )


def autoencoder_inputs(splits: Any) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) the autoencoder trains on: the train part, then the unlabeled examples labeled -1 (stored
    as the train part is: the same dtype and ``scale``, which ``data.load`` sees to)."""
    unlabeled = getattr(splits, "unlabeled", None)
    if unlabeled is None or not len(unlabeled):
        return splits.train.x, splits.train.y
    x = np.concatenate([splits.train.x, unlabeled])
    y = np.concatenate([splits.train.y, np.full(len(unlabeled), -1, dtype=splits.train.y.dtype)])
    return x, y


def assemble(
    cfg: RunConfig,
    x_train: np.ndarray,
    y_train: np.ndarray,
    labeled_idx: np.ndarray,
    input_shape: Sequence[int],
    num_classes: int,
    scale: float = 1.0,
) -> Components:
    """:func:`build_components` from arrays (the benchmarks hold their data outside ``Splits``); the
    model sees ``x_train / scale`` (uint8 images stay bytes until the compiled step)."""
    blocks = schedules_mod.plan(cfg, len(x_train), len(labeled_idx))
    model = build_model(cfg, input_shape, num_classes, schedule=blocks["train"])
    pretrained.adapt(model, x_train, scale)
    head = build_head(cfg.probe, latent_size(cfg, model), num_classes)
    probe_rate = blocks["probe"].learning_rate(cfg.probe.learning_rate)
    probe = Probe(head, build_optimizer(cfg.probe.optimizer, probe_rate))
    rng = np.random.default_rng([cfg.seed, STREAM_BATCHES])
    strategy = STRATEGIES[cfg.probe.strategy](
        model, probe, x_train, y_train, labeled_idx, cfg, rng, scale=scale
    )
    return Components(model, head, probe, strategy, blocks)


def latent_size(cfg: RunConfig, model: Autoencoder) -> int:
    """The width of the code the probe reads: ``model.latent``, or a pretrained encoder's own."""
    if isinstance(model, pretrained.PretrainedEncoder):
        return int(model.latent)
    return cfg.model.latent


def restore_model(
    cfg: RunConfig, run_dir: Path, input_shape: Sequence[int], num_classes: int
) -> tuple[Autoencoder, keras.Model]:
    """A saved run's autoencoder, rebuilt through the registry with its saved weights, and its probe head.

    The model is rebuilt under the dtype policy the run trained under (summary.json's
    ``environment.precision``), so eval of a mixed-precision run reproduces its summary; no global RNG
    is touched (the weights drawn at build time are overwritten by the saved ones anyway).

    Raises:
        RunDirError: a saved model cannot be loaded, or does not fit the architecture the config describes.
    """
    run_dir = Path(run_dir)
    summary = rundir.read_json(run_dir / rundir.SUMMARY)
    policy = (summary.get("environment") or {}).get("precision") or "float32"
    if cfg.model.kind == config_mod.PRETRAINED:
        # The run's own copies, not the original paths: a run directory stands alone.
        try:
            with dtype_policy(policy):
                model = build_model(cfg_of_copies(cfg, run_dir), input_shape, num_classes, seed=cfg.seed)
        except ConfigError as exc:
            raise RunDirError(f"{run_dir}: {exc.problem}") from None
        with isolated_python_random(cfg.seed):
            return model, load_saved(run_dir / rundir.PROBE)
    with dtype_policy(policy):
        model = build_model(cfg, input_shape, num_classes, seed=cfg.seed)
        for network, name in ((model.encoder, rundir.ENCODER), (model.decoder, rundir.DECODER)):
            try:
                network.load_weights(run_dir / name)
            except Exception as exc:  # a truncated or foreign file: say which, not a Keras traceback
                raise RunDirError(
                    f"{run_dir / name}: cannot load the saved model ({_one_line(exc)})"
                ) from None
    with isolated_python_random(cfg.seed):  # deserialising builds layers, whose initialisers draw seeds
        head = load_saved(run_dir / rundir.PROBE)
    return model, head


def cfg_of_copies(cfg: RunConfig, run_dir: Path) -> RunConfig:
    """A pretrained run's config with ``model.encoder`` (and ``model.decoder``) at its run directory's
    copies."""
    decoder = str(run_dir / rundir.DECODER) if cfg.model.decoder else None
    model = dataclasses.replace(cfg.model, encoder=str(run_dir / rundir.ENCODER), decoder=decoder)
    return dataclasses.replace(cfg, model=model)


def load_saved(path: Path) -> keras.Model:
    """A ``.keras`` file, or a :class:`RunDirError` naming it (a truncated or foreign file)."""
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:
        raise RunDirError(f"{path}: cannot load the saved model ({_one_line(exc)})") from None


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Keras's global dtype policy ``name`` inside the block; the previous one after."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"
