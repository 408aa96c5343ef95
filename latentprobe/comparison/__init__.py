"""``compare``: finished runs side by side. Imports no TensorFlow, so it is fast.

Rows are metrics (``<split>/<name>``, as in TensorBoard and summary.json; ``eval/<name>`` from eval.json),
columns are runs; every run after the first also gets its difference to the first.

Runs that differ only by seed form a group (:mod:`.groups`). When some group holds several seeds, every
format adds each group's mean +- 95% CI per metric (:mod:`.statistics`), and each later group's paired
comparison with the first (over matching seeds: mean difference, CI, t-test p-value) with the config keys
that differ. For a sweep over latent sizes, :func:`write_capacity_plot` draws metric against size.

The parts: :mod:`.reading` (runs and their metrics), :mod:`.table` (the table every format renders),
:mod:`.render` (the formats), :mod:`.plot` (the capacity plot).
"""

from latentprobe.comparison.plot import write_capacity_plot
from latentprobe.comparison.reading import Problem, RunRecord, load_runs
from latentprobe.comparison.render import FORMATS, render
from latentprobe.comparison.table import Table, build_table

__all__ = [
    "FORMATS",
    "Problem",
    "RunRecord",
    "Table",
    "build_table",
    "load_runs",
    "render",
    "write_capacity_plot",
]
