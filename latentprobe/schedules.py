"""Learning rates over training: ``train.schedule`` and ``probe.schedule`` as Keras learning-rate
schedules, and ``plateau`` as Keras's ``ReduceLROnPlateau`` rule applied between epochs.

Per step, in the graph: a scheduled optimizer's learning rate is a
:class:`keras.optimizers.schedules.LearningRateSchedule` of its own step counter (``iterations``), so the
compiled epoch loop needs no Python per batch and a checkpoint (which holds ``iterations``) restores the
schedule exactly. The rate of step ``s`` is

    base x min(1, (s + 1) / warmup_steps) x shape(max(0, s - warmup_steps)) x scale

where ``shape`` is Keras's ``CosineDecay``, ``ExponentialDecay`` or ``PiecewiseConstantDecay`` (from 1,
with the schedule's epochs counted from the end of the warmup and turned into steps), and ``scale`` a
variable that only ``plateau`` changes: after each epoch of the block's phase, ``factor`` times itself
when the monitored val metric has not improved for ``patience`` epochs (not counting warmup epochs).
Its state (scale, best value, wait, cooldown) travels in the checkpoint's ``state.json``.

Every optimizer of a block shares its schedule's shape and ``scale``: ``train.schedule`` drives the
autoencoder's optimizer and each adversarial phase's (``model.aae``'s discriminator, generator and
supervised rates are their base rates), ``probe.schedule`` the probe's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import keras
from keras import ops

from latentprobe.settings import (
    CosineSchedule,
    ExponentialSchedule,
    PlateauSchedule,
    StepSchedule,
)
from latentprobe.training_controls import optimizer_arguments, optimizer_name


def build_optimizer(spec: str | dict[str, Any], learning_rate: Any) -> keras.optimizers.Optimizer:
    """An optimizer from ``train.optimizer`` / ``probe.optimizer`` (a Keras name, or a mapping of its name
    and arguments) with ``learning_rate``: a number or a :class:`LearningRateSchedule`."""
    config = {"learning_rate": learning_rate, **optimizer_arguments(spec)}
    return keras.optimizers.get({"class_name": optimizer_name(spec), "config": config})


class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """``base`` x a linear warmup x a Keras schedule's shape (from 1) x a plateau's ``scale``."""

    def __init__(self, base: float, warmup_steps: int, shape: Any = None, scale: Any = None):
        self.base = float(base)
        self.warmup_steps = int(warmup_steps)
        self.shape = shape
        self.scale = scale

    def __call__(self, step):
        step = ops.cast(step, "float32")
        rate = ops.convert_to_tensor(self.base, "float32")
        if self.warmup_steps:
            rate = rate * ops.minimum(1.0, (step + 1.0) / float(self.warmup_steps))
        if self.shape is not None:
            rate = rate * ops.cast(self.shape(ops.maximum(step - self.warmup_steps, 0.0)), "float32")
        if self.scale is not None:
            rate = rate * ops.cast(self.scale, "float32")
        return rate

    def get_config(self) -> dict[str, Any]:
        return {"base": self.base, "warmup_steps": self.warmup_steps}


@dataclass
class BlockSchedule:
    """One config block's schedule (``train`` or ``probe``) at run time."""

    block: str
    spec: Any  # a settings schedule class, or None
    steps_per_epoch: int
    epochs: int  # of the phase the block's optimizers train in
    scale: Any = None  # a keras.Variable for plateau
    plateau: Plateau | None = None

    def learning_rate(self, base: float) -> float | WarmupSchedule:
        """The rate of this block's optimizer of base rate ``base``: ``base`` itself without a schedule."""
        if self.spec is None:
            return base
        warmup = self.spec.warmup_epochs * self.steps_per_epoch
        return WarmupSchedule(base, warmup, self._shape(), self.scale)

    def _shape(self) -> Any:
        spec, steps = self.spec, self.steps_per_epoch
        schedules = keras.optimizers.schedules
        if isinstance(spec, CosineSchedule):
            epochs = spec.decay_epochs or max(1, self.epochs - spec.warmup_epochs)
            return schedules.CosineDecay(1.0, epochs * steps, alpha=spec.alpha)
        if isinstance(spec, ExponentialSchedule):
            decay_steps = max(1, round(spec.decay_epochs * steps))
            return schedules.ExponentialDecay(1.0, decay_steps, spec.decay_rate, staircase=spec.staircase)
        if isinstance(spec, StepSchedule):
            values = [spec.factor**i for i in range(len(spec.boundaries) + 1)]
            # The rate drops from the first step after ``b`` epochs (step b x steps, counted from 0);
            # PiecewiseConstantDecay keeps a value up to and including its boundary.
            bounds = [b * steps - 0.5 for b in spec.boundaries]
            return schedules.PiecewiseConstantDecay(bounds, values)
        return None  # plateau: the scale alone


