"""``compare``: finished runs side by side. Imports no TensorFlow, so it is fast.

Rows are metrics (``<split>/<name>``, as in TensorBoard and summary.json; ``eval/<name>`` from eval.json),
columns are runs; every run after the first also gets its difference to the first.

Runs are found at or under the paths given (a run, a study, a sweep, an output directory, nested).
Runs that differ only by seed form a group (:mod:`.groups`), named by their grid values for a study's
runs. When some group holds several seeds, every format adds each group's mean +- 95% CI per metric
(:mod:`.statistics`), and each later group's paired comparison with the first (over matching seeds: mean
difference, CI, t-test p-value) with the config keys that differ.

:mod:`.pivot` lays one metric out by two config keys (``--rows``, ``--cols``), each cell mean +- CI over
its runs. :func:`write_capacity_plot` draws a metric against the latent size, a line
per model kind.

The parts: :mod:`.reading` (runs and their metrics), :mod:`.table` (the table every format renders),
:mod:`.render` (the formats), :mod:`.pivot` (the pivot table and its formats), :mod:`.plot` (the
capacity plot).
"""

from latentprobe.comparison.pivot import DEFAULT_METRIC, Pivot, build_pivot, render_pivot
from latentprobe.comparison.plot import write_capacity_plot
from latentprobe.comparison.reading import Problem, RunRecord, load_runs
from latentprobe.comparison.render import FORMATS, render
from latentprobe.comparison.table import Table, build_table

__all__ = [
    "DEFAULT_METRIC",
    "FORMATS",
    "Pivot",
    "Problem",
    "RunRecord",
    "Table",
    "build_pivot",
    "build_table",
    "load_runs",
    "render",
    "render_pivot",
    "write_capacity_plot",
]
