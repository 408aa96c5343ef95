"""TensorBoard writing for a run: per-epoch scalars by split, images, histograms and HParams.

Layout under ``RUN_DIR/tb``: ``train/`` and ``val/`` hold the per-epoch scalars under the same tags
(``reconstruction_loss``, ``probe_loss``, ``probe_accuracy``, variant terms), so TensorBoard draws train
and val on one chart, all against the epoch: the autoencoder's and the probe's curves share that axis.
``test/`` holds the reconstruction grid, the latent histogram and the final test scalars; the ``tb``
root holds the HParams entry, so the HParams tab compares every run found under a log directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

#: Metrics the HParams tab shows for each run, as (split, tag).
HPARAM_METRICS = (
    ("test", "probe_accuracy"),
    ("test", "reconstruction_loss"),
    ("val", "probe_accuracy"),
    ("val", "reconstruction_loss"),
)


class TensorBoardLog:
    """Summary writers for one run directory."""

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
        with self.writer("test").as_default():
            tf.summary.image("reconstructions", image_grid(x, reconstruction)[None], step=step)

    def write_latent_histogram(self, step: int, z: np.ndarray) -> None:
        with self.writer("test").as_default():
            tf.summary.histogram("latent", z, step=step)

    def flush(self) -> None:
        for w in self._writers.values():
            w.flush()

    def close(self) -> None:
        for w in self._writers.values():
            w.close()
        self._writers.clear()


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
