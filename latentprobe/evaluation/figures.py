"""eval's figures of a run, drawn by :mod:`latentprobe.plots` as PNG under ``RUN_DIR/plots``.

The latent scatter (direct for a 2-d latent, else PCA; t-SNE on request), reconstructions and, for a
2-d latent, the decoder over the latent plane; the label-budget curve and the main probe's confusion
matrix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from latentprobe import data as data_mod
from latentprobe import pixels, plots
from latentprobe.evaluation import latent_stats
from latentprobe.evaluation.controls import PCA_MAX_TRAIN
from latentprobe.models import pretrained

#: Test points drawn in the latent scatter (PCA/direct); t-SNE takes fewer, it is slow.
SCATTER_POINTS = 5000
TSNE_POINTS = 2000
RECONSTRUCTIONS = 20
MANIFOLD_STEPS = 15


def write_figures(
    out: Path,
    model: Any,
    z_train: np.ndarray,
    z_test: np.ndarray,
    splits: data_mod.Splits,
    report: dict[str, Any],
    seed: int,
    tsne: bool,
) -> list[Path]:
    """Draw every figure of an evaluated run into ``out`` and return their paths.

    Args:
        z_train, z_test: the encoder's latents of the train part and the test split.
        report: the eval report so far (probes, chance, main probe, confusion matrix).
        seed: the eval seed (the scatter's subsample, PCA and t-SNE).
        tsne: also draw a t-SNE of a test subsample.
    """
    y_test, names = splits.test.y, splits.class_names
    shown = np.random.default_rng([seed, 10]).permutation(len(z_test))[:SCATTER_POINTS]
    paths = []
    if z_test.shape[1] == 1:  # a 1-d code: its value against the class, spread a little to be seen
        jitter = np.random.default_rng([seed, 11]).uniform(-0.3, 0.3, len(shown))
        fig = plots.latent_scatter_figure(
            np.stack([z_test[shown, 0], y_test[shown] + jitter], axis=1),
            y_test[shown],
            "test latents",
            "z1 (the latent's one dimension)",
            "true class (spread by +-0.3 to show density)",
            names,
        )
        fig.axes[0].set_yticks(range(len(names)), names)
        paths.append(plots.save(fig, out / "latent.png"))
    elif z_test.shape[1] == 2:
        paths.append(
            plots.plot_latent_scatter(
                z_test[shown],
                y_test[shown],
                "test latents",
                out / "latent.png",
                "z1 (latent dimension 1)",
                "z2 (latent dimension 2)",
                names,
            )
        )
    else:
        from sklearn.decomposition import PCA

        pca = PCA(2, random_state=seed).fit(z_train[:PCA_MAX_TRAIN])
        title = f"test latents, PCA of {z_test.shape[1]} dimensions (fitted on train)"
        share = pca.explained_variance_ratio_
        paths.append(
            plots.plot_latent_scatter(
                pca.transform(z_test[shown]),
                y_test[shown],
                title,
                out / "latent.png",
                f"PC1 of z ({share[0]:.0%} of the variance)",
                f"PC2 of z ({share[1]:.0%} of the variance)",
                names,
            )
        )
    if tsne:
        from sklearn.manifold import TSNE

        few = shown[:TSNE_POINTS]
        embedded = TSNE(2, random_state=seed, init="pca").fit_transform(z_test[few])
        title = f"test latents, t-SNE of {len(few)} points"
        paths.append(
            plots.plot_latent_scatter(
                embedded,
                y_test[few],
                title,
                out / "latent_tsne.png",
                "t-SNE 1 (no unit)",
                "t-SNE 2 (no unit)",
                names,
            )
        )
    if splits.is_image and getattr(model, "decoder", None) is not None:  # a pretrained may have none
        x = pixels.scale_array(splits.test.x[:RECONSTRUCTIONS], splits.test.scale)
        paths.append(plots.plot_reconstructions(x, model.predict_on_batch(x), out / "reconstructions.png"))
        if z_test.shape[1] == 2:
            paths.append(plot_manifold(model, z_train, out / "manifold.png"))
    paths.append(
        plots.plot_budget_curve(
            report["probes"],
            report["chance_accuracy"],
            out / "label_budget.png",
            len(z_train),
            splits.num_classes,
        )
    )
    main = report["main_probe"]
    budget = "every train label" if main["budget"] == "all" else f"{main['budget']} labels per class"
    title = f"test split: {main['probe']} probe on the {main['features']} latents, {budget}"
    paths.append(
        plots.plot_confusion(np.array(report["confusion_matrix"]), title, out / "confusion.png", names)
    )
    return paths


def plot_manifold(model: Any, z_train: np.ndarray, path: Path) -> Path:
    """Decode a grid over the 2-d box holding the train codes' central mass (the VAE notebook's sweep)."""
    bounds = latent_stats.latent_bounds(z_train, 5.0, 95.0)
    z1 = np.linspace(bounds[0, 0], bounds[1, 0], MANIFOLD_STEPS)
    z2 = np.linspace(bounds[0, 1], bounds[1, 1], MANIFOLD_STEPS)
    grid = np.stack(np.meshgrid(z1, z2), axis=-1).reshape(-1, 2).astype(np.float32)  # row i: z2[i]
    if isinstance(model, pretrained.PretrainedEncoder):  # its decoder reads the encoder's range
        images = np.asarray(model.decode(grid))
    else:
        images = np.asarray(model.decoder.predict_on_batch(grid))
    images = images.reshape(MANIFOLD_STEPS, MANIFOLD_STEPS, *images.shape[1:])
    title = "decoder outputs over the latent plane (the central 90% of the train codes)"
    return plots.plot_manifold(images, z1, z2, title, path)
