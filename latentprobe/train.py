"""The one orchestrator: ``run(cfg)`` trains every (latent, seed) pair of a config into its run directory.

For each run: seed everything, write the resolved ``config.yaml`` first, load the data, build the model
and probe, run the probe strategy with TensorBoard logging, save the models, measure val and test, and
write ``summary.json`` last.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from latentprobe import checkpoint, pixels, rundir, tracking
from latentprobe import config as config_mod
from latentprobe import data as data_mod
from latentprobe import grid as grid_mod
from latentprobe.components import Components, build_components, cfg_of_copies, dtype_policy
from latentprobe.config import RunConfig
from latentprobe.early_stopping import EpochControls
from latentprobe.errors import NonFiniteLoss, RunDirError
from latentprobe.metrics import chance_accuracy, encode, measure
from latentprobe.models import pretrained
from latentprobe.runtime import describe_node
from latentprobe.schedules import learning_rates
from latentprobe.strategies import EpochRecord, total_epochs
from latentprobe.tensorboard_log import TensorBoardLog, flatten_hparams

#: Test images shown in TensorBoard's reconstruction grid.
GRID_IMAGES = 8

Progress = Callable[[str], None]


def run(cfg: RunConfig, progress: Progress | None = None) -> list[dict[str, Any]]:
    """Train every run the config describes (one per latent size and seed).

    Data problems are found before any run directory is made. A config with several runs also writes
    ``output.dir/<name>/sweep.json`` listing them.

    Returns:
        The summaries, in the order the runs were trained.
    """
    runs = cfg.expand()
    splits_by_seed = {seed: data_mod.load(cfg.data, seed) for seed in cfg.seeds}
    resolve_device(cfg.train.device)  # a missing GPU is found before any run directory is made
    parent = Path(cfg.output.dir) / cfg.name
    summaries = []
    for run_cfg in runs:
        run_dir = rundir.create_run_dir(parent, grid_mod.run_name(run_cfg))
        summaries.append(run_one(run_cfg, run_dir, splits_by_seed[run_cfg.seed], progress))
    if not cfg.is_single:
        write_sweep(parent, cfg, [Path(s["run_dir"]) for s in summaries])
    return summaries


def write_sweep(parent: Path, cfg: RunConfig, run_dirs: list[Path]) -> Path:
    """Record the runs of a sweep; runs of earlier sweeps under the same name stay listed."""
    path = parent / rundir.SWEEP
    previous = rundir.read_json(path).get("runs", []) if path.exists() else []
    names = [str(p.resolve().relative_to(parent.resolve())) for p in run_dirs]
    rundir.write_json(
        path,
        {
            "schema_version": rundir.SWEEP_SCHEMA_VERSION,
            "name": cfg.name,
            "latent": list(cfg.latents),
            "seed": list(cfg.seeds),
            "runs": previous + [n for n in names if n not in previous],
        },
    )
    return path


def resume(run_dir: Path, progress: Progress | None = None) -> dict[str, Any]:
    """Continue a killed, interrupted or failed run from its last checkpoint (epoch 1 if it has none).

    The run's own ``config.yaml`` decides everything, so the result equals an uninterrupted run's.

    Raises:
        RunDirError: ``run_dir`` is no run, has completed already, or its checkpoint does not fit.
    """
    run_dir = Path(run_dir)
    if not (run_dir / rundir.CONFIG).is_file():
        raise RunDirError(f"{run_dir}: not a latentprobe run (no {rundir.CONFIG})")
    if (run_dir / rundir.SUMMARY).is_file():
        status = rundir.read_json(run_dir / rundir.SUMMARY).get("status")
        if status == rundir.STATUS_COMPLETED:
            raise RunDirError(f"{run_dir}: the run has completed; nothing to resume")
    cfg = config_mod.load(run_dir / rundir.CONFIG)
    if not cfg.is_single:
        raise RunDirError(
            f"{run_dir / rundir.CONFIG}: describes several runs; resume takes one run directory"
        )
    splits = data_mod.load(cfg.data, cfg.seed)
    state = checkpoint.read_state(run_dir)
    if state is not None and state.get("data_sha256") not in (None, splits.sha256):
        raise RunDirError(f"{run_dir}: the data differs from the data the run was trained on")
    resolve_device(cfg.train.device)
    return run_one(cfg, run_dir, splits, progress, resume=True)


def run_one(
    cfg: RunConfig,
    run_dir: Path,
    splits: data_mod.Splits | None = None,
    progress: Progress | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Train one run (a single latent size and seed) into ``run_dir`` and return its summary.

    With ``resume``, continue from the run directory's last checkpoint instead of starting fresh.
    Whatever stops the run writes a summary with ``status`` ``failed`` or ``interrupted``, the
    ``reason`` and the ``epoch``; the exception, re-raised, carries ``run_dir``.
    """
    assert cfg.is_single, "run_one takes a config with one latent size and one seed"
    started = time.perf_counter()
    run_dir = Path(run_dir)
    if not resume:
        rundir.write_text(run_dir / rundir.CONFIG, config_mod.dump(cfg))
    seed_everything(cfg.seed)
    if splits is None:
        splits = data_mod.load(cfg.data, cfg.seed)
    if not (resume and (run_dir / rundir.LABELED_SUBSET).exists()):
        write_labeled_subset(run_dir / rundir.LABELED_SUBSET, splits)

    device = resolve_device(cfg.train.device)
    try:
        with tf.device(device.tf_name), precision_policy(cfg.train.precision, device.name):
            summary = _train(cfg, run_dir, splits, device.name, progress, resume, started)
    except BaseException as exc:
        # Whatever stopped the run, the directory says so: compare and eval name it instead of guessing.
        _write_stopped_summary(cfg, run_dir, exc)
        exc.run_dir = str(run_dir)  # for the CLI's message
        if not isinstance(exc, KeyboardInterrupt):  # an interrupted run is logged once it ends
            tracking.log_run(cfg.output.mlflow, run_dir)
        raise
    rundir.write_json(run_dir / rundir.SUMMARY, summary)
    tracking.log_run(cfg.output.mlflow, run_dir)  # a copy; warns, never raises
    return summary


