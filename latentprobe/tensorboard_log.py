"""TensorBoard writing: a run's per-epoch scalars by split, images, histograms and HParams, and eval's
figures as images.

Layout under ``RUN_DIR/tb`` (names in :mod:`latentprobe.rundir`): ``train/`` and ``val/`` hold the
per-epoch scalars under the same tags (``reconstruction_loss``, ``probe_loss``, ``probe_accuracy``,
variant terms), so TensorBoard draws train and val on one chart, all against the epoch: the
autoencoder's and the probe's curves share that axis. ``test/`` holds the reconstruction grid, the latent
histogram and the final test scalars; the ``tb`` root holds the HParams entry, so the HParams tab
compares every run found under a log directory. ``eval/`` holds eval's figures
(:func:`write_image_files`) beside its embedding projector.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

from latentprobe import rundir

#: Metrics the HParams tab shows for each run, as (split, tag).
HPARAM_METRICS = (
    (rundir.TB_TEST, "probe_accuracy"),
    (rundir.TB_TEST, "reconstruction_loss"),
    (rundir.TB_VAL, "probe_accuracy"),
    (rundir.TB_VAL, "reconstruction_loss"),
)


class TensorBoardLog:
    """Summary writers for one run's TensorBoard directory (``RUN_DIR/tb``), one per split."""

    def __init__(self, tb_dir: Path):
        self.dir = Path(tb_dir)
        self._writers: dict[str, Any] = {}

    def writer(self, split: str):
        if split not in self._writers:
            path = self.dir if split == "" else self.dir / split
            self._writers[split] = tf.summary.create_file_writer(str(path))
        return self._writers[split]

    def write_hparams(self, hparams: dict[str, Any]) -> None:
        """The run's settings (flat ``dotted.key -> scalar``) and the metrics to compare them by."""
        with self.writer("").as_default():
            hp.hparams_config(
                hparams=[hp.HParam(name) for name in hparams],
                metrics=[
                    hp.Metric(tag, group=split, display_name=f"{split}/{tag}")
                    for split, tag in HPARAM_METRICS
                ],
            )
            hp.hparams(hparams)

    def write_scalars(self, split: str, step: int, values: dict[str, float]) -> None:
        with self.writer(split).as_default():
            for name, value in values.items():
                if value is not None:
                    tf.summary.scalar(name, value, step=step)

    def write_reconstructions(self, step: int, x: np.ndarray, reconstruction: np.ndarray) -> None:
        """One image: the inputs on the top row, their reconstructions below."""
        with self.writer(rundir.TB_TEST).as_default():
            tf.summary.image("reconstructions", image_grid(x, reconstruction)[None], step=step)

    def write_latent_histogram(self, step: int, z: np.ndarray) -> None:
        with self.writer(rundir.TB_TEST).as_default():
            tf.summary.histogram("latent", z, step=step)

    def close(self) -> None:
        for w in self._writers.values():
            w.close()
        self._writers.clear()


def write_image_files(log_dir: Path, paths: list[Path]) -> None:
    """Log each PNG under ``paths`` as an image summary named after its file, at step 0, in ``log_dir``.

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
                tf.summary.image(Path(path).stem, image[None], step=0)
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
