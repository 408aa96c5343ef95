"""The capacity plot: a metric against the latent size (or another numeric key), a line per model kind
(or per value of another key), each point the mean over seeds with its 95% CI as error bars."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentprobe.comparison import pivot as pivot_mod
from latentprobe.comparison.table import Table
from latentprobe.errors import UserError

#: Drawn, a panel each, where the runs have them and no ``--metric`` is given.
CAPACITY_METRICS = (
    "test/probe_accuracy",
    "test/reconstruction_loss",
    "eval/linear@all",
    "eval/knn@all",
    "eval/linear@10",
    "eval/kmeans_accuracy",
    "eval/active_units",
)
#: Along x, and a line per value, unless ``--cols`` / ``--rows`` say otherwise.
X_KEY = "model.latent"
LINE_KEY = "model.kind"


@dataclass(frozen=True)
class PlotData:
    """What the plot draws: per metric, per line value, the points (x, mean, CI half-width or None)."""

    x_key: str
    line_key: str
    x_values: list[float]
    panels: dict[str, dict[Any, list[tuple[float, float, float | None]]]]


def capacity_data(
    table: Table, metric: str | None = None, lines: str | None = None, x: str | None = None
) -> PlotData:
    """Check the runs can be plotted and collect the points.

    Args:
        metric: the one metric to draw; None draws each of ``CAPACITY_METRICS`` the runs have.
        lines: the config key with a line per value (default ``model.kind``).
        x: the numeric config key along x (default ``model.latent``).

    Raises:
        UserError: naming ``--plot`` (or the option at fault): a metric or key no run has, x values that
            are not numbers or fewer than two, or the runs of one line differing in another key too.
    """
    records, x_key = table.records, x or X_KEY
    line_key = lines or LINE_KEY
    pivot_mod.check_key(records, x_key, "--cols" if x else "--plot")
    if lines:
        pivot_mod.check_key(records, lines, "--rows")
    xs = {r.get_config(x_key) for r in records}
    if not all(pivot_mod.is_number(v) for v in xs):
        shown = ", ".join(sorted(pivot_mod.show_value(v) for v in xs))
        raise UserError(f"--plot: {x_key} must be a number in every run to go along x (found: {shown})")
    if len(xs) < 2:
        raise UserError(
            f"--plot: a capacity plot needs runs that differ only in {x_key} (and seed) within each "
            f"{line_key}, over at least two values of {x_key}; these have {x_key} {xs.pop()} only"
        )
    _check_one_experiment_per_point(table, line_key, x_key)
    if metric is not None:
        pivot_mod.check_metric(records, metric)
        metrics = [metric]
    else:
        metrics = [m for m in CAPACITY_METRICS if m in table.metrics]
        if not metrics:
            raise UserError(
                f"--plot: no run has any of {', '.join(CAPACITY_METRICS)}; pick one with --metric"
            )
    panels = {}
    for name in metrics:
        pivot = pivot_mod.build_pivot(records, table.labels, name, line_key, x_key)
        panels[name] = {
            line: [
                (float(col), cell.interval.mean, cell.interval.half_width)
                for col in pivot.col_values
                if (cell := pivot.cell(line, col)) is not None and cell.interval is not None
            ]
            for line in pivot.row_values
        }
    return PlotData(x_key, line_key, sorted(float(v) for v in xs), panels)


def _check_one_experiment_per_point(table: Table, line_key: str, x_key: str) -> None:
    """The runs of one line may differ only in the x key and the seed: a point is one experiment."""
    by_line: dict[Any, list[Any]] = {}
    for record in table.records:
        by_line.setdefault(pivot_mod.hashable(record.get_config(line_key)), []).append(record)
    other: set[str] = set()
    for runs in by_line.values():
        other.update(k for k in pivot_mod.varying_keys(runs) if k not in (x_key, "seed"))
    if other:
        keys = ", ".join(sorted(other))
        raise UserError(
            f"--plot: a capacity plot needs runs that differ only in {x_key} (and seed) within each "
            f"{line_key}; these also differ in {keys} (give one as --rows, or compare fewer runs)"
        )


#: Suffixes a plot may be written with (matplotlib picks the format by it).
PLOT_SUFFIXES = (".png", ".pdf", ".svg")


def check_plot_path(path: Path) -> None:
    """Raise UserError naming ``--plot`` for a path the plot cannot be written to: no .png, .pdf or
    .svg suffix, or an existing directory. Checked before any run is read."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"--plot: {path} is a directory; give a file name such as {path / 'capacity.png'}")
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise UserError(
            f"--plot: {path}: the plot is written as PNG, PDF or SVG; give a file name ending in "
            f"{', '.join(PLOT_SUFFIXES)}"
        )


