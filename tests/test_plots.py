"""eval's and compare's figures, read back from the matplotlib objects: every line its own colour and
marker and a legend entry, axes that say what they measure, readable cell numbers. No TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_hex

from latentprobe import plots
from latentprobe.comparison.plot import PlotData, capacity_figure


def budget_rows() -> list[dict]:
    """eval.json's probe rows: 3 feature sets x 3 probes x budgets 10, 100 and all (of 1000 labels)."""
    rng = np.random.default_rng(0)
    return [
        {"features": f, "probe": p, "budget": b, "labels": n, "accuracy": float(rng.uniform(0.3, 0.95))}
        for f in ("encoder", "random_encoder", "pca")
        for p in ("linear", "mlp", "knn")
        for b, n in (("10", 100), ("100", 1000), ("all", 1293))
    ]


def styles(lines) -> list[tuple[str, str, str]]:
    return [(to_hex(line.get_color()), line.get_marker(), line.get_linestyle()) for line in lines]


def test_budget_lines_differ_in_colour_and_are_named_in_the_legend():
    fig = plots.budget_figure(budget_rows(), chance=0.1, train_size=1293, num_classes=10)
    (ax,) = fig.axes
    lines = [
        line for line in ax.get_lines() if line.get_label() and not line.get_label().startswith("chance")
    ]
    assert len(lines) == 9
    colours = [c for c, _, _ in styles(lines)]
    assert len(set(colours)) == 9  # the encoder's and PCA's lines no longer share colours
    assert len({(m, ls) for _, m, ls in styles(lines)}) == 9
    by_label = {line.get_label(): line for line in lines}
    assert by_label["encoder, linear"].get_marker() != by_label["encoder, mlp"].get_marker()
    assert by_label["encoder, linear"].get_linestyle() != by_label["pca, linear"].get_linestyle()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:9] == [line.get_label() for line in lines]
    assert legend[9].startswith("chance (0.10")
    assert ax.get_xlabel() == "labeled train examples per class (log scale)"
    assert ax.get_ylabel() == "test accuracy (fraction correct)"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["10", "100", "all\n(129)"]


def test_budget_axis_keeps_close_lines_apart_and_shows_chance_where_it_falls():
    rows = [dict(r, accuracy=0.9 + r["accuracy"] / 20) for r in budget_rows()]
    ax = plots.budget_figure(rows, chance=0.1, train_size=1293, num_classes=10).axes[0]
    assert ax.get_ylim()[0] >= 0.8 and ax.get_ylim()[1] == pytest.approx(1.01)
    assert ax.get_legend().get_texts()[-1].get_text() == "chance (0.10, below the axis)"
    ax = plots.budget_figure(budget_rows(), chance=0.25, train_size=1293, num_classes=10).axes[0]
    assert ax.get_ylim()[0] <= 0.25


def capacity_data() -> PlotData:
    lines = {
        kind: [(2.0, 0.6 + i / 20, 0.02), (8.0, 0.9 - i / 50, 0.01), (32.0, 0.93, None)]
        for i, kind in enumerate(("ae", "dae", "vae", "sparse"))
    }
    loss = {kind: [(x, 20 - x / 4, 0.5) for x, _, _ in points] for kind, points in lines.items()}
    return PlotData(
        "model.latent",
        "model.kind",
        [2.0, 8.0, 32.0],
        {"test/probe_accuracy": lines, "test/reconstruction_loss": loss},
    )


def test_capacity_lines_differ_in_colour_and_marker_with_one_legend_naming_each():
    fig = capacity_figure(capacity_data())
    accuracy, loss = fig.axes
    for ax in (accuracy, loss):
        lines = [line for line in ax.get_lines() if line.get_marker() not in ("", "None", "_")]
        kept = styles(lines)
        assert len(kept) == 4
        assert len({c for c, _, _ in kept}) == 4 and len({m for _, m, _ in kept}) == 4
        assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "8", "32"]
        assert ax.get_xlabel() == "latent size (dimensions of z)"
    assert accuracy.get_ylabel() == "fraction correct"
    assert loss.get_ylabel() == "per example, summed over inputs"
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "model.kind=ae",
        "model.kind=dae",
        "model.kind=vae",
        "model.kind=sparse",
    ]
    # one panel: the legend is the panel's own
    panel = {"eval/active_units": capacity_data().panels["test/probe_accuracy"]}
    one = PlotData("model.latent", "model.kind", [2.0, 8.0, 32.0], panel)
    ax = capacity_figure(one).axes[0]
    assert len(ax.get_legend().get_texts()) == 4 and ax.get_ylabel() == "count of latent dimensions"


