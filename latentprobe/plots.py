"""Matplotlib figures for eval and compare, written as PNG (Agg, no display needed).

Figures are built with ``matplotlib.figure.Figure`` rather than pyplot, so no global figure state is
kept between calls. Each ``*_figure`` function returns the figure (tests read its lines, labels and
texts); each ``plot_*`` function draws it and writes it. Every line of a figure has its own colour and
marker and a legend entry; every axis says what it measures and in what unit. Imports no TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

DPI = 100

#: Markers of successive lines (and classes), so lines differ in shape as well as colour.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")

#: Units of metrics, by the last part of the name (``test/reconstruction_loss`` -> reconstruction_loss).
_UNITS = {
    "reconstruction_loss": "per example, summed over inputs",
    "elbo_loss": "negative ELBO, nats per example",
    "kl_loss": "nats per example",
    "probe_loss": "cross-entropy, nats per example",
    "classifier_loss": "cross-entropy, nats per example",
    "active_units": "count of latent dimensions",
    "nmi": "normalised mutual information, 0 to 1",
    "online_offline_gap": "accuracy difference",
    "train_seconds": "seconds",
    "train_samples_per_second": "examples per second",
}


def metric_unit(name: str) -> str | None:
    """What a metric's numbers measure (``fraction correct``, ``nats per example`` ...); None if unknown."""
    last = name.rsplit("/", 1)[-1]
    if last in _UNITS:
        return _UNITS[last]
    if last.endswith("accuracy") or "@" in last:
        return "fraction correct"
    if last.endswith("_loss"):
        return "per example"
    return None


