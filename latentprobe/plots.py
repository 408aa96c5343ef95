"""Matplotlib figures for eval and compare, written as PNG (Agg, no display needed).

Figures are built with ``matplotlib.figure.Figure`` rather than pyplot, so no global figure state is
kept between calls. Imports no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

DPI = 100


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def plot_latent_scatter(z2: np.ndarray, y: np.ndarray, title: str, path: Path, axes: str = "z") -> Path:
    """Points ``z2`` (n, 2) coloured by class ``y``, with a legend of classes."""
    fig = Figure(figsize=(6, 5.5))
    ax = fig.add_subplot()
    classes = np.unique(y)
    cmap = _class_colors(len(classes))
    for i, k in enumerate(classes):
        members = y == k
        ax.scatter(z2[members, 0], z2[members, 1], s=3, alpha=0.6, color=cmap[i], label=str(k), linewidths=0)
    ax.set_xlabel(f"{axes}1")
    ax.set_ylabel(f"{axes}2")
    ax.set_title(title)
    ax.legend(markerscale=4, fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5), title="class")
    return _save(fig, path)


def plot_image_grid(images: np.ndarray, title: str, path: Path) -> Path:
    """A (rows, cols, H, W[, C]) array of images in [0, 1] as one picture, no gaps."""
    rows, cols = images.shape[:2]
    h, w = images.shape[2:4]
    sheet = images.reshape(rows, cols, h, w, -1)[..., 0].transpose(0, 2, 1, 3).reshape(rows * h, cols * w)
    fig = Figure(figsize=(max(3.0, cols * 0.7), max(3.0, rows * 0.7) + 0.4))
    ax = fig.add_subplot()
    ax.imshow(sheet, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title)
    return _save(fig, path)


def plot_reconstructions(x: np.ndarray, reconstruction: np.ndarray, path: Path) -> Path:
    """Test inputs (top row of each pair) over their reconstructions."""
    n = len(x)
    cols = min(n, 10)
    rows = -(-n // cols)
    pad = rows * cols - n
    x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
    r = np.concatenate([reconstruction, np.zeros((pad, *reconstruction.shape[1:]), reconstruction.dtype)])
    pairs = np.stack([x.reshape(rows, cols, *x.shape[1:]), r.reshape(rows, cols, *r.shape[1:])], axis=1)
    grid = pairs.reshape(rows * 2, cols, *x.shape[1:])
    return plot_image_grid(grid, "test inputs (odd rows) and reconstructions (even rows)", path)


def plot_budget_curve(
    rows: Sequence[dict], chance: float, path: Path, train_size: int, num_classes: int
) -> Path:
    """Test accuracy against labels per class, one line per (features, probe); controls dashed."""
    fig = Figure(figsize=(7, 5))
    ax = fig.add_subplot()
    series: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for row in rows:
        per_class = row["labels"] / num_classes
        series.setdefault((row["features"], row["probe"]), []).append((per_class, row["accuracy"]))
    styles = {"encoder": "-", "random_encoder": ":", "pca": "--"}
    markers = {"linear": "o", "mlp": "s", "knn": "^"}
    colors = {"linear": "tab:blue", "mlp": "tab:orange", "knn": "tab:green"}
    for (features, probe), points in series.items():
        points.sort()
        xs, ys = zip(*points, strict=True)
        ax.plot(
            xs,
            ys,
            linestyle=styles.get(features, "-"),
            marker=markers.get(probe, "o"),
            color=colors.get(probe),
            label=f"{features} / {probe}",
        )
    ax.axhline(chance, color="gray", linewidth=1, label="chance")
    ax.set_xscale("log")
    ax.set_xlabel(f"labeled examples per class (all = {train_size} train examples)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title("label budget")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _save(fig, path)


def plot_confusion(matrix: np.ndarray, title: str, path: Path) -> Path:
    """A confusion matrix, rows true classes, normalised per row, counts written in the cells."""
    matrix = np.asarray(matrix)
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros(matrix.shape, float), where=totals > 0)
    k = len(matrix)
    fig = Figure(figsize=(1 + 0.5 * k, 0.8 + 0.5 * k))
    ax = fig.add_subplot()
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                str(matrix[i, j]),
                ha="center",
                va="center",
                fontsize=6,
                color="white" if share[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return _save(fig, path)


def _class_colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]
