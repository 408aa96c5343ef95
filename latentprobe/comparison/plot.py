"""The capacity plot: metrics against the latent size, for runs that differ only in it (and seed)."""

from __future__ import annotations

from pathlib import Path

from latentprobe.comparison import groups as groups_mod
from latentprobe.comparison.table import Table
from latentprobe.errors import UserError

#: Drawn against the latent size in the capacity plot, where the runs have them.
CAPACITY_METRICS = (
    "test/probe_accuracy",
    "test/reconstruction_loss",
    "eval/linear@all",
    "eval/knn@all",
    "eval/linear@10",
    "eval/kmeans_accuracy",
    "eval/active_units",
)


def write_capacity_plot(table: Table, path: Path) -> Path:
    """Draw each of ``CAPACITY_METRICS`` against the latent size (mean and 95% CI over seeds) as PNG.

    Raises:
        UserError: the runs are not a sweep over latent sizes (another config key differs too).
    """
    from latentprobe import plots  # matplotlib, only when a plot is asked for

    metrics = [m for m in CAPACITY_METRICS if m in table.metrics]
    found = groups_mod.capacity_series(table.groups, metrics)
    if found is None:
        keys = sorted(
            {k for g in table.groups for k in groups_mod.config_diff(table.groups[0].config, g.config)}
        )
        raise UserError(
            "--plot: a capacity plot needs runs that differ only in model.latent (and seed); "
            f"these differ in: {', '.join(keys) or 'nothing'}"
        )
    latents, series = found
    return plots.plot_capacity(latents, series, path)