def line_colors(n: int) -> list:
    """``n`` distinct colours (tab10, tab20 beyond ten)."""
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` to ``path`` (its suffix picks the format), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


# ---- latents ----


def latent_scatter_figure(
    z2: np.ndarray,
    y: np.ndarray,
    title: str,
    xlabel: str = "z1",
    ylabel: str = "z2",
    class_names: Sequence[str] | None = None,
) -> Figure:
    """Points ``z2`` (n, 2), a colour and marker per class ``y``, each class's name written at its
    median point, and a legend of classes.

    Args:
        class_names: the name of each class 0..K-1 (default: the class numbers).
    """
    fig = Figure(figsize=(6.5, 5.5))
    ax = fig.add_subplot()
    classes = np.unique(y)
    names = [class_label(k, class_names) for k in classes]
    colors = line_colors(len(classes))
    size = float(np.clip(3000 / max(len(z2), 1), 3, 12))  # bigger points where there are few
    for i, k in enumerate(classes):
        members = z2[y == k]
        ax.scatter(
            members[:, 0],
            members[:, 1],
            s=size,
            alpha=0.6,
            color=colors[i],
            marker=MARKERS[i % len(MARKERS)],
            label=names[i],
            linewidths=0,
        )
    # Long names (Fashion-MNIST's "Ankle boot") are written smaller at the medians, to cover fewer points.
    fontsize = 12 if max(len(n) for n in names) <= 3 else 9
    for i, k in enumerate(classes):
        cx, cy = np.median(z2[y == k], axis=0)
        box = {"boxstyle": "round,pad=0.15", "facecolor": colors[i], "alpha": 0.8, "linewidth": 0}
        ax.text(cx, cy, names[i], ha="center", va="center", fontsize=fontsize, fontweight="bold", bbox=box)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.2)
    legend_scale = (40 / size) ** 0.5  # legend markers of about 40 points^2, whatever the points' size
    ax.legend(
        markerscale=legend_scale,
        fontsize="small",
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        title="class",
    )
    return fig


def plot_latent_scatter(
    z2: np.ndarray,
    y: np.ndarray,
    title: str,
    path: Path,
    xlabel: str = "z1",
    ylabel: str = "z2",
    class_names: Sequence[str] | None = None,
) -> Path:
    """Write :func:`latent_scatter_figure` to ``path``."""
    return save(latent_scatter_figure(z2, y, title, xlabel, ylabel, class_names), path)


def class_label(k: int, class_names: Sequence[str] | None) -> str:
    """The name of class ``k``: ``class_names[k]``, or the number where there are no names."""
    return str(class_names[int(k)]) if class_names is not None else str(int(k))


def manifold_figure(images: np.ndarray, z1: np.ndarray, z2: np.ndarray, title: str) -> Figure:
    """Decoder outputs over a grid of the 2-d latent plane, on axes of z values.

    Args:
        images: (len(z2), len(z1), H, W[, C]) in [0, 1]; ``images[i, j]`` decodes ``(z1[j], z2[i])``.
        z1, z2: the grid's values along each latent dimension, ascending.
    """
    rows, cols = images.shape[:2]
    h, w = images.shape[2:4]
    # The first row of the sheet is drawn at the top, so it holds the largest z2 (the y axis points up).
    sheet = (
        images[::-1].reshape(rows, cols, h, w, -1)[..., 0].transpose(0, 2, 1, 3).reshape(rows * h, cols * w)
    )
    dx = (z1[-1] - z1[0]) / max(cols - 1, 1)
    dy = (z2[-1] - z2[0]) / max(rows - 1, 1)
    extent = (z1[0] - dx / 2, z1[-1] + dx / 2, z2[0] - dy / 2, z2[-1] + dy / 2)
    fig = Figure(figsize=(7.5, 7.5))
    ax = fig.add_subplot()
    ax.imshow(sheet, cmap="gray", vmin=0, vmax=1, interpolation="nearest", extent=extent, aspect="auto")
    ax.set_xlabel("z1 (latent dimension 1)")
    ax.set_ylabel("z2 (latent dimension 2)")
    ax.set_title(title)
    return fig


def plot_manifold(images: np.ndarray, z1: np.ndarray, z2: np.ndarray, title: str, path: Path) -> Path:
    """Write :func:`manifold_figure` to ``path``."""
    return save(manifold_figure(images, z1, z2, title), path)


# ---- images ----


def reconstructions_figure(x: np.ndarray, reconstruction: np.ndarray) -> Figure:
    """Test inputs over their reconstructions, ten a row, each row named ``input`` or ``reconstruction``."""
    n = len(x)
    cols = min(n, 10)
    rows = -(-n // cols)
    pad = rows * cols - n
    x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
    r = np.concatenate([reconstruction, np.zeros((pad, *reconstruction.shape[1:]), reconstruction.dtype)])
    pairs = np.stack([x.reshape(rows, cols, *x.shape[1:]), r.reshape(rows, cols, *r.shape[1:])], axis=1)
    grid = pairs.reshape(rows * 2, cols, *x.shape[1:])
    h, w = grid.shape[2:4]
    sheet = (
        grid.reshape(rows * 2, cols, h, w, -1)[..., 0].transpose(0, 2, 1, 3).reshape(rows * 2 * h, cols * w)
    )
    fig = Figure(figsize=(max(3.0, cols * 0.7) + 1.2, rows * 2 * 0.7 + 0.5))
    ax = fig.add_subplot()
    ax.imshow(sheet, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks([(i + 0.5) * h - 0.5 for i in range(rows * 2)], ["input", "reconstruction"] * rows)
    ax.set_xticks([])
    ax.tick_params(length=0)
    for edge in range(2, rows * 2, 2):  # a line between the pairs of rows
        ax.axhline(edge * h - 0.5, color="tab:red", linewidth=1)
    ax.set_title(f"{n} test inputs and their reconstructions")
    return fig


def plot_reconstructions(x: np.ndarray, reconstruction: np.ndarray, path: Path) -> Path:
    """Write :func:`reconstructions_figure` to ``path``."""
    return save(reconstructions_figure(x, reconstruction), path)


# ---- probes ----

#: A colour family per feature set (a shade per probe), a line style per feature set, a marker per probe.
_FEATURE_SHADES = {"encoder": 0, "pca": 4, "random_encoder": 8, "pixels": 12}  # tab20c's blues, oranges,
_FEATURE_STYLES = {"encoder": "-", "pca": "--", "random_encoder": ":", "pixels": "-."}  # greens, purples
_PROBE_ORDER = ("linear", "mlp", "knn")


def budget_figure(rows: Sequence[dict], chance: float, train_size: int, num_classes: int) -> Figure:
    """Test accuracy against labeled examples per class, a line per (features, probe).

    Each line has its own colour (a colour family per feature set: blue the encoder, orange PCA, green
    the random encoder, purple the raw pixels) and the probe's marker; the controls are dashed (PCA),
    dotted (random) and dash-dotted (pixels).
    """
    series: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for row in rows:
        series.setdefault((row["features"], row["probe"]), []).append(
            (row["labels"] / num_classes, row["accuracy"])
        )
    fig = Figure(figsize=(8, 5))
    ax = fig.add_subplot()
    shades = colormaps["tab20c"]
    probes = list(dict.fromkeys([*_PROBE_ORDER, *(p for _, p in series)]))
    families = list(dict.fromkeys([*_FEATURE_SHADES, *(f for f, _ in series)]))
    for (features, probe), points in series.items():
        points.sort()
        xs, ys = zip(*points, strict=True)
        j = probes.index(probe)
        base = _FEATURE_SHADES.get(features, 4 * (families.index(features) % 5))
        ax.plot(
            xs,
            ys,
            linestyle=_FEATURE_STYLES.get(features, "-."),
            marker=MARKERS[j % len(MARKERS)],
            color=shades(base + j % 3),
            markersize=7,
            label=f"{features}, {probe}",
        )
    # The y axis starts a little below the lowest accuracy, so that close lines stay apart; chance is
    # drawn where it falls inside, else named in the legend.
    lowest = min(y for points in series.values() for _, y in points) if series else chance
    bottom = max(0.0, math.floor((min(lowest, chance) if chance > lowest - 0.25 else lowest) * 20 - 1) / 20)
    if chance >= bottom:
        ax.axhline(chance, color="gray", linewidth=1, label=f"chance ({chance:.2f})")
    else:
        ax.plot([], [], color="gray", linewidth=1, label=f"chance ({chance:.2f}, below the axis)")
    ax.set_ylim(bottom, 1.01)
    ax.set_xscale("log")
    budgets = sorted({x for points in series.values() for x, _ in points})
    ax.set_xticks(budgets, [_budget_tick(b, train_size, num_classes) for b in budgets])
    ax.minorticks_off()
    ax.set_xlabel("labeled train examples per class (log scale)")
    ax.set_ylabel("test accuracy (fraction correct)")
    ax.set_title("label budget: probes on the encoder's latents and on the controls")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5), title="features, probe")
    return fig


def _budget_tick(per_class: float, train_size: int, num_classes: int) -> str:
    if abs(per_class * num_classes - train_size) < 0.5:
        return f"all\n({per_class:.0f})"
    return f"{per_class:g}"


def plot_budget_curve(
    rows: Sequence[dict], chance: float, path: Path, train_size: int, num_classes: int
) -> Path:
    """Write :func:`budget_figure` to ``path``."""
    return save(budget_figure(rows, chance, train_size, num_classes), path)


def confusion_figure(matrix: np.ndarray, title: str, class_names: Sequence[str] | None = None) -> Figure:
    """A confusion matrix: rows true classes, colour the share of the row, the count in each cell; the
    axes name the classes (``class_names``, default the class numbers)."""
    matrix = np.asarray(matrix)
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros(matrix.shape, float), where=totals > 0)
    k = len(matrix)
    # At least wide and tall enough for the title and the colour bar's label with few classes.
    fig = Figure(figsize=(max(6.0, 2.2 + 0.6 * k), max(4.2, 1.2 + 0.6 * k)), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fontsize = 10 if k <= 12 else 8 if k <= 20 else 6
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                str(matrix[i, j]),
                ha="center",
                va="center",
                fontsize=fontsize,
                color="white" if share[i, j] > 0.5 else "black",
            )
    names = [class_label(i, class_names) for i in range(k)]
    long = max(len(n) for n in names) > 3
    if long:
        ax.set_xticks(range(k), names, rotation=45, ha="right", rotation_mode="anchor")
    else:
        ax.set_xticks(range(k), names)
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class's test examples")
    return fig


def plot_confusion(
    matrix: np.ndarray, title: str, path: Path, class_names: Sequence[str] | None = None
) -> Path:
    """Write :func:`confusion_figure` to ``path``."""
    return save(confusion_figure(matrix, title, class_names), path)
