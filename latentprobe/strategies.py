"""The compiled training loops: strategies that interleave the online probe's training with the
autoencoder's, and the probe itself (its head, optimizer and trackers).

``STRATEGIES`` maps ``probe.strategy`` to a class whose ``run()`` yields one record per epoch:

- ``alternating`` (the blog post "Monitoring embedded space quality for classification"): the autoencoder
  and the probe take turns, every step or every epoch.
- ``frozen`` ("Autoencoders as Classifiers"): train the autoencoder, then freeze the encoder and train the
  probe alone.

In both the probe reads ``stop_gradient`` latents and owns its optimizer, so probe training can never
move the encoder. Each epoch is one compiled call over data held as tensors: the batch loop runs inside
the graph (``tf.range``), with a seeded NumPy permutation per epoch as the only input that changes.
Whether XLA compiles that loop is :func:`resolve_jit_compile`'s decision (``train.jit_compile: auto``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from latentprobe import pixels, schedules
from latentprobe.errors import NonFiniteLoss
from latentprobe.models import losses
from latentprobe.models.autoencoder import Autoencoder


def build_head(probe_cfg: Any, latent: int, num_classes: int) -> keras.Model:
    """Linear softmax head, or an MLP (``probe.hidden`` widths, ReLU) ending in a softmax."""
    z = inputs = keras.Input(shape=(latent,), name="z")
    if probe_cfg.head == "mlp":
        for i, width in enumerate(probe_cfg.hidden):
            z = layers.Dense(width, activation="relu", name=f"dense_{i}")(z)
    # float32 softmax under a mixed precision policy, as Keras advises for a model's output.
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities", dtype="float32")(z)
    return keras.Model(inputs, outputs, name=f"probe_{probe_cfg.head}")


def build_optimizer(spec: str | dict[str, Any], learning_rate: Any) -> keras.optimizers.Optimizer:
    """An optimizer by its Keras name (or a mapping of name and arguments), with the learning rate (a
    number or a schedule: :mod:`latentprobe.schedules`)."""
    return schedules.build_optimizer(spec, learning_rate)


class Probe:
    """A classifier head on latent codes, with its own optimizer and loss/accuracy trackers."""

    def __init__(self, head: keras.Model, optimizer: keras.optimizers.Optimizer):
        self.head = head
        if head.dtype_policy.name == "mixed_float16" and not isinstance(
            optimizer, keras.optimizers.LossScaleOptimizer
        ):
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)  # as Model.compile does for float16
        self.optimizer = optimizer
        self.optimizer.build(head.trainable_variables)
        self.loss_tracker = keras.metrics.Mean(name="probe_loss")
        self.accuracy_tracker = keras.metrics.Mean(name="probe_accuracy")

    def train_step(self, z, y) -> None:
        """One update of the head on codes ``z`` (batch, latent) and integer labels ``y`` (batch,)."""
        z = ops.stop_gradient(z)
        with tf.GradientTape() as tape:
            probabilities = self.head(z, training=True)
            loss = ops.mean(losses.classification(y, probabilities))
            scaled = self.optimizer.scale_loss(loss)  # identity unless mixed_float16
        variables = self.head.trainable_variables
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        self.loss_tracker.update_state(loss)
        self.accuracy_tracker.update_state(ops.mean(losses.correct(y, probabilities)))

    def reset(self) -> None:
        self.loss_tracker.reset_state()
        self.accuracy_tracker.reset_state()

    def results(self) -> dict[str, float]:
        return {
            "probe_loss": float(self.loss_tracker.result()),
            "probe_accuracy": float(self.accuracy_tracker.result()),
        }


@dataclass
class EpochRecord:
    """What one epoch trained, and the training-set averages of its losses."""

    epoch: int
    phase: str  # "alternating", "autoencoder" or "probe"
    train: dict[str, float] = field(default_factory=dict)
    samples: int = 0  # examples the autoencoder and the probe processed together

    @property
    def trained_autoencoder(self) -> bool:
        return self.phase in ("alternating", "autoencoder")

    @property
    def trained_probe(self) -> bool:
        return self.phase in ("alternating", "probe")


class Strategy:
    """Shared machinery: data as tensors, seeded batch indices, compiled epoch functions.

    ``x_train`` is held as it is stored (uint8 images stay bytes on the device); each batch is scaled to
    [0, 1] (``x / scale``) inside the compiled step, as it is gathered (:meth:`batch`).
    """

    def __init__(
        self,
        model: Autoencoder,
        probe: Probe,
        x_train: np.ndarray,
        y_train: np.ndarray,
        labeled_idx: np.ndarray,
        cfg: Any,
        rng: np.random.Generator,
        scale: float = 1.0,
    ):
        self.model = model
        self.probe = probe
        self.cfg = cfg
        self.rng = rng
        self.x = tf.convert_to_tensor(x_train)  # uint8 or float32, as stored
        self.scale = pixels.scale_tensor(scale)
        self.y = tf.convert_to_tensor(y_train, dtype=tf.int32)
        self.labeled_idx = np.asarray(labeled_idx, dtype=np.int64)
        self.n = len(x_train)
        self.batch_size = min(cfg.train.batch_size, self.n)
        self.probe_batch_size = min(cfg.probe.batch_size or cfg.train.batch_size, len(self.labeled_idx))
        # Phase -> the epoch it ended at, set by the caller between epochs (early stopping, a phase's
        # last epoch) and restored on resume; ``run()`` trains no further epoch of a finished phase.
        self.finished: dict[str, int] = {}
        on_gpu = "GPU" in self.x.device.upper()  # built under the run's tf.device
        self.jit_compile = resolve_jit_compile(
            cfg.train.jit_compile, cfg.model.network, self.n * cfg.train.epochs, on_gpu
        )
        self._ae_epoch = tf.function(self._ae_epoch_graph, jit_compile=self.jit_compile)
        self._probe_epoch = tf.function(self._probe_epoch_graph, jit_compile=self.jit_compile)

    def describe(self) -> dict[str, Any]:
        """How the probe was trained, for summary.json (with ``jit_compile``: whether XLA compiled it)."""
        raise NotImplementedError

    # -- batch indices (NumPy, seeded: the same seed gives the same batches) ---------------------

    def ae_batches(self) -> np.ndarray:
        """A shuffled epoch over the train split as (steps, batch) indices; the remainder is dropped."""
        steps = self.n // self.batch_size
        return self.rng.permutation(self.n)[: steps * self.batch_size].reshape(steps, self.batch_size)

    def probe_batches(self, steps: int | None = None) -> np.ndarray:
        """(steps, probe batch) indices into the labeled subset, reshuffled each pass through it."""
        m, b = len(self.labeled_idx), self.probe_batch_size
        steps = m // b if steps is None else steps
        passes = -(-steps * b // m)
        order = np.concatenate([self.rng.permutation(self.labeled_idx) for _ in range(passes)])
        return order[: steps * b].reshape(steps, b)

    # -- compiled epochs ---------------------------------------------------------------------------

    def labeled_batches(self, steps: int) -> np.ndarray:
        """A labeled batch per autoencoder step for a model that ``uses_labels``; else a placeholder."""
        if not self.model.uses_labels:
            return np.zeros((steps, 1), np.int64)
        return self.probe_batches(steps=steps)

    def batch(self, x, idx):
        """Rows ``idx`` of the stored inputs ``x``, scaled to [0, 1] float32: (batch,) + input_shape."""
        return pixels.scale_batch(tf.gather(x, idx), self.scale)

    def _model_step(self, x, y, idx, labeled_idx):
        """One ``train_step``, returning its logs: a model that uses labels gets (x, x_labeled, y_labeled)."""
        if self.model.uses_labels:
            return self.model.train_step(
                (self.batch(x, idx), self.batch(x, labeled_idx), tf.gather(y, labeled_idx))
            )
        return self.model.train_step(self.batch(x, idx))

    # Each returns the number of steps it ran: it stops at the first step whose running losses are not
    # finite (NaN or inf), so a diverged epoch ends there instead of computing on NaN weights.

    def _ae_epoch_graph(self, x, y, idx, labeled_idx):
        steps = tf.constant(0)
        for i in tf.range(tf.shape(idx)[0]):
            logs = self._model_step(x, y, idx[i], labeled_idx[i])
            steps += 1
            if not _all_finite(list(logs.values())):
                break
        return steps

    def _probe_epoch_graph(self, x, y, idx):
        steps = tf.constant(0)
        for i in tf.range(tf.shape(idx)[0]):
            xb = self.batch(x, idx[i])
            self.probe.train_step(self.model.probe_features(xb, training=False), tf.gather(y, idx[i]))
            steps += 1
            if not _all_finite([self.probe.loss_tracker.result()]):
                break
        return steps

    def run_ae_epoch(self) -> tuple[dict[str, float], int]:
        idx = self.ae_batches()
        self.model.reset_metrics()
        labeled = self.labeled_batches(len(idx))
        steps = self._ae_epoch(
            self.x, self.y, tf.constant(idx, dtype=tf.int32), tf.constant(labeled, dtype=tf.int32)
        )
        results = self.ae_results()
        check_finite(results, int(steps), len(idx))
        return results, idx.size

    def run_probe_epoch(self) -> tuple[dict[str, float], int]:
        idx = self.probe_batches()
        self.probe.reset()
        steps = self._probe_epoch(self.x, self.y, tf.constant(idx, dtype=tf.int32))
        results = self.probe.results()
        check_finite(results, int(steps), len(idx))
        return results, idx.size

    def ae_results(self) -> dict[str, float]:
        return {name: float(t.result()) for name, t in self.model.trackers.items()}

    def run(self, start_epoch: int = 0) -> Iterator[EpochRecord]:
        """Train epoch ``start_epoch + 1`` onwards (a resumed run restores its state first)."""
        raise NotImplementedError


class AlternatingStrategy(Strategy):
    """Autoencoder and probe take turns: per step (one batch each) or per epoch (one pass each).

    Per step, the probe takes its own batch of the labeled subset after the autoencoder's update. When
    every train example is labeled (and the batch sizes agree), the probe batch is the autoencoder's
    batch and, for a model that ``shares_codes``, the probe reads the codes of the autoencoder's own pass
    over it, taken before that step's update: one encoder pass per step instead of two.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._step_epoch = tf.function(self._step_epoch_graph, jit_compile=self.jit_compile)

    @property
    def shares_batches(self) -> bool:
        """Per step, the probe trains on the autoencoder's batch and the codes of its pass."""
        return (
            self.cfg.probe.every == "step"
            and self.model.shares_codes
            and not self.model.uses_labels
            and len(self.labeled_idx) == self.n
            and self.probe_batch_size == self.batch_size
        )

    def describe(self) -> dict[str, Any]:
        every = self.cfg.probe.every
        if self.shares_batches:
            batches = "the autoencoder's batch, codes from its pass before the update"
        elif every == "step":
            batches = "its own batch of the labeled subset, encoded after the autoencoder's update"
        else:
            batches = "a pass over the labeled subset after each autoencoder epoch"
        return {
            "name": "alternating",
            "every": every,
            "probe_batches": batches,
            "jit_compile": self.jit_compile,
        }

    def step_batches(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """An epoch's (autoencoder, probe, labeled) batch indices for ``every: step``."""
        ae_idx = self.ae_batches()
        probe_idx = ae_idx if self.shares_batches else self.probe_batches(steps=len(ae_idx))
        return ae_idx, probe_idx, self.labeled_batches(len(ae_idx))

    def _step_epoch_graph(self, x, y, ae_idx, probe_idx, labeled_idx):
        shared = self.shares_batches  # fixed for the strategy: one branch is traced
        steps = tf.constant(0)
        for i in tf.range(tf.shape(ae_idx)[0]):
            if shared:
                logs, codes = self.model.fit_batch(self.batch(x, ae_idx[i]))
                z = self.model.features_from_codes(codes)
            else:
                logs = self._model_step(x, y, ae_idx[i], labeled_idx[i])
                z = self.model.probe_features(self.batch(x, probe_idx[i]), training=False)
            self.probe.train_step(z, tf.gather(y, probe_idx[i]))
            steps += 1
            if not _all_finite([*logs.values(), self.probe.loss_tracker.result()]):
                break
        return steps

    def run_step_epoch(self) -> tuple[dict[str, float], int]:
        batches = self.step_batches()
        self.model.reset_metrics()
        self.probe.reset()
        steps = self._step_epoch(self.x, self.y, *(tf.constant(b, dtype=tf.int32) for b in batches))
        train = {**self.ae_results(), **self.probe.results()}
        check_finite(train, int(steps), len(batches[0]))
        return train, batches[0].size + batches[1].size

    def run(self, start_epoch: int = 0) -> Iterator[EpochRecord]:
        for epoch in range(start_epoch + 1, self.cfg.train.epochs + 1):
            if "alternating" in self.finished:
                return
            if self.cfg.probe.every == "step":
                train, samples = self.run_step_epoch()
            else:
                ae, ae_samples = self.run_ae_epoch()
                probe, probe_samples = self.run_probe_epoch()
                train, samples = {**ae, **probe}, ae_samples + probe_samples
            yield EpochRecord(epoch, "alternating", train, samples)


class FrozenStrategy(Strategy):
    """Train the autoencoder ``train.epochs``, freeze the encoder, train the probe ``probe.epochs``.

    A pretrained encoder (kind ``pretrained``) is frozen from the start: only the probe's epochs run.
    """

    def describe(self) -> dict[str, Any]:
        return {
            "name": "frozen",
            "probe_batches": "passes over the labeled subset, encoder frozen",
            "jit_compile": self.jit_compile,
        }

    def run(self, start_epoch: int = 0) -> Iterator[EpochRecord]:
        ae_epochs = autoencoder_epochs(self.cfg)
        epoch = start_epoch
        if "autoencoder" not in self.finished:
            while epoch < ae_epochs:
                epoch += 1
                train, samples = self.run_ae_epoch()
                yield EpochRecord(epoch, "autoencoder", train, samples)
                if "autoencoder" in self.finished:  # stopped early
                    break
        # The probe's epochs follow the autoencoder's last (ae_epochs, or where it stopped early).
        ae_end = self.finished.get("autoencoder", min(epoch, ae_epochs))
        # Frozen for real, not just left out of the probe's variable list: a later fit() or optimizer
        # built on this encoder sees no trainable weights. (A run resumed in the probe phase gets here too.)
        self.model.encoder.trainable = False
        while epoch < ae_end + self.cfg.probe.epochs and "probe" not in self.finished:
            epoch += 1
            train, samples = self.run_probe_epoch()
            yield EpochRecord(epoch, "probe", train, samples)


def autoencoder_epochs(cfg: Any) -> int:
    """Epochs that train the autoencoder: ``train.epochs``; none for a pretrained encoder."""
    return 0 if cfg.model.kind == "pretrained" else cfg.train.epochs


def total_epochs(cfg: Any) -> int:
    """Every epoch of a run: the autoencoder's, plus the frozen strategy's probe epochs."""
    return autoencoder_epochs(cfg) + (cfg.probe.epochs if cfg.probe.strategy == "frozen" else 0)


#: ``jit_compile: auto`` compiles a dense network's loop with XLA on a CPU only from this many
#: autoencoder examples per run (train examples x epochs): below it, XLA's compile time (1.5-6 s on a
#: 2-core CPU) exceeds what its faster steps save (about 5 us per example). See docs/performance.md.
XLA_MIN_EXAMPLES = 500_000


def resolve_jit_compile(setting: bool | str, network: str, examples: int, on_gpu: bool) -> bool:
    """Whether to XLA-compile the epoch loops: ``train.jit_compile`` true or false as set; ``auto`` where
    XLA was measured to be faster.

    ``auto`` on a CPU: no XLA for convolutional networks (inside the compiled ``tf.range`` loop, XLA's CPU
    backend leaves the gradients' convolutions in layouts its Eigen convolution does not take and runs
    them as naive loops: 30x slower than TensorFlow's own kernels), nor for runs of fewer than
    :data:`XLA_MIN_EXAMPLES` examples (the compile costs more than it saves); XLA otherwise. On a GPU,
    ``auto`` is XLA (not measured there; the earlier default).

    Args:
        network: ``model.network`` (``dense`` or ``conv``).
        examples: train examples x autoencoder epochs of the run.
    """
    if setting != "auto":
        return bool(setting)
    if on_gpu:
        return True
    return network == "dense" and examples >= XLA_MIN_EXAMPLES


def _all_finite(values: list[Any]):
    """A scalar boolean tensor: every value is finite (no NaN, no inf)."""
    return tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(tf.cast(v, tf.float32))) for v in values]))


def check_finite(results: dict[str, float], steps: int, total: int) -> None:
    """Raise :class:`NonFiniteLoss` if an epoch's losses are NaN/inf (its graph stopped at ``steps``)."""
    bad = {name: value for name, value in results.items() if not math.isfinite(value)}
    if bad or steps < total:
        shown = ", ".join(f"{name} {value}" for name, value in bad.items()) or "a loss"
        raise NonFiniteLoss(f"non-finite loss ({shown}) at step {steps} of {total}", step=steps)


STRATEGIES: dict[str, type[Strategy]] = {
    "alternating": AlternatingStrategy,
    "frozen": FrozenStrategy,
}
