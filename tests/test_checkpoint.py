"""Crash safety: per-epoch checkpoints, resume after a kill or Ctrl-C, NaN losses, reproducibility.

Real training everywhere: the kill test SIGKILLs a real ``python -m latentprobe.cli train`` process, the
NaN tests make training diverge with a learning rate no optimisation survives. The configs skip XLA
(``train.jit_compile: false``) to save its compile time per run; the slow variant of the kill test uses it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from latentprobe import checkpoint, config, rundir, train
from latentprobe.cli import app
from latentprobe.errors import NonFiniteLoss, RunDirError

from .conftest import REPO, tiny_config, write_config

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def stop_after(epoch: int):
    """A progress callback that raises KeyboardInterrupt (what Ctrl-C raises) once ``epoch`` is done."""

    def progress(line: str) -> None:
        if line.startswith(f"epoch {epoch}/"):
            raise KeyboardInterrupt

    return progress


def only_run(parent: Path) -> Path:
    (run_dir,) = [p for p in parent.iterdir() if p.is_dir()]
    return run_dir


def assert_same_results(resumed: dict, reference: dict) -> None:
    assert resumed["status"] == reference["status"] == "completed"
    assert resumed["metrics"] == reference["metrics"]  # exact: same weights to the last bit
    assert resumed["history"] == reference["history"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted runs of the configs the resume tests interrupt, keyed by strategy."""
    tmp = tmp_path_factory.mktemp("reference")
    out = {}
    for strategy, raw in configs(tmp).items():
        out[strategy] = train.run(config.load(write_config(tmp, raw, f"{strategy}.yaml")))[0]
    return out


def fast_config(tmp: Path, **sections) -> dict:
    raw = tiny_config(tmp, **sections)
    raw["train"].setdefault("jit_compile", False)
    return raw


def configs(tmp: Path) -> dict[str, dict]:
    alternating = fast_config(tmp, train={"epochs": 3})
    frozen = fast_config(tmp, probe={"strategy": "frozen", "epochs": 2}, train={"epochs": 2})
    frozen["probe"].pop("every")
    # Variants with state of their own: the VAE's sampling RNG; the AAE's discriminators, three extra
    # optimizers, input noise RNG and labeled batches.
    vae = fast_config(tmp, model={"kind": "vae", "latent": 2}, train={"epochs": 2})
    aae = fast_config(
        tmp,
        data={"labels": 100},
        model={
            "kind": "aae",
            "aae": {"semi_supervised": True, "discriminator_hidden": [16], "noise_std": 0.3},
        },
        train={"epochs": 2},
    )
    return {"alternating": alternating, "frozen": frozen, "vae": vae, "aae": aae}


# --- checkpoints --------------------------------------------------------------------------------------


def test_every_epoch_leaves_a_checkpoint_with_state(reference):
    run_dir = Path(reference["alternating"]["run_dir"])
    state = rundir.read_json(run_dir / "checkpoints" / "state.json")
    assert state["epoch"] == 3 and state["weights"] == "epoch-0003.npz"
    assert state["history"] == reference["alternating"]["history"]
    assert state["rng"]["bit_generator"] == "PCG64"
    assert state["train_seconds"] == reference["alternating"]["timing"]["train_seconds"]
    # Older checkpoints are replaced; no temporary file is left.
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["epoch-0003.npz", "state.json"]
    with np.load(run_dir / "checkpoints" / "epoch-0003.npz") as npz:
        # encoder + decoder (4 arrays each), linear head (2), two Adam optimizers (2 + 2 per weight)
        assert len(npz.files) == len(state["variables"]) == 8 + 2 + (2 + 16) + (2 + 4)