def _write_stopped_summary(cfg: RunConfig, run_dir: Path, exc: BaseException) -> None:
    try:
        state = checkpoint.read_state(run_dir)
    except RunDirError:  # an unreadable state must not hide what stopped the run
        state = None
    done = state["epoch"] if state else 0
    total = total_epochs(cfg)
    status = rundir.STATUS_INTERRUPTED if isinstance(exc, KeyboardInterrupt) else rundir.STATUS_FAILED
    # An exception that stops a run on purpose between epochs (a search's pruned trial) names its status.
    stopped_after = getattr(exc, "stopped_after_epoch", None)
    status = getattr(exc, "run_status", None) or status
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, NonFiniteLoss):
        exc.epoch = done + 1
        reason = f"{exc} in epoch {done + 1}"
    rundir.write_json(
        run_dir / rundir.SUMMARY,
        {
            "schema_version": rundir.SUMMARY_SCHEMA_VERSION,
            "status": status,
            "reason": reason,
            # The epoch that was running (or the last, when saving failed), or the one it stopped after.
            "epoch": stopped_after if stopped_after is not None else min(done + 1, total),
            "checkpoint_epoch": done if state else None,  # `latentprobe train --resume` continues after it
            "run_dir": str(run_dir.resolve()),
            "config": config_mod.to_dict(cfg),
            "history": state["history"] if state else None,
        },
    )


@dataclasses.dataclass
class _Ledger:
    """What a run has done so far: carried in each checkpoint, so a resumed run goes on counting."""

    history: dict[str, list[Any]]
    train_seconds: float = 0.0
    samples: int = 0
    earlier_seconds: float = 0.0  # wall time of the run's earlier sessions (before a resume)
    resumed_at: list[int] = dataclasses.field(default_factory=list)
    initial: dict[str, float] | None = None  # val metrics before any training
    start_epoch: int = 0
    restored: bool = False  # continued from a checkpoint
    controls: EpochControls | None = None  # plateau schedules, early stopping, where phases ended


