"""Matplotlib figures of a finished run. ``python -m latentprobe.plots RUN_DIR`` writes them.

``write_latent_scatter``: the test split's probe features (a VAE's ``z_mean``), coloured by class, as in
seed 004's scatter of a 2-d latent space. Codes wider than 2 show their first two dimensions.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from latentprobe import data as data_mod
from latentprobe.errors import UserError

LATENT_SCATTER = "latents_test.png"


def write_latent_scatter(run_dir: Path, path: Path | None = None) -> Path:
    """Encode the run's test split with its saved encoder and save a scatter of the first two dimensions.

    Returns:
        The PNG's path (``RUN_DIR/latents_test.png`` unless ``path`` is given).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from latentprobe.evaluate import load_run
    from latentprobe.metrics import encode

    run_dir = Path(run_dir)
    cfg, model, _, _ = load_run(run_dir)
    splits = data_mod.load(cfg.data, cfg.seed)
    z = encode(model, splits.test.x)
    if z.shape[1] < 2:
        raise UserError(f"{run_dir}: the latent has {z.shape[1]} dimension; a scatter needs 2")
    fig, ax = plt.subplots(figsize=(6, 5), dpi=120)
    points = ax.scatter(z[:, 0], z[:, 1], c=splits.test.y, cmap="tab10", s=2, alpha=0.6)
    fig.colorbar(points, ax=ax, ticks=np.arange(splits.num_classes), label="class")
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    ax.set_title(f"{cfg.model.kind}, latent {cfg.model.latent}: {splits.name} test split ({len(z)} images)")
    path = Path(path) if path is not None else run_dir / LATENT_SCATTER
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


if __name__ == "__main__":
    try:
        for arg in sys.argv[1:]:
            print(write_latent_scatter(Path(arg)))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
