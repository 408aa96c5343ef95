"""TensorBoard writing: a run's per-epoch scalars, images, histograms, HParams and custom-scalars
layout, and eval's figures as images.

One run is one TensorBoard run, ``RUN_DIR/tb``: every tag is ``<split>/<name>`` (``train/probe_accuracy``,
``val/reconstruction_loss``, ``test/probe_accuracy``, the names of summary.json and ``compare``), all
against the epoch, with val also at step 0 (the untrained autoencoder and probe). ``tb/eval`` (a second
run, written by ``eval``) holds eval's figures as ``eval/<figure>`` images beside its embedding projector.

What the dashboards show:

- HParams: ``RUN_DIR/tb`` is the session, so each run is its own row named by its path under the log
  directory (two runs with the same config stay two rows). No experiment summary is written: one would
  fix the columns from whichever run TensorBoard reads first, with no idea which values differ across
  the log directory. Without it TensorBoard derives the columns from every run it finds and marks the
  hyperparameters whose values differ; its HParams tab ticks those first (five columns in all). The
  metric columns are the last value of each scalar (``test/probe_accuracy``, ``val/...``); the tab
  ticks the first five by name, the ``test/`` ones.
- Custom scalars: one layout per run, merged by TensorBoard: probe accuracy and reconstruction loss
  (and a classifier's accuracy) side by side, train and val in each chart, val from step 0.
- Images: ``test/reconstructions`` holds every epoch's grid; TensorBoard shows 10 per run unless
  started with ``--samples_per_plugin images=N`` (N at least the epochs; 0 shows none).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import summary as custom_scalar_summary
from tensorboard.plugins.hparams import api as hp

from latentprobe import rundir

#: The custom-scalars layout's one category, and its charts: (title, metric name), each drawn for
#: train and val when the run logs that metric.
LAYOUT_CATEGORY = "probe accuracy and reconstruction loss, train and val"
LAYOUT_CHARTS = (
    ("probe accuracy", "probe_accuracy"),
    ("reconstruction loss", "reconstruction_loss"),
    ("classifier accuracy", "classifier_accuracy"),
)
#: Tags of the images and histograms written while training (computed on test images).
RECONSTRUCTIONS_TAG = f"{rundir.TB_TEST}/reconstructions"
LATENT_TAG = f"{rundir.TB_TEST}/latent"


class TensorBoardLog:
    """The summary writer of one run's TensorBoard directory (``RUN_DIR/tb``)."""

    def __init__(self, tb_dir: Path):
        self.dir = Path(tb_dir)
        self._writer: Any = None

    @property
    def writer(self):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.dir))
        return self._writer

    def write_hparams(self, hparams: dict[str, Any]) -> None:
        """The run's settings (flat ``dotted.key -> scalar``) as an HParams session of its own."""
        with self.writer.as_default():
            # An empty trial id names the session group after the session, the run's directory: the
            # default (a hash of the values) would merge runs with the same config into one row.
            hp.hparams(hparams, trial_id="")

    def write_layout(self, metrics: dict[str, Any]) -> None:
        """The custom-scalars layout for the metrics this run logs (the names of ``metrics``)."""
        with self.writer.as_default():
            tf.summary.experimental.write_raw_pb(
                custom_scalar_summary.pb(scalars_layout(metrics)).SerializeToString(), step=0
            )

    def write_scalars(self, split: str, step: int, values: dict[str, float]) -> None:
        """Each value as the scalar ``<split>/<name>`` at ``step``; ``None`` values are skipped."""
        with self.writer.as_default():
            for name, value in values.items():
                if value is not None:
                    tf.summary.scalar(f"{split}/{name}", value, step=step)

    def write_reconstructions(self, step: int, x: np.ndarray, reconstruction: np.ndarray) -> None:
        """One image: the inputs on the top row, their reconstructions below."""
        with self.writer.as_default():
            tf.summary.image(RECONSTRUCTIONS_TAG, image_grid(x, reconstruction)[None], step=step)

    def write_latent_histogram(self, step: int, z: np.ndarray) -> None:
        with self.writer.as_default():
            tf.summary.histogram(LATENT_TAG, z, step=step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def scalars_layout(metrics: dict[str, Any] | list[str]) -> layout_pb2.Layout:
    """The custom-scalars layout: one chart per :data:`LAYOUT_CHARTS` metric in ``metrics``, each
    matching that metric's train and val tags."""
    category = layout_pb2.Category(title=LAYOUT_CATEGORY)
    for title, name in LAYOUT_CHARTS:
        if name in metrics:
            tags = f"^({rundir.TB_TRAIN}|{rundir.TB_VAL})/{name}$"
            category.chart.add(title=title, multiline=layout_pb2.MultilineChartContent(tag=[tags]))
    return layout_pb2.Layout(category=[category])


def write_image_files(log_dir: Path, paths: list[Path]) -> None:
    """Log each PNG under ``paths`` as the image ``eval/<file name stem>`` at step 0 in ``log_dir``.

    Event files already in ``log_dir`` are deleted first: a re-eval replaces the images rather than
    stacking a second set at the same step.
    """
    for old in Path(log_dir).glob("events.out.tfevents.*"):
        old.unlink()
    writer = tf.summary.create_file_writer(str(log_dir))
    try:
        with writer.as_default():
            for path in paths:
                image = tf.image.decode_png(tf.io.read_file(str(path)), channels=4)
                tf.summary.image(f"{rundir.TB_EVAL}/{Path(path).stem}", image[None], step=0)
    finally:
        writer.close()


def image_grid(x: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    """Stack images (n, H, W, C) above their reconstructions into one (2H+3, n(W+1)+1, C) array."""
    n, h, w = x.shape[0], x.shape[1], x.shape[2]
    c = x.shape[3] if x.ndim == 4 else 1
    grid = np.ones((2 * h + 3, n * (w + 1) + 1, c), np.float32)
    for row, images in enumerate((x, reconstruction)):
        top = 1 + row * (h + 1)
        for i in range(n):
            left = 1 + i * (w + 1)
            grid[top : top + h, left : left + w] = images[i].reshape(h, w, c)
    return grid


def flatten_hparams(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten a config mapping to ``dotted.key -> str|int|float|bool`` (lists become strings)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(flatten_hparams(value, name))
        elif value is None or isinstance(value, (list, tuple)):
            out[name] = str(value)
        else:
            out[name] = value
    return out