def _train(
    cfg: RunConfig,
    run_dir: Path,
    splits: data_mod.Splits,
    device: str,
    progress: Progress | None,
    resume: bool,
    started: float,
) -> dict[str, Any]:
    state = checkpoint.read_state(run_dir) if resume else None
    pretrained_run = cfg.model.kind == config_mod.PRETRAINED
    # A pretrained run's files are copied in before its first epoch; a resume builds from the copies, so
    # it continues with the encoder it began with, and still names the original files (the checkpoint's).
    from_copies = pretrained_run and bool(state and state.get("pretrained_source"))
    parts = build_components(cfg_of_copies(cfg, run_dir) if from_copies else cfg, splits)
    if from_copies:
        parts.model.source = state["pretrained_source"]
    elif pretrained_run:
        pretrained.save_networks(parts.model, run_dir / rundir.ENCODER, run_dir / rundir.DECODER)
    variables = checkpoint.collect_variables(parts.model, parts.head, [parts.probe.optimizer])
    controls = EpochControls(cfg, parts.schedules)
    parts.strategy.finished = controls.finished  # the strategy trains no epoch of a finished phase
    ledger = _restore_or_start(run_dir, parts, variables, state, controls, resume)
    tb = TensorBoardLog(run_dir / rundir.TB)
    try:
        if not ledger.restored:  # a run resumed from a checkpoint logged these already
            _log_start(cfg, parts, splits, tb, ledger)
        _train_epochs(cfg, run_dir, parts, splits, tb, variables, ledger, progress, started)
        _save_models(run_dir, parts)
        test, val = _measure_final(parts, splits)
        best = controls.describe(ledger.history)
        tb.write_scalars(rundir.TB_TEST, best["best_epoch"] or ledger.history["epoch"][-1], test)
    finally:
        tb.close()  # flush what was logged, even when training failed
    summary = _completed_summary(cfg, run_dir, parts, splits, device, ledger, test, val, started)
    return {**summary, **best}


def _restore_or_start(
    run_dir: Path,
    parts: Components,
    variables: list[Any],
    state: dict[str, Any] | None,
    controls: EpochControls,
    resume: bool,
) -> _Ledger:
    """A fresh ledger, or (resuming, ``state`` the last checkpoint's) the checkpoint's weights, batch
    order, controls and ledger."""
    if state is None:
        return _Ledger(
            history={"epoch": [], "phase": []}, resumed_at=[0] if resume else [], controls=controls
        )
    checkpoint.restore(run_dir, state, variables)
    parts.strategy.rng.bit_generator.state = state["rng"]
    controls.load(state.get("controls"), state.get("phase"))
    return _Ledger(
        controls=controls,
        history=state["history"],
        train_seconds=state["train_seconds"],
        samples=state["samples"],
        earlier_seconds=state["total_seconds"],
        resumed_at=[*state["resumed_at_epochs"], state["epoch"]],
        initial=state.get("initial"),
        start_epoch=state["epoch"],
        restored=True,
    )


def _log_start(
    cfg: RunConfig, parts: Components, splits: data_mod.Splits, tb: TensorBoardLog, ledger: _Ledger
) -> None:
    """HParams, the custom-scalars layout, and step 0: the untrained autoencoder and probe, so every
    curve starts from chance."""
    tb.write_hparams(flatten_hparams(config_mod.to_dict(cfg)))
    ledger.initial = measure(parts.model, parts.head, splits.val.x, splits.val.y, scale=splits.val.scale)
    tb.write_scalars(rundir.TB_VAL, 0, ledger.initial)
    tb.write_layout(ledger.initial)


def _train_epochs(
    cfg: RunConfig,
    run_dir: Path,
    parts: Components,
    splits: data_mod.Splits,
    tb: TensorBoardLog,
    variables: list[Any],
    ledger: _Ledger,
    progress: Progress | None,
    started: float,
) -> None:
    """Run the strategy's epochs; after each, measure val, log, checkpoint and report progress."""
    total = total_epochs(cfg)
    epoch_start = time.perf_counter()
    for record in parts.strategy.run(start_epoch=ledger.start_epoch):
        ledger.train_seconds += time.perf_counter() - epoch_start
        ledger.samples += record.samples
        val = measure(
            parts.model,
            parts.head,
            splits.val.x,
            splits.val.y,
            autoencoder=record.trained_autoencoder,
            probe=record.trained_probe,
            scale=splits.val.scale,
        )
        train = {k: v for k, v in record.train.items() if k != "loss"}
        train.update(learning_rates(parts.model, parts.probe.optimizer, record.phase))
        _log_epoch(tb, record, train, val, parts.model, splits)
        _append_history(ledger.history, record, train, val)
        end = ledger.controls.after_epoch(record.phase, record.epoch, val)
        if end is not None and end.restore_epoch is not None:
            # The phase goes on from (frozen's probe phase), or the run ends with, its best epoch's weights.
            checkpoint.restore(run_dir, {"weights": rundir.checkpoint_weights(end.restore_epoch)}, variables)
        checkpoint.save(
            run_dir,
            record.epoch,
            variables,
            _checkpoint_state(record, parts, ledger, splits, started),
            keep=ledger.controls.keep(),
        )
        if progress is not None:
            progress(_progress_line(record, total, train, val, time.perf_counter() - epoch_start))
        epoch_start = time.perf_counter()