def test_restore_puts_back_the_exact_weights(reference, tmp_path):
    cfg = config.load(Path(reference["alternating"]["run_dir"]) / "config.yaml")
    run_dir = Path(reference["alternating"]["run_dir"])
    from latentprobe import components, data

    splits = data.load(cfg.data, cfg.seed)
    parts = components.build_components(cfg, splits)
    model, probe = parts.model, parts.probe
    variables = checkpoint.collect_variables(model, probe.head, [probe.optimizer])
    checkpoint.restore(run_dir, checkpoint.read_state(run_dir), variables)
    import keras

    saved = keras.models.load_model(run_dir / "encoder.keras")
    for a, b in zip(saved.get_weights(), model.encoder.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(model.optimizer.iterations.numpy()) == 3 * (1293 // 64)


def test_restore_refuses_a_checkpoint_of_another_model(reference):
    import keras

    run_dir = Path(reference["alternating"]["run_dir"])
    variables = [keras.Variable(np.zeros((2, 2), "float32"))]
    with pytest.raises(RunDirError, match="the model built from config.yaml has 1"):
        checkpoint.restore(run_dir, checkpoint.read_state(run_dir), variables)


# --- resume -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "stop"),
    [("alternating", 1), ("frozen", 1), ("frozen", 3), ("vae", 1), ("aae", 1)],
    ids=["alt", "frozen-ae", "frozen-probe", "vae", "aae"],
)
def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path, reference, strategy, stop):
    # frozen: epochs 1-2 train the autoencoder, 3-4 the probe on the frozen encoder; stop in either phase.
    raw = configs(tmp_path)[strategy]
    cfg = config.load(write_config(tmp_path, raw))
    with pytest.raises(KeyboardInterrupt):
        train.run(cfg, progress=stop_after(stop))
    run_dir = only_run(tmp_path / "runs" / "tiny")
    stopped = rundir.read_json(run_dir / "summary.json")
    assert stopped["status"] == "interrupted"
    assert stopped["epoch"] == stop + 1 and stopped["checkpoint_epoch"] == stop
    assert len(stopped["history"]["epoch"]) == stop

    resumed = train.resume(run_dir)
    assert resumed["resumed_at_epochs"] == [stop]
    assert_same_results(resumed, reference[strategy])
    assert rundir.read_json(run_dir / "summary.json") == resumed
    if strategy == "frozen":  # the encoder was frozen again before the probe phase went on
        import keras

        encoder = keras.models.load_model(run_dir / "encoder.keras")
        assert not encoder.trainable and not encoder.trainable_weights


@pytest.fixture(scope="module")
def long_reference(tmp_path_factory):
    """An uninterrupted run of the config the subprocess tests kill, and that config."""
    tmp = tmp_path_factory.mktemp("long")
    raw = fast_config(tmp, train={"epochs": 20})
    return raw, train.run(config.load(write_config(tmp, raw)))[0]


def start_training(path: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "latentprobe.cli", "train", str(path)], env=env, **kwargs)


