"""TensorBoard output of a real tiny run, read back the way TensorBoard reads it.

The fast tests load the event files with TensorBoard's own ``EventAccumulator``; the slow one starts a
real ``tensorboard`` server on 127.0.0.1 and asks its HTTP data API for the curves.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.plugins.hparams import metadata as hparams_metadata

from latentprobe import config, train
from latentprobe import data as data_mod
from tests.conftest import tiny_config, write_config

EPOCHS = 2
LATENT = 4
EPOCH_TAGS = ("reconstruction_loss", "probe_loss", "probe_accuracy")
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> dict[str, Any]:
    """One tiny digits run (2 epochs, alternating probe), shared by every test in this module."""
    tmp = tmp_path_factory.mktemp("tb")
    raw = tiny_config(tmp, model={"latent": LATENT}, train={"epochs": EPOCHS})
    cfg = config.load(write_config(tmp, raw))
    summary = train.run(cfg)[0]
    run_dir = Path(summary["run_dir"])
    # The file on disk, not only the returned dict, is what the values must match.
    on_disk = json.loads((run_dir / "summary.json").read_text())
    return {"cfg": cfg, "summary": on_disk, "run_dir": run_dir}


def accumulator(path: Path) -> ea.EventAccumulator:
    acc = ea.EventAccumulator(
        str(path),
        size_guidance={
            ea.TENSORS: 0,
            ea.SCALARS: 0,
            ea.IMAGES: 0,
            ea.HISTOGRAMS: 0,
            ea.COMPRESSED_HISTOGRAMS: 0,
            ea.AUDIO: 0,
        },
    )
    acc.Reload()
    return acc


def series(acc: ea.EventAccumulator, tag: str) -> tuple[list[int], list[float]]:
    events = acc.Tensors(tag)
    return [e.step for e in events], [float(tf.make_ndarray(e.tensor_proto)) for e in events]


# ------------------------------------------------------------------------------------------------
# Event files, through TensorBoard's reader


@pytest.mark.parametrize("split", ["train", "val"])
def test_epoch_scalars_match_history(tiny_run, split):
    history = tiny_run["summary"]["history"]
    assert history["epoch"] == list(range(1, EPOCHS + 1))
    acc = accumulator(tiny_run["run_dir"] / "tb" / split)
    tags = set(acc.Tags()["tensors"])
    assert set(EPOCH_TAGS) <= tags, tags
    for tag in EPOCH_TAGS:
        assert acc.SummaryMetadata(tag).plugin_data.plugin_name == "scalars"
        steps, values = series(acc, tag)
        if split == "val":  # val also holds step 0: the untrained model and probe
            assert steps[0] == 0, (split, tag)
            initial = tiny_run["summary"]["initial"]["val"][tag]
            np.testing.assert_allclose(values[0], initial, rtol=0, atol=TOLERANCE)
            steps, values = steps[1:], values[1:]
        assert steps == list(range(1, EPOCHS + 1)), (split, tag)
        expected = history[f"{split}/{tag}"]
        assert len(expected) == EPOCHS
        np.testing.assert_allclose(values, expected, rtol=0, atol=TOLERANCE, err_msg=f"{split}/{tag}")
    # Accuracy is a fraction, so a swapped or mis-scaled tag would show here.
    _, accuracy = series(acc, "probe_accuracy")
    assert all(0.0 <= a <= 1.0 for a in accuracy)


def test_train_and_val_curves_differ(tiny_run):
    """The two splits are separately written, not one series copied into both directories."""
    train_acc = accumulator(tiny_run["run_dir"] / "tb" / "train")
    val_acc = accumulator(tiny_run["run_dir"] / "tb" / "val")
    assert series(train_acc, "reconstruction_loss")[1] != series(val_acc, "reconstruction_loss")[1]


def test_test_split_holds_final_metrics(tiny_run):
    summary = tiny_run["summary"]
    acc = accumulator(tiny_run["run_dir"] / "tb" / "test")
    for tag, expected in summary["metrics"]["test"].items():
        steps, values = series(acc, tag)
        assert steps == [EPOCHS], tag
        assert values == pytest.approx([expected], abs=TOLERANCE), tag


def test_reconstruction_grid_image(tiny_run):
    acc = accumulator(tiny_run["run_dir"] / "tb" / "test")
    assert "reconstructions" in acc.Tags()["tensors"]
    assert acc.SummaryMetadata("reconstructions").plugin_data.plugin_name == "images"
    events = acc.Tensors("reconstructions")
    assert [e.step for e in events] == list(range(1, EPOCHS + 1))

    n, h, w = train.GRID_IMAGES, 8, 8
    height, width = 2 * h + 3, n * (w + 1) + 1
    width_field, height_field, png = tf.make_ndarray(events[-1].tensor_proto)
    assert (int(width_field), int(height_field)) == (width, height)
    image = tf.io.decode_png(png).numpy()
    assert image.shape == (height, width, 1)

    # The 1-px borders are white, the top row holds the first test images as loaded by the run.
    assert (image[0] == 255).all() and (image[h + 1] == 255).all() and (image[-1] == 255).all()
    assert (image[:, 0] == 255).all() and (image[:, -1] == 255).all()
    cfg = tiny_run["cfg"]
    splits = data_mod.load(cfg.data, cfg.seed)
    first = splits.test.x[:n]
    top = np.stack([image[1 : 1 + h, 1 + i * (w + 1) : 1 + i * (w + 1) + w, 0] for i in range(n)])
    np.testing.assert_allclose(top.astype(np.float64), first[..., 0] * 255.0, atol=1.0)
    # The bottom row is the decoder's output: not a copy of the inputs.
    bottom = np.stack([image[h + 2 : 2 * h + 2, 1 + i * (w + 1) : 1 + i * (w + 1) + w, 0] for i in range(n)])
    assert not np.array_equal(top, bottom)


def test_latent_histogram(tiny_run):
    summary = tiny_run["summary"]
    acc = accumulator(tiny_run["run_dir"] / "tb" / "test")
    assert "latent" in acc.Tags()["tensors"]
    assert acc.SummaryMetadata("latent").plugin_data.plugin_name == "histograms"
    events = acc.Tensors("latent")
    assert [e.step for e in events] == list(range(1, EPOCHS + 1))
    buckets = tf.make_ndarray(events[-1].tensor_proto)  # rows of (left edge, right edge, count)
    assert buckets.ndim == 2 and buckets.shape[1] == 3
    encoded = min(1000, summary["data"]["sizes"]["test"])
    assert buckets[:, 2].sum() == pytest.approx(encoded * LATENT)
    assert np.all(buckets[:, 1] >= buckets[:, 0])


def test_root_holds_hparams(tiny_run):
    acc = accumulator(tiny_run["run_dir"] / "tb")
    content = acc.PluginTagToContent(hparams_metadata.PLUGIN_NAME)
    assert hparams_metadata.SESSION_START_INFO_TAG in content
    assert hparams_metadata.EXPERIMENT_TAG in content

    start = hparams_metadata.parse_session_start_info_plugin_data(
        content[hparams_metadata.SESSION_START_INFO_TAG]
    )
    assert {"model.latent", "train.epochs", "probe.strategy", "data.name"} <= set(start.hparams)
    assert start.hparams["model.latent"].number_value == LATENT
    assert start.hparams["train.epochs"].number_value == EPOCHS
    assert start.hparams["probe.strategy"].string_value == "alternating"
    assert start.hparams["data.name"].string_value == "digits"
    assert start.hparams["model.hidden"].string_value == "[32]"

    experiment = hparams_metadata.parse_experiment_plugin_data(content[hparams_metadata.EXPERIMENT_TAG])
    assert {"model.latent", "train.epochs", "probe.strategy"} <= {h.name for h in experiment.hparam_infos}
    metrics = {(m.name.group, m.name.tag) for m in experiment.metric_infos}
    assert metrics == {
        ("test", "probe_accuracy"),
        ("test", "reconstruction_loss"),
        ("val", "probe_accuracy"),
        ("val", "reconstruction_loss"),
    }
    # Each metric the HParams tab compares by is written under its group (a run relative to tb/).
    for group, tag in metrics:
        assert tag in accumulator(tiny_run["run_dir"] / "tb" / group).Tags()["tensors"], (group, tag)


# ------------------------------------------------------------------------------------------------
# A real TensorBoard server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(port: int, path: str, **params: str) -> Any:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}{query}", timeout=5) as response:
        return json.loads(response.read().decode("utf-8"))


@contextlib.contextmanager
def tensorboard_server(logdir: Path, log_path: Path, *flags: str) -> Iterator[tuple[int, subprocess.Popen]]:
    """A real ``tensorboard`` on 127.0.0.1 (a free port) over ``logdir``; stopped on exit, killed if stuck."""
    port = free_port()
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--load_fast=false", *flags]
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield port, server
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


@pytest.mark.slow
def test_tensorboard_server_serves_val_curve(tiny_run, tmp_path):
    run_dir = tiny_run["run_dir"]
    logdir = run_dir.parent
    val_run = (run_dir / "tb" / "val").relative_to(logdir).as_posix()
    log_path = tmp_path / "tensorboard.log"
    with tensorboard_server(logdir, log_path, "--reload_interval=1") as (port, server):
        runs: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if server.poll() is not None:
                pytest.fail(f"tensorboard exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                runs = get_json(port, "/data/runs")
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                runs = []
            if val_run in runs:
                break
            time.sleep(0.5)
        else:
            pytest.fail(
                f"tensorboard never listed {val_run!r} (runs: {runs}):\n{log_path.read_text()[-3000:]}"
            )

        tags = get_json(port, "/data/plugin/scalars/tags")
        assert set(EPOCH_TAGS) <= set(tags.get(val_run, {})), tags
        # The scalars are loaded once a run is listed, but poll briefly in case a reload is mid-way.
        expected = tiny_run["summary"]["history"]["val/probe_accuracy"]
        points: list[list[float]] = []
        while time.monotonic() < deadline:
            points = get_json(port, "/data/plugin/scalars/scalars", run=val_run, tag="probe_accuracy")
            if len(points) >= EPOCHS + 1:
                break
            time.sleep(0.5)
        assert [int(step) for _, step, _ in points] == list(range(0, EPOCHS + 1)), points
        initial = tiny_run["summary"]["initial"]["val"]["probe_accuracy"]
        np.testing.assert_allclose([v for _, _, v in points], [initial, *expected], rtol=0, atol=TOLERANCE)