def _log_epoch(
    tb: TensorBoardLog, record: EpochRecord, train: dict, val: dict, model: Any, splits: data_mod.Splits
) -> None:
    tb.write_scalars(rundir.TB_TRAIN, record.epoch, train)
    tb.write_scalars(rundir.TB_VAL, record.epoch, val)
    if record.trained_autoencoder:
        if splits.is_image:
            grid = pixels.scale_array(splits.test.x[:GRID_IMAGES], splits.test.scale)
            tb.write_reconstructions(record.epoch, grid, model.predict_on_batch(grid))
        tb.write_latent_histogram(record.epoch, encode(model, splits.test.x[:1000], scale=splits.test.scale))


def _checkpoint_state(
    record: EpochRecord, parts: Components, ledger: _Ledger, splits: data_mod.Splits, started: float
) -> dict[str, Any]:
    return {
        "phase": record.phase,
        "history": ledger.history,
        "rng": parts.strategy.rng.bit_generator.state,
        "train_seconds": ledger.train_seconds,
        "samples": ledger.samples,
        "total_seconds": ledger.earlier_seconds + time.perf_counter() - started,
        "resumed_at_epochs": ledger.resumed_at,
        "data_sha256": splits.sha256,
        "initial": ledger.initial,
        "controls": ledger.controls.state(),
        # A pretrained run's original files (path, sha256), which a resume from the copies still names.
        "pretrained_source": getattr(parts.model, "source", None) or None,
    }


def _save_models(run_dir: Path, parts: Components) -> None:
    if isinstance(parts.model, pretrained.PretrainedEncoder):  # its own files, copied in at the start
        parts.head.save(run_dir / rundir.PROBE)
        return
    parts.model.encoder.save(run_dir / rundir.ENCODER)
    parts.model.decoder.save(run_dir / rundir.DECODER)
    parts.head.save(run_dir / rundir.PROBE)


def _measure_final(parts: Components, splits: data_mod.Splits) -> tuple[dict[str, float], dict[str, float]]:
    """Test and val metrics of the trained run (test is measured once, here, and never trained on)."""
    test = measure(parts.model, parts.head, splits.test.x, splits.test.y, scale=splits.test.scale)
    test["chance_accuracy"] = chance_accuracy(
        splits.train.y[splits.labeled_idx], splits.test.y, splits.num_classes
    )
    val = measure(parts.model, parts.head, splits.val.x, splits.val.y, scale=splits.val.scale)
    return test, val


def _completed_summary(
    cfg: RunConfig,
    run_dir: Path,
    parts: Components,
    splits: data_mod.Splits,
    device: str,
    ledger: _Ledger,
    test: dict[str, float],
    val: dict[str, float],
    started: float,
) -> dict[str, Any]:
    seconds = ledger.train_seconds
    summary = {
        "schema_version": rundir.SUMMARY_SCHEMA_VERSION,
        "status": rundir.STATUS_COMPLETED,
        "run_dir": str(run_dir.resolve()),
        "config": config_mod.to_dict(cfg),
        "metrics": {"test": test, "val": val},
        "initial": {"val": ledger.initial},  # before any training (TensorBoard: val at step 0)
        "history": ledger.history,
        "strategy": parts.strategy.describe(),
        "timing": {
            "train_seconds": seconds,
            "train_samples_per_second": ledger.samples / seconds if seconds > 0 else None,
            "total_seconds": ledger.earlier_seconds + time.perf_counter() - started,
        },
        "resumed_at_epochs": ledger.resumed_at,  # [] for a run that was never interrupted
        "environment": describe_environment(device),
        "data": describe_data(splits),
    }
    if isinstance(parts.model, pretrained.PretrainedEncoder):
        # Compare reads the config from here: the latent size is the encoder's, not model.latent's.
        summary["config"]["model"]["latent"] = parts.model.latent
        summary["pretrained"] = parts.model.describe()
    return summary


