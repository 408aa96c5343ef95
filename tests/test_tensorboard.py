"""TensorBoard output of a real tiny run, read back the way TensorBoard reads it.

These tests load the event files with TensorBoard's own ``EventAccumulator``; the helpers below start a
real ``tensorboard`` server for the slow tests (``tests/test_tensorboard_server.py``, and eval's).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata as custom_scalar_metadata
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

from latentprobe import config, pixels, tensorboard_log, train
from latentprobe import data as data_mod
from latentprobe.evaluation import projector
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


def test_a_run_is_one_tensorboard_run(tiny_run):
    """Everything training logs is in ``tb`` itself: TensorBoard lists one entry per run, not five."""
    tb = tiny_run["run_dir"] / "tb"
    assert [p.name for p in tb.iterdir() if p.is_dir()] == []
    assert len(list(tb.glob("events.out.tfevents.*"))) == 1
    tags = set(accumulator(tb).Tags()["tensors"])
    assert {f"{split}/{tag}" for split in ("train", "val", "test") for tag in EPOCH_TAGS} <= tags
    assert {"test/reconstructions", "test/latent", "test/chance_accuracy"} <= tags


@pytest.mark.parametrize("split", ["train", "val"])
def test_epoch_scalars_match_history(tiny_run, split):
    history = tiny_run["summary"]["history"]
    assert history["epoch"] == list(range(1, EPOCHS + 1))
    acc = accumulator(tiny_run["run_dir"] / "tb")
    for name in EPOCH_TAGS:
        tag = f"{split}/{name}"
        assert acc.SummaryMetadata(tag).plugin_data.plugin_name == "scalars"
        steps, values = series(acc, tag)
        if split == "val":  # val also holds step 0: the untrained model and probe
            assert steps[0] == 0, tag
            initial = tiny_run["summary"]["initial"]["val"][name]
            np.testing.assert_allclose(values[0], initial, rtol=0, atol=TOLERANCE)
            steps, values = steps[1:], values[1:]
        assert steps == list(range(1, EPOCHS + 1)), tag
        expected = history[tag]
        assert len(expected) == EPOCHS
        np.testing.assert_allclose(values, expected, rtol=0, atol=TOLERANCE, err_msg=tag)
    # Accuracy is a fraction, so a swapped or mis-scaled tag would show here.
    _, accuracy = series(acc, f"{split}/probe_accuracy")
    assert all(0.0 <= a <= 1.0 for a in accuracy)


def test_train_and_val_curves_differ(tiny_run):
    """The two splits are separately written, not one series copied into both tags."""
    acc = accumulator(tiny_run["run_dir"] / "tb")
    assert series(acc, "train/reconstruction_loss")[1] != series(acc, "val/reconstruction_loss")[1]


def test_test_metrics_are_logged_at_the_last_epoch(tiny_run):
    summary = tiny_run["summary"]
    acc = accumulator(tiny_run["run_dir"] / "tb")
    for name, expected in summary["metrics"]["test"].items():
        steps, values = series(acc, f"test/{name}")
        assert steps == [EPOCHS], name
        assert values == pytest.approx([expected], abs=TOLERANCE), name


def test_reconstruction_grid_image(tiny_run):
    acc = accumulator(tiny_run["run_dir"] / "tb")
    assert acc.SummaryMetadata("test/reconstructions").plugin_data.plugin_name == "images"
    events = acc.Tensors("test/reconstructions")
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
    first = pixels.scale_array(splits.test.x[:n], splits.test.scale)  # as the model sees them
    top = np.stack([image[1 : 1 + h, 1 + i * (w + 1) : 1 + i * (w + 1) + w, 0] for i in range(n)])
    np.testing.assert_allclose(top.astype(np.float64), first[..., 0] * 255.0, atol=1.0)
    # The bottom row is the decoder's output: not a copy of the inputs.
    bottom = np.stack([image[h + 2 : 2 * h + 2, 1 + i * (w + 1) : 1 + i * (w + 1) + w, 0] for i in range(n)])
    assert not np.array_equal(top, bottom)


def test_latent_histogram(tiny_run):
    summary = tiny_run["summary"]
    acc = accumulator(tiny_run["run_dir"] / "tb")
    assert acc.SummaryMetadata("test/latent").plugin_data.plugin_name == "histograms"
    events = acc.Tensors("test/latent")
    assert [e.step for e in events] == list(range(1, EPOCHS + 1))
    buckets = tf.make_ndarray(events[-1].tensor_proto)  # rows of (left edge, right edge, count)
    assert buckets.ndim == 2 and buckets.shape[1] == 3
    encoded = min(1000, summary["data"]["sizes"]["test"])
    assert buckets[:, 2].sum() == pytest.approx(encoded * LATENT)
    assert np.all(buckets[:, 1] >= buckets[:, 0])


def test_hparams_session_is_the_run_and_no_experiment_is_written(tiny_run):
    acc = accumulator(tiny_run["run_dir"] / "tb")
    content = acc.PluginTagToContent(hparams_metadata.PLUGIN_NAME)
    # An experiment summary would fix the columns TensorBoard shows and hide which values differ.
    assert set(content) == {hparams_metadata.SESSION_START_INFO_TAG}

    start = hparams_metadata.parse_session_start_info_plugin_data(
        content[hparams_metadata.SESSION_START_INFO_TAG]
    )
    # No group name: TensorBoard names the row after the session's run (the run's tb directory)
    # instead of a hash of the values, which would merge runs with the same config.
    assert start.group_name == ""
    assert {"model.latent", "train.epochs", "probe.strategy", "data.name", "seed"} <= set(start.hparams)
    assert start.hparams["model.latent"].number_value == LATENT
    assert start.hparams["train.epochs"].number_value == EPOCHS
    assert start.hparams["probe.strategy"].string_value == "alternating"
    assert start.hparams["data.name"].string_value == "digits"
    assert start.hparams["model.hidden"].string_value == "[32]"


def custom_scalars_layout(tb: Path) -> layout_pb2.Layout:
    (event,) = accumulator(tb).Tensors(custom_scalar_metadata.CONFIG_SUMMARY_TAG)
    return layout_pb2.Layout.FromString(tf.make_ndarray(event.tensor_proto).item())


def test_custom_scalars_layout_pairs_probe_accuracy_and_reconstruction_loss(tiny_run):
    tb = tiny_run["run_dir"] / "tb"
    (category,) = custom_scalars_layout(tb).category
    assert [chart.title for chart in category.chart] == ["probe accuracy", "reconstruction loss"]
    tags = set(accumulator(tb).Tags()["tensors"])
    for chart, name in zip(category.chart, ("probe_accuracy", "reconstruction_loss"), strict=True):
        (pattern,) = chart.multiline.tag
        # Each chart draws exactly the train and val curves of its metric, not the test point.
        assert {t for t in tags if re.search(pattern, t)} == {f"train/{name}", f"val/{name}"}, pattern


def test_the_layout_adds_a_classifier_chart_only_where_there_is_a_classifier():
    with_classifier = tensorboard_log.scalars_layout(
        {"probe_accuracy": 0.1, "reconstruction_loss": 1.0, "classifier_accuracy": 0.1}
    )
    assert [c.title for c in with_classifier.category[0].chart] == [
        "probe accuracy",
        "reconstruction loss",
        "classifier accuracy",
    ]
    (pattern,) = with_classifier.category[0].chart[2].multiline.tag
    assert re.search(pattern, "val/classifier_accuracy") and not re.search(
        pattern, "test/classifier_accuracy"
    )
    assert [c.title for c in tensorboard_log.scalars_layout(["probe_accuracy"]).category[0].chart] == [
        "probe accuracy"
    ]


def test_eval_images_are_tagged_under_eval(tmp_path):
    from matplotlib.image import imsave

    png = tmp_path / "confusion.png"
    imsave(png, np.eye(4))
    log_dir = tmp_path / "eval"
    tensorboard_log.write_image_files(log_dir, [png])
    tensorboard_log.write_image_files(log_dir, [png])  # a re-eval replaces, not stacks
    assert len(list(log_dir.glob("events.out.tfevents.*"))) == 1
    acc = accumulator(log_dir)
    assert acc.Tags()["tensors"] == ["eval/confusion"]
    assert acc.SummaryMetadata("eval/confusion").plugin_data.plugin_name == "images"


@pytest.mark.parametrize("width", [1, 2, 3, 5])
def test_projector_latents_have_at_least_three_columns(tmp_path, width):
    """The projector's PCA draws nothing for fewer than 3 columns: narrower latents are padded with 0."""
    rng = np.random.default_rng(width)
    z = rng.normal(size=(50, width)).astype(np.float32)
    config_path = projector.write_projector(tmp_path, z, rng.integers(0, 10, 50), None)
    cfg = text_format.Parse(config_path.read_text(), ProjectorConfig())
    written = np.loadtxt(tmp_path / cfg.embeddings[0].tensor_path, delimiter="\t", ndmin=2)
    assert written.shape == (50, max(width, 3))
    np.testing.assert_allclose(written[:, :width], z, rtol=1e-5)
    assert (written[:, width:] == 0).all()


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
