"""Learning-rate schedules, plateau and early stopping at run time: known rates, the best epoch's weights
and test metrics, and resume (Ctrl-C and SIGKILL) ending exactly as an uninterrupted run.

Tiny digits runs without XLA (``jit_compile: false``), as in tests/test_checkpoint.py.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from latentprobe import config, rundir, schedules, train
from latentprobe.settings import CosineSchedule, ExponentialSchedule, PlateauSchedule, StepSchedule

from .conftest import REPO, tiny_config, write_config

# Digits: 1293 training examples after the 10% validation hold-out; 64 per batch -> 20 steps per epoch.
STEPS = 20
NEVER = (
    1.0e9  # a min_delta no epoch improves by: early stopping and plateau count every epoch after the first
)


def rate_at(block: schedules.BlockSchedule, base: float, step: int) -> float:
    return float(block.learning_rate(base)(step))


# --- the schedules' rates ----------------------------------------------------------------------------


def test_cosine_warms_up_linearly_then_decays_to_alpha():
    block = schedules.BlockSchedule("train", CosineSchedule(warmup_epochs=1, alpha=0.1), 10, 5)
    assert rate_at(block, 0.5, 0) == pytest.approx(0.05)  # (0 + 1) / 10 of the way
    assert rate_at(block, 0.5, 9) == pytest.approx(0.5)
    assert rate_at(block, 0.5, 10) == pytest.approx(0.5)  # the decay starts after the warmup
    assert rate_at(block, 0.5, 10 + 20) == pytest.approx(0.5 * (0.1 + 0.9 * 0.5))  # half way: cos = 0
    assert rate_at(block, 0.5, 10 + 40) == pytest.approx(0.05)  # the phase's last epoch ends at alpha


def test_exponential_and_step_decay_per_epoch():
    exponential = schedules.BlockSchedule("train", ExponentialSchedule(decay_rate=0.5, staircase=True), 10, 5)
    assert [rate_at(exponential, 1.0, 10 * e + 9) for e in range(3)] == [1.0, 0.5, 0.25]
    step = schedules.BlockSchedule("probe", StepSchedule(boundaries=(2, 3), factor=0.1), 10, 5)
    rates = [rate_at(step, 1.0, s) for s in (0, 19, 20, 29, 30)]
    assert rates == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01])  # drops with the first step of epoch 3, 4


def test_plateau_follows_keras_reduce_lr_on_plateau():
    spec = PlateauSchedule(monitor="val/probe_loss", mode="min", factor=0.5, patience=2, cooldown=1)
    spec = type(spec)(**{**spec.__dict__, "min_learning_rate": 0.3, "min_delta": 0.0})
    scale = keras.Variable(1.0, dtype="float32", trainable=False)
    plateau = schedules.Plateau(spec, 1.0, scale)
    scales = []
    for value in (5.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 3.0):
        plateau.update(value)
        scales.append(float(scale.numpy()))
    # Two epochs without improvement halve the rate; the cooldown epoch resets the wait but (as in
    # Keras) already counts as one without improvement; the floor is 0.3.
    assert scales == pytest.approx([1.0, 1.0, 1.0, 0.5, 0.5, 0.3, 0.3, 0.3, 0.3])
    assert plateau.state() == {"scale": pytest.approx(0.3), "best": 3.0, "wait": 0, "cooldown": 0}


# --- runs -----------------------------------------------------------------------------------------------


def fast_config(tmp: Path, **sections) -> dict:
    raw = tiny_config(tmp, **sections)
    raw["train"].setdefault("jit_compile", False)
    return raw


def run(tmp: Path, raw: dict, name: str = "config.yaml") -> dict:
    return train.run(config.load(write_config(tmp, raw, name)))[0]


def test_every_optimizer_logs_its_scheduled_rate_each_epoch(tmp_path):
    raw = fast_config(
        tmp_path,
        data={"labels": 100},
        model={"kind": "aae", "aae": {"semi_supervised": True, "discriminator_hidden": [16]}},
        train={"epochs": 3, "schedule": {"name": "cosine", "warmup_epochs": 1, "alpha": 0.2}},
    )
    history = run(tmp_path, raw)["history"]
    block = schedules.BlockSchedule("train", CosineSchedule(warmup_epochs=1, alpha=0.2), STEPS, 3)
    shape = [rate_at(block, 1.0, e * STEPS - 1) for e in (1, 2, 3)]  # the epoch's last update
    for key, base in [
        ("learning_rate", 0.003),
        ("discriminator_learning_rate", 1e-4),
        ("generator_learning_rate", 1e-4),
        ("supervised_learning_rate", 1e-3),
    ]:
        assert history[f"train/{key}"] == pytest.approx([base * f for f in shape], rel=1e-6), key
    # The last update is step 39 of the 40 the decay lasts: just above alpha x the base rate.
    assert 0.003 * 0.2 < history["train/learning_rate"][-1] < 0.003 * 0.21
    assert history["train/probe_learning_rate"] == pytest.approx([0.01] * 3)  # probe: no schedule


def test_plateau_reduces_after_patience_epochs_without_improvement(tmp_path):
    schedule = {"name": "plateau", "patience": 1, "factor": 0.5, "min_delta": NEVER}
    raw = fast_config(tmp_path, train={"epochs": 4}, probe={"schedule": schedule})
    history = run(tmp_path, raw)["history"]
    # Epoch 1 sets the best; each later epoch misses it: the rate halves after epochs 2 and 3.
    assert history["train/probe_learning_rate"] == pytest.approx([0.01, 0.01, 0.005, 0.0025])
    assert history["train/learning_rate"] == pytest.approx([0.003] * 4)


def test_early_stopping_keeps_the_best_epoch_for_models_and_test_metrics(tmp_path):
    stopping = {"monitor": "val/probe_accuracy", "patience": 2, "min_delta": NEVER}
    raw = fast_config(tmp_path, train={"epochs": 6, "early_stopping": stopping})
    summary = run(tmp_path, raw)
    assert summary["best_epoch"] == 1 and summary["stopped"] == "early_stopping"
    assert summary["history"]["epoch"] == [1, 2, 3]  # patience 2: two epochs after the best
    phase = summary["phases"]["alternating"]
    assert phase["monitor"] == "val/probe_accuracy" and phase["mode"] == "max" and phase["epochs"] == 3
    history = summary["history"]
    for name in ("probe_accuracy", "reconstruction_loss"):
        assert summary["metrics"]["val"][name] == history[f"val/{name}"][0]  # epoch 1's weights
    assert summary["metrics"]["val"]["probe_accuracy"] != history["val/probe_accuracy"][-1]
    run_dir = Path(summary["run_dir"])
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["epoch-0003.npz", "state.json"]
    # The saved encoder is epoch 1's: it reproduces epoch 1's val reconstruction loss.
    from latentprobe import components, data
    from latentprobe.metrics import measure

    cfg = config.load(run_dir / "config.yaml")
    splits = data.load(cfg.data, cfg.seed)
    model, head = components.restore_model(cfg, run_dir, splits.input_shape, splits.num_classes)
    val = measure(model, head, splits.val.x, splits.val.y, scale=splits.val.scale)
    assert val["reconstruction_loss"] == history["val/reconstruction_loss"][0]


def test_without_early_stopping_the_last_epoch_is_the_run(tmp_path):
    summary = run(tmp_path, fast_config(tmp_path))
    assert summary["best_epoch"] == 2 and summary["stopped"] == "epochs"


# --- resume ---------------------------------------------------------------------------------------------


def stop_after(epoch: int):
    def progress(line: str) -> None:
        if line.startswith(f"epoch {epoch}/"):
            raise KeyboardInterrupt

    return progress


def controlled_configs(tmp: Path) -> dict[str, dict]:
    """Every control with state: a cosine schedule (the step counter), plateau (scale, wait, best),
    early stopping (best epoch and its weights) that stops the run or a phase early."""
    alternating = fast_config(
        tmp,
        train={
            "epochs": 5,
            "schedule": {"name": "cosine", "warmup_epochs": 1},
            "early_stopping": {"monitor": "val/reconstruction_loss", "patience": 2, "min_delta": NEVER},
        },
        probe={"schedule": {"name": "plateau", "patience": 1, "factor": 0.5, "min_delta": NEVER}},
    )
    frozen = fast_config(
        tmp,
        train={"epochs": 4, "early_stopping": {"patience": 1, "min_delta": NEVER}},
        probe={
            "strategy": "frozen",
            "epochs": 3,
            "schedule": {"name": "plateau", "patience": 1, "factor": 0.5, "min_delta": NEVER},
            "early_stopping": {"patience": 5},
        },
    )
    frozen["probe"].pop("every")
    # The AAE's phase optimizers follow train.schedule; its class head is monitored.
    aae = fast_config(
        tmp,
        data={"labels": 100},
        model={"kind": "aae", "aae": {"semi_supervised": True, "discriminator_hidden": [16]}},
        train={
            "epochs": 3,
            "schedule": {"name": "exponential", "decay_rate": 0.5},
            "early_stopping": {"monitor": "val/classifier_accuracy", "patience": 3},
        },
    )
    return {"alternating": alternating, "frozen": frozen, "aae": aae}


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("controlled")
    return {name: run(tmp, raw, f"{name}.yaml") for name, raw in controlled_configs(tmp).items()}


def same_run(resumed: dict, reference: dict) -> None:
    assert resumed["status"] == reference["status"] == "completed"
    for key in ("metrics", "history", "best_epoch", "stopped", "phases"):
        assert resumed[key] == reference[key], key


def test_the_references_stop_where_expected(references):
    alternating = references["alternating"]
    assert alternating["history"]["epoch"] == [1, 2, 3] and alternating["best_epoch"] == 1
    frozen = references["frozen"]
    # The autoencoder stops after epoch 2 and goes back to epoch 1; the probe's epochs follow: 3, 4, 5.
    assert frozen["history"]["phase"] == ["autoencoder"] * 2 + ["probe"] * 3
    assert frozen["phases"]["autoencoder"] == {
        "epochs": 2,
        "stopped": "early_stopping",
        "best_epoch": 1,
        "monitor": "val/reconstruction_loss",
        "mode": "min",
        "best": frozen["history"]["val/reconstruction_loss"][0],
    }
    assert frozen["history"]["train/probe_learning_rate"][2:] == pytest.approx([0.01, 0.01, 0.005])
    assert frozen["metrics"]["val"]["reconstruction_loss"] == frozen["history"]["val/reconstruction_loss"][0]


@pytest.mark.parametrize(
    ("name", "stop"),
    [("alternating", 1), ("alternating", 3), ("frozen", 2), ("frozen", 3), ("aae", 1)],
    ids=["alt-mid", "alt-at-the-stop", "frozen-at-the-ae-stop", "frozen-probe", "aae"],
)
def test_a_resumed_run_equals_the_uninterrupted_one(tmp_path, references, name, stop):
    raw = controlled_configs(tmp_path)[name]
    with pytest.raises(KeyboardInterrupt):
        train.run(config.load(write_config(tmp_path, raw)), progress=stop_after(stop))
    (run_dir,) = [p for p in (tmp_path / "runs" / "tiny").iterdir() if p.is_dir()]
    assert rundir.read_json(run_dir / "summary.json")["checkpoint_epoch"] == stop
    resumed = train.resume(run_dir)
    assert resumed["resumed_at_epochs"] == [stop]
    same_run(resumed, references[name])


@pytest.mark.parametrize("jit", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["graph", "xla"])
def test_sigkill_then_resume_with_schedules_and_early_stopping(tmp_path, jit):
    raw = controlled_configs(tmp_path)["alternating"]
    raw["train"] = {**raw["train"], "epochs": 30, "jit_compile": jit}
    raw["train"]["early_stopping"] = {"monitor": "val/probe_accuracy", "patience": 25}
    path = write_config(tmp_path, raw)
    reference = run(tmp_path, {**raw, "output": {"dir": str(tmp_path / "reference")}}, "reference.yaml")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "latentprobe.cli", "train", str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        state_file = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            found = list((tmp_path / "runs" / "tiny").glob("*/checkpoints/state.json"))
            if found and json.loads(found[0].read_text())["epoch"] >= 2:
                state_file = found[0]
                break
            time.sleep(0.02)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert state_file is not None, "the training process wrote no checkpoint"
    run_dir = state_file.parent.parent
    assert not (run_dir / "summary.json").exists()
    resumed = train.resume(run_dir)
    assert resumed["resumed_at_epochs"][0] >= 2
    same_run(resumed, reference)
    assert math.isfinite(resumed["history"]["train/probe_learning_rate"][-1])
    assert len(np.unique(resumed["history"]["train/probe_learning_rate"])) > 1  # plateau acted


def test_the_result_line_names_the_best_epoch_early_stopping_chose():
    from latentprobe.study import summary_line

    summary = {
        "run_dir": "runs/x/ae-z4-s0",
        "metrics": {"test": {"probe_accuracy": 0.5, "chance_accuracy": 0.1}},
        "timing": {"train_seconds": 1.0},
        "best_epoch": 4,
        "stopped": "early_stopping",
        "phases": {"alternating": {"best_epoch": 4, "monitor": "val/probe_accuracy"}},
    }
    assert summary_line(summary).endswith("best epoch 4 (stopped early)  train 1.0s")
    summary["phases"] = {"alternating": {"best_epoch": 4}}  # no early stopping: nothing to say
    assert "best epoch" not in summary_line(summary)