def write_capacity_plot(
    table: Table, path: Path, metric: str | None = None, lines: str | None = None, x: str | None = None
) -> Path:
    """Draw the capacity plot of ``table``'s runs (see :func:`capacity_data`) at ``path``.

    Raises:
        UserError: the runs cannot be plotted (see :func:`capacity_data`), or ``path`` cannot be written.
    """
    check_plot_path(path)
    data = capacity_data(table, metric, lines, x)
    try:
        return draw_capacity(data, Path(path))
    except OSError as e:
        raise UserError(f"--plot: cannot write {path}: {e.strerror or e}") from None


def capacity_figure(data: PlotData) -> Any:
    """One panel per metric; a line per line value with its own colour and marker, each point the mean
    with its 95% CI as error bars, and a legend naming every line (one for the figure where there are
    several panels). The lines are shifted a little along x so that their error bars do not hide each
    other."""
    from matplotlib.figure import Figure  # matplotlib only when a plot is asked for

    from latentprobe import plots

    n = len(data.panels)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig = Figure(figsize=(5 * cols, 3.8 * rows + (0.6 if n > 1 else 0)), layout="constrained")
    line_values = list(dict.fromkeys(v for lines in data.panels.values() for v in lines))
    colors = plots.line_colors(len(line_values))
    log2 = all(v > 0 for v in data.x_values)
    handles = {}
    for i, (metric, lines) in enumerate(data.panels.items()):
        ax = fig.add_subplot(rows, cols, i + 1)
        for line, points in lines.items():
            if not points:
                continue
            j = line_values.index(line)
            xs, means, half = zip(*points, strict=True)
            handles[line] = ax.errorbar(
                [_dodge(x, j, len(line_values), log2) for x in xs],
                means,
                yerr=[h if h is not None else 0.0 for h in half],
                marker=plots.MARKERS[j % len(plots.MARKERS)],
                color=colors[j],
                capsize=3,
                label=f"{data.line_key}={pivot_mod.show_value(line)}",
            )
        if log2:
            ax.set_xscale("log", base=2)
        ax.set_xticks(data.x_values, [_tick(v) for v in data.x_values])
        ax.minorticks_off()
        ax.set_xlabel("latent size (dimensions of z)" if data.x_key == X_KEY else data.x_key)
        ax.set_ylabel(plots.metric_unit(metric) or metric)  # the panel's title names the metric
        ax.set_title(metric if n > 1 else f"{metric}: mean and 95% CI over seeds", fontsize="medium")
        ax.grid(alpha=0.3)
        if n == 1:
            ax.legend(fontsize="small")
    if n > 1:
        fig.suptitle(f"against {data.x_key}, a line per {data.line_key}: mean and 95% CI over seeds")
        fig.legend(
            list(handles.values()),
            [f"{data.line_key}={pivot_mod.show_value(v)}" for v in handles],
            loc="outside lower center",
            ncols=min(len(handles), 6),
            fontsize="small",
        )
    return fig


def draw_capacity(data: PlotData, path: Path) -> Path:
    """Write :func:`capacity_figure` to ``path``."""
    from latentprobe import plots

    return plots.save(capacity_figure(data), path)


def _dodge(x: float, j: int, n: int, log: bool) -> float:
    """``x`` shifted for line ``j`` of ``n``: by up to 4% of a doubling (log axis) or 1% of x."""
    offset = (j - (n - 1) / 2) * 0.04
    return x * 2**offset if log else x * (1 + offset / 4)


def _tick(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