def _append_history(history: dict[str, list[Any]], record: Any, train: dict, val: dict) -> None:
    history["epoch"].append(record.epoch)
    history["phase"].append(record.phase)
    row = {f"train/{k}": v for k, v in train.items()} | {f"val/{k}": v for k, v in val.items()}
    length = len(history["epoch"])
    for key, value in row.items():
        history.setdefault(key, [None] * (length - 1)).append(value)
    for values in history.values():
        if len(values) < length:  # a term this phase did not produce
            values.append(None)


def _progress_line(record: Any, total: int, train: dict, val: dict, seconds: float) -> str:
    shown = [f"train/{k} {v:.4g}" for k, v in train.items()] + [f"val/{k} {v:.4g}" for k, v in val.items()]
    return f"epoch {record.epoch}/{total} [{record.phase}] " + "  ".join(shown) + f"  ({seconds:.1f}s)"


# --------------------------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy, TensorFlow and Keras, and make TensorFlow's ops deterministic."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


@dataclasses.dataclass(frozen=True)
class Device:
    name: str  # "cpu" or "gpu"
    tf_name: str  # a tf.device string


def resolve_device(requested: str) -> Device:
    """``auto`` takes the first GPU when TensorFlow sees one; ``gpu`` without a GPU is an error."""
    gpus = tf.config.list_logical_devices("GPU")
    if requested == "gpu" and not gpus:
        raise config_mod.ConfigError(
            "train.device", "'gpu' requested, but TensorFlow sees no GPU (use 'auto' or 'cpu')"
        )
    if requested == "cpu" or not gpus:
        return Device("cpu", "/CPU:0")
    return Device("gpu", gpus[0].name)


@contextlib.contextmanager
def precision_policy(precision: str, device: str) -> Iterator[str]:
    """Set Keras's dtype policy for ``train.precision`` while a run's models are built and trained.

    ``mixed`` computes in float16 on a GPU (the optimizers get Keras's dynamic loss scaling) and in
    bfloat16 on a CPU (float16 arithmetic is emulated there; bfloat16 needs no loss scaling). Variables,
    the code z, the decoder's sigmoid and the probe's softmax stay float32. The previous policy comes back
    afterwards, so one run's precision never leaks into the next.

    Yields:
        The policy's name: ``float32``, ``mixed_float16`` or ``mixed_bfloat16``.
    """
    if precision == "float32":
        name = "float32"
    else:
        name = "mixed_float16" if device == "gpu" else "mixed_bfloat16"
    with dtype_policy(name):
        yield name


def describe_environment(device: str) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "device": device,
        "precision": keras.mixed_precision.global_policy().name,  # the policy the run trained under
        # TensorFlow's intra-op threads (0 in TensorFlow means one per core: recorded as the core count).
        "threads": tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count(),
        "argv": sys.argv,
        "node": describe_node(),
    }


def describe_data(splits: data_mod.Splits) -> dict[str, Any]:
    return {
        "name": splits.name,
        "sha256": splits.sha256,
        "input_shape": list(splits.input_shape),
        "num_classes": splits.num_classes,
        "class_names": list(splits.class_names),
        "sizes": {"train": len(splits.train.y), "val": len(splits.val.y), "test": len(splits.test.y)},
        "labeled": len(splits.labeled_idx),
        # Examples the autoencoder trained on besides the train part: in no labeled subset, val or test.
        "unlabeled": 0 if splits.unlabeled is None else len(splits.unlabeled),
        "labeled_subset_file": rundir.LABELED_SUBSET,
    }


def write_labeled_subset(path: Path, splits: data_mod.Splits) -> None:
    """Save which training examples the probe saw: indices into the dataset's own train split."""
    original = splits.train_index[splits.labeled_idx]
    rundir.write_npz(path, train_index=original, label=splits.train.y[splits.labeled_idx])