@pytest.mark.parametrize("jit", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["graph", "xla"])
def test_sigkill_then_resume_gives_the_uninterrupted_metrics(tmp_path, long_reference, jit):
    raw = dict(long_reference[0], output={"dir": str(tmp_path / "runs")})
    raw["train"] = dict(raw["train"], jit_compile=jit)
    path = write_config(tmp_path, raw)
    # Its own process group: the kill takes the driver and its worker at once, as a machine that loses
    # power or an OOM killer would (tests/test_study.py kills the driver alone).
    process = start_training(
        path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        state_file = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            found = list((tmp_path / "runs" / "tiny").glob("*/checkpoints/state.json"))
            if found and json.loads(found[0].read_text())["epoch"] >= 1:
                state_file = found[0]
                break
            time.sleep(0.02)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert state_file is not None, "the training process wrote no checkpoint"
    assert process.returncode == -signal.SIGKILL
    run_dir = state_file.parent.parent
    killed_at = rundir.read_json(state_file)["epoch"]
    assert 1 <= killed_at < 20 and not (run_dir / "summary.json").exists()

    result = invoke("compare", run_dir)  # a killed run is named, with how to continue it
    assert "incomplete run: no summary.json" in result.stderr and "--resume" in result.stderr

    result = invoke("train", "--resume", run_dir)
    assert result.exit_code == 0, result.output
    resumed = rundir.read_json(run_dir / "summary.json")
    assert resumed["resumed_at_epochs"][0] >= killed_at

    if jit:  # the reference ran without XLA; XLA's own reference
        raw["output"]["dir"] = str(tmp_path / "reference")
        reference = train.run(config.load(write_config(tmp_path, raw, "reference.yaml")))[0]
    else:
        reference = long_reference[1]
    assert_same_results(resumed, reference)


@pytest.mark.slow  # a second TensorFlow process; the in-process Ctrl-C tests above run by default
def test_ctrl_c_ends_cleanly_as_interrupted_and_resumes(tmp_path, long_reference):
    raw = dict(long_reference[0], output={"dir": str(tmp_path / "runs")})
    process = start_training(
        write_config(tmp_path, raw), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        if list((tmp_path / "runs" / "tiny").glob("*/checkpoints/state.json")):
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    run_dir = only_run(tmp_path / "runs" / "tiny")
    assert stderr.strip().splitlines()[-1] == (
        f"interrupted: {run_dir.parent}: the same command continues the study"
    )
    summary = rundir.read_json(run_dir / "summary.json")
    assert summary["status"] == "interrupted" and summary["reason"] == "KeyboardInterrupt"
    assert summary["checkpoint_epoch"] >= 1

    result = invoke("train", "--resume", run_dir)
    assert result.exit_code == 0, result.output
    assert_same_results(rundir.read_json(run_dir / "summary.json"), long_reference[1])


def test_resume_refuses_a_completed_run_and_a_non_run(reference, tmp_path):
    run_dir = Path(reference["alternating"]["run_dir"])
    before = (run_dir / "summary.json").read_bytes()
    result = invoke("train", "--resume", run_dir)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {run_dir}: the run has completed; nothing to resume"
    assert (run_dir / "summary.json").read_bytes() == before
    result = invoke("train", "--resume", tmp_path)
    assert result.exit_code == 2 and "not a latentprobe run (no config.yaml)" in result.stderr


def test_train_takes_a_config_or_resume_not_both(reference, tmp_path):
    path = write_config(tmp_path, tiny_config(tmp_path))
    run_dir = reference["alternating"]["run_dir"]
    for args in (["train"], ["train", path, "--resume", run_dir]):
        result = invoke(*args)
        assert result.exit_code == 2 and "CONFIG file or --resume RUN_DIR" in result.stderr
    result = invoke("train", "--resume", run_dir, "--set", "train.epochs=5")
    assert result.exit_code == 2 and "--set cannot change a resumed run" in result.stderr


# --- numerical faults ---------------------------------------------------------------------------------


def test_nan_loss_stops_within_the_epoch_with_status_failed_and_exit_1(tmp_path):
    # SGD at 1e30 blows the weights up on the first step; the loss is NaN within a few steps.
    raw = fast_config(tmp_path, train={"optimizer": "sgd", "learning_rate": 1e30})
    result = invoke("train", write_config(tmp_path, raw))
    assert result.exit_code == 1, result.output
    run_dir = only_run(tmp_path / "runs" / "tiny")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {run_dir}: training failed: non-finite loss (")
    assert errors[0].endswith("in epoch 1 (status: failed)")
    assert "Traceback" not in result.output
    summary = rundir.read_json(run_dir / "summary.json")
    assert summary["status"] == "failed" and summary["epoch"] == 1
    assert "nan" in summary["reason"] and summary["reason"].endswith("of 20 in epoch 1")
    step = int(summary["reason"].split(" at step ")[1].split()[0])
    assert step < 20  # stopped inside the epoch, not at its end
    assert summary["checkpoint_epoch"] is None and not (run_dir / "checkpoints").exists()


def test_nan_in_a_later_epoch_keeps_the_last_good_checkpoint(tmp_path):
    # Frozen: two sane autoencoder epochs, then a probe whose learning rate makes it diverge.
    raw = fast_config(
        tmp_path, probe={"strategy": "frozen", "epochs": 2, "optimizer": "sgd", "learning_rate": 1e38}
    )
    raw["probe"].pop("every")
    with pytest.raises(NonFiniteLoss) as caught:
        train.run(config.load(write_config(tmp_path, raw)))
    assert caught.value.epoch == 3
    run_dir = only_run(tmp_path / "runs" / "tiny")
    summary = rundir.read_json(run_dir / "summary.json")
    assert summary["status"] == "failed" and summary["epoch"] == 3 and summary["checkpoint_epoch"] == 2
    assert summary["reason"].startswith("non-finite loss (probe_loss") and "in epoch 3" in summary["reason"]
    assert summary["history"]["phase"] == ["autoencoder", "autoencoder"]
    state = checkpoint.read_state(run_dir)
    assert state["epoch"] == 2
    with np.load(run_dir / "checkpoints" / state["weights"]) as npz:
        assert all(np.isfinite(npz[k]).all() for k in npz.files if npz[k].dtype.kind == "f")
    # compare names the failed run and its reason, and still shows the rest.
    good = train.run(config.load(write_config(tmp_path, fast_config(tmp_path, name="good"), "good.yaml")))[0]
    result = invoke("compare", good["run_dir"], run_dir)
    assert result.exit_code == 0
    assert "ae-z4-s0" in result.stdout
    assert f"warning: {run_dir}: run did not complete (status: failed): non-finite loss" in result.stderr
    assert "last checkpoint: epoch 2" in result.stderr


def test_every_json_and_config_write_is_atomic():
    # Files are written through rundir.write_json / write_text (temporary file, then rename) only.
    package = REPO / "latentprobe"
    offenders = [
        f"{path.relative_to(REPO)}:{i}"
        for path in package.rglob("*.py")
        if path.name != "rundir.py"
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"json\.dump\(|(?<!rundir)\.write_text\(|(?<!fd)open\(.*[\"']w", line)
    ]
    assert offenders == []