def test_the_manifold_has_z_axes_with_z2_growing_upwards():
    z1, z2 = np.linspace(-3.0, 12.0, 4), np.linspace(-4.0, 14.0, 3)
    images = np.zeros((3, 4, 8, 8, 1), np.float32)
    images[2, 0] = 1.0  # the code (z1[0], z2[2]): left, top
    fig = plots.manifold_figure(images, z1, z2, "decoder")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "z1 (latent dimension 1)" and ax.get_ylabel() == "z2 (latent dimension 2)"
    (image,) = ax.get_images()
    left, right, bottom, top = image.get_extent()
    assert left < -3.0 < 12.0 < right and bottom < -4.0 < 14.0 < top
    low, high = ax.get_ylim()
    assert low < high  # z2 grows upwards
    fig.canvas.draw()
    shown = [t for t in ax.get_yticklabels() if low <= t.get_position()[1] <= high]
    values = [float(t.get_text().replace("\u2212", "-")) for t in shown]
    assert len(values) >= 3 and values == [t.get_position()[1] for t in shown]  # labelled with z values
    sheet = image.get_array()
    assert sheet[:8, :8].min() == 1.0 and sheet[8:, :].max() == 0.0  # drawn at the top left


def test_confusion_cells_carry_readable_counts():
    matrix = np.arange(100).reshape(10, 10)
    fig = plots.confusion_figure(matrix, "test split")
    ax = fig.axes[0]
    texts = ax.texts
    assert [int(t.get_text()) for t in texts] == list(range(100))
    assert min(t.get_fontsize() for t in texts) >= 9
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    assert fig.axes[1].get_ylabel() == "share of the true class's test examples"  # the colour bar


def test_latent_scatter_gives_each_class_a_colour_a_marker_and_a_label():
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(10), 30)
    z = rng.normal(size=(300, 2)) + y[:, None]
    ax = plots.latent_scatter_figure(z, y, "test latents", "z1 (latent dimension 1)", "z2").axes[0]
    points = ax.collections
    assert len({to_hex(c.get_facecolor()[0]) for c in points}) == 10
    assert len({c.get_paths()[0].vertices.tobytes() for c in points}) == 10  # ten marker shapes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [str(k) for k in range(10)]
    assert sorted(t.get_text() for t in ax.texts) == [str(k) for k in range(10)]  # at each class's median
    assert ax.get_xlabel() == "z1 (latent dimension 1)"


def test_latent_scatter_legend_and_medians_name_the_classes():
    names = ["T-shirt/top", "Trouser", "Ankle boot"]
    y = np.repeat([0, 2], 20)  # class 1 absent from the points: neither in the legend nor at a median
    z = np.random.default_rng(2).normal(size=(40, 2)) + y[:, None]
    ax = plots.latent_scatter_figure(z, y, "test latents", class_names=names).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["T-shirt/top", "Ankle boot"]
    assert sorted(t.get_text() for t in ax.texts) == ["Ankle boot", "T-shirt/top"]


def test_confusion_axes_name_the_classes():
    names = ["cat", "dog", "bird"]
    ax = plots.confusion_figure(np.eye(3, dtype=int), "test split", names).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    ax = plots.confusion_figure(np.eye(3, dtype=int), "test split").axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "1", "2"]


def test_reconstruction_rows_are_named():
    x = np.zeros((20, 8, 8, 1), np.float32)
    ax = plots.reconstructions_figure(x, x).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["input", "reconstruction"] * 2
