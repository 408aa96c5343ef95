"""TensorBoard's embedding projector for a run: test latents, their labels and a sprite of the inputs.

Written next to eval's TensorBoard images (``RUN_DIR/tb/eval``), so the projector finds it under the
run ``eval`` with ``tensorboard --logdir RUN_DIR/tb`` (or any parent of it). The latents are a
plain TSV (``tensor_path``), which the projector reads without a checkpoint. File names are in
:mod:`latentprobe.rundir`.

The projector's PCA, its default view, needs at least 3 columns: on fewer it computes NaN coordinates
and draws an empty canvas ("Total variance described: NaN%"). A 1- or 2-d latent is therefore written
with zero columns appended (:data:`MIN_COLUMNS`): the padded points span only the latent's own line or
plane, which the 3-d PCA view draws (rotated) with 100% of the variance described.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from google.protobuf import text_format
from matplotlib.image import imsave
from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

from latentprobe import rundir

#: The projector accepts sprites up to 8192 px on a side.
MAX_SPRITE_SIDE = 8192
#: Columns the projector's 3-d PCA needs; narrower latents are padded with zeros.
MIN_COLUMNS = 3


def sprite_image(x: np.ndarray) -> np.ndarray:
    """Images (n, H, W[, 1]) in [0, 1] tiled row-major into one square-ish grayscale sheet (uint8)."""
    n, h, w = x.shape[:3]
    side = int(np.ceil(np.sqrt(n)))
    images = np.zeros((side * side, h, w), dtype=np.float32)
    images[:n] = x.reshape(n, h, w)
    sheet = images.reshape(side, side, h, w).transpose(0, 2, 1, 3).reshape(side * h, side * w)
    # Inverted (dark strokes on white), which the projector's white background shows best.
    return (255 * (1 - np.clip(sheet, 0, 1))).astype(np.uint8)


def write_projector(
    log_dir: Path,
    z: np.ndarray,
    y: np.ndarray,
    x: np.ndarray | None,
    class_names: Sequence[str] | None = None,
    name: str = "test_latents",
) -> Path:
    """Write latents ``z`` with labels ``y`` (and a sprite of images ``x``) for the projector.

    The metadata has a header line and two columns: ``class`` (the name of the class, from
    ``class_names``; the number without them) and ``label`` (the class number), so the projector can
    colour and search the points by either. A latent narrower than :data:`MIN_COLUMNS` is written with
    zero columns appended.

    Returns:
        The path of ``projector_config.pbtxt``.
    """
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    z = np.asarray(z).reshape(len(z), -1)
    if z.shape[1] < MIN_COLUMNS:
        z = np.concatenate([z, np.zeros((len(z), MIN_COLUMNS - z.shape[1]), z.dtype)], axis=1)
    tensors = io.StringIO()
    np.savetxt(tensors, z, delimiter="\t", fmt="%.6g")
    rundir.write_text(log_dir / rundir.PROJECTOR_TENSORS, tensors.getvalue())
    names = [_tsv_cell(n) for n in class_names] if class_names is not None else None
    rows = [f"{names[int(k)] if names else int(k)}\t{int(k)}\n" for k in y]
    # Two columns: a header line first (the projector's convention).
    rundir.write_text(log_dir / rundir.PROJECTOR_METADATA, "class\tlabel\n" + "".join(rows))
    config = ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = name
    embedding.tensor_path = rundir.PROJECTOR_TENSORS
    embedding.metadata_path = rundir.PROJECTOR_METADATA
    if x is not None and x.ndim == 4 and x.shape[-1] == 1:
        h, w = x.shape[1:3]
        if int(np.ceil(np.sqrt(len(x)))) * max(h, w) <= MAX_SPRITE_SIDE:
            imsave(log_dir / rundir.PROJECTOR_SPRITE, sprite_image(x), cmap="gray", vmin=0, vmax=255)
            embedding.sprite.image_path = rundir.PROJECTOR_SPRITE
            embedding.sprite.single_image_dim.extend([w, h])
    path = log_dir / rundir.PROJECTOR_CONFIG
    rundir.write_text(path, text_format.MessageToString(config))
    return path


def _tsv_cell(text: str) -> str:
    """``text`` as one TSV cell: tabs and line breaks would split it, so they become spaces."""
    return " ".join(str(text).replace("\t", " ").splitlines()) or "?"