class Plateau:
    """Keras's ``ReduceLROnPlateau`` rule on a block's ``scale`` (its ``on_epoch_end``, epoch by epoch)."""

    def __init__(self, spec: PlateauSchedule, base: float, scale: Any):
        self.spec = spec
        self.monitor = spec.monitor.partition("/")[2]
        self.scale = scale
        self.min_scale = spec.min_learning_rate / base
        self.best: float | None = None
        self.wait = 0
        self.cooldown = 0

    def update(self, value: float) -> None:
        """After an epoch of the block's phase (past its warmup), with the monitored val metric."""
        spec = self.spec
        if self.cooldown > 0:
            self.cooldown -= 1
            self.wait = 0
        if self.best is None or improved(value, self.best, spec.mode, spec.min_delta):
            self.best = value
            self.wait = 0
        elif self.cooldown <= 0:
            self.wait += 1
            if self.wait >= spec.patience:
                scale = float(self.scale.numpy())
                if scale > self.min_scale:
                    self.scale.assign(max(scale * spec.factor, self.min_scale))
                    self.cooldown = spec.cooldown
                    self.wait = 0

    def state(self) -> dict[str, Any]:
        scale = float(self.scale.numpy())
        return {"scale": scale, "best": self.best, "wait": self.wait, "cooldown": self.cooldown}

    def load(self, state: dict[str, Any]) -> None:
        self.scale.assign(state["scale"])
        self.best, self.wait, self.cooldown = state["best"], state["wait"], state["cooldown"]


def improved(value: float, best: float, mode: str, min_delta: float) -> bool:
    """Whether ``value`` beats ``best`` by more than ``min_delta`` (a NaN never does)."""
    if not math.isfinite(value):
        return False
    return value < best - min_delta if mode == "min" else value > best + min_delta


def plan(cfg: Any, n_train: int, n_labeled: int) -> dict[str, BlockSchedule]:
    """Each block's schedule for a run on ``n_train`` autoencoder examples, ``n_labeled`` of them labeled.

    The steps per epoch are the strategy's (a dropped remainder; the probe's steps per epoch follow the
    autoencoder's when it trains every step).
    """
    ae_steps = n_train // min(cfg.train.batch_size, n_train)
    probe_batch = min(cfg.probe.batch_size or cfg.train.batch_size, n_labeled)
    frozen = cfg.probe.strategy == "frozen"
    per_step = not frozen and cfg.probe.every == "step"
    probe_steps = ae_steps if per_step else n_labeled // probe_batch
    blocks = {
        "train": BlockSchedule("train", cfg.train.schedule, ae_steps, cfg.train.epochs),
        "probe": BlockSchedule(
            "probe", cfg.probe.schedule, probe_steps, cfg.probe.epochs if frozen else cfg.train.epochs
        ),
    }
    for name, block in blocks.items():
        if isinstance(block.spec, PlateauSchedule):
            block.scale = keras.Variable(1.0, dtype="float32", trainable=False, name=f"{name}_plateau_scale")
            block.plateau = Plateau(block.spec, getattr(cfg, name).learning_rate, block.scale)
    return blocks


def current_rate(optimizer: Any) -> float:
    """The learning rate of the optimizer's last update (its first, before any)."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)  # a LossScaleOptimizer's own
    rate = inner._learning_rate
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        return float(rate(max(int(inner.iterations.numpy()) - 1, 0)))
    return float(ops.convert_to_numpy(inner.learning_rate))


def learning_rates(model: Any, probe_optimizer: Any, phase: str) -> dict[str, float]:
    """The learning rate of each optimizer that trained in ``phase``, keyed as logged (``train/<key>``):
    ``learning_rate`` (the autoencoder's), ``<phase>_learning_rate`` (a variant's own phases, such as
    the AAE's ``discriminator_learning_rate``) and ``probe_learning_rate``."""
    rates = {}
    if phase in ("alternating", "autoencoder"):
        rates["learning_rate"] = current_rate(model.optimizer)
        for name in getattr(model, "phase_learning_rates", {}):
            rates[f"{name}_learning_rate"] = current_rate(getattr(model, f"{name}_optimizer"))
    if phase in ("alternating", "probe"):
        rates["probe_learning_rate"] = current_rate(probe_optimizer)
    return rates
