"""``compare``: finished runs side by side. Imports no TensorFlow, so it is fast.

Rows are metrics (``<split>/<name>``, as in TensorBoard and summary.json; ``eval/<name>`` from eval.json),
columns are runs. Where every experiment has one run, each later run also gets its difference to the
first; where runs differ only by seed they form a group (:mod:`.groups`), named by their grid values for
a study's runs, and every format adds each group's mean +- 95% CI per metric (:mod:`.statistics`) and
each later group's paired comparison with the first (over matching seeds: mean difference, CI, t-test
p-value) with the config keys that differ; a difference between two seeds of one experiment is not shown.

:mod:`.pivot` lays one metric out by two config keys (``--rows``, ``--cols``), each cell mean +- CI over
its runs. :func:`write_capacity_plot` draws a metric against the latent size, a line per model kind.

The parts: :mod:`.reading` (runs and their metrics), :mod:`.table` (the table every format renders),
:mod:`.numbers` (the decimals of each metric), :mod:`.render` (text and Markdown, and the choice of
format), :mod:`.export` (JSON and CSV), :mod:`.pivot` (the pivot table and its formats), :mod:`.plot`
(the capacity plot).
"""

from latentprobe.comparison.pivot import DEFAULT_METRIC, Pivot, build_pivot, render_pivot
from latentprobe.comparison.plot import check_plot_path, write_capacity_plot
from latentprobe.comparison.reading import Problem, RunRecord, load_runs
from latentprobe.comparison.render import FORMATS, TABLES, WIDTH, check_table_option, render
from latentprobe.comparison.table import Table, build_table

__all__ = [
    "DEFAULT_METRIC",
    "FORMATS",
    "Pivot",
    "Problem",
    "RunRecord",
    "TABLES",
    "Table",
    "WIDTH",
    "build_pivot",
    "build_table",
    "check_plot_path",
    "check_table_option",
    "load_runs",
    "render",
    "render_pivot",
    "write_capacity_plot",
]
