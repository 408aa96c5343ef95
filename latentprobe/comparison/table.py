"""The comparison table: runs side by side, metrics in display order, seed groups and their paired
comparisons. Every format in :mod:`.render` renders one :class:`Table`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from latentprobe.comparison import groups as groups_mod
from latentprobe.comparison.reading import TIMING_METRICS, Problem, RunRecord

# Config fields that identify a run, shown above the metrics (dotted keys into summary["config"]).
KEY_CONFIG_FIELDS = (
    "model.kind",
    "model.latent",
    "probe.strategy",
    "probe.head",
    "seed",
    "data.name",
    "data.labels",
)

# Shown first, in this order; other metrics follow sorted by name, then TIMING_METRICS.
CORE_METRICS = (
    "test/probe_accuracy",
    "test/reconstruction_loss",
    "test/chance_accuracy",
    "val/probe_accuracy",
    "val/reconstruction_loss",
)


@dataclass
class Table:
    """Runs side by side: the data every format renders.

    Attributes:
        records: the runs, first one is the baseline for the differences.
        labels: a short unique name per run, same order as ``records``.
        metrics: metric names (rows), in display order.
        config_fields: dotted config keys shown above the metrics.
        problems: paths that could not be read, carried into the JSON output.
        groups: runs grouped by experiment (differing only by seed).
        comparisons: each later group against the first, paired by seed.
    """

    records: list[RunRecord]
    labels: list[str]
    metrics: list[str]
    config_fields: list[str] = field(default_factory=lambda: list(KEY_CONFIG_FIELDS))
    problems: list[Problem] = field(default_factory=list)
    groups: list[groups_mod.Group] = field(default_factory=list)
    comparisons: list[groups_mod.Comparison] = field(default_factory=list)

    @property
    def has_seed_groups(self) -> bool:
        """Whether some group holds more than one seed (then the group sections are shown)."""
        return any(len(set(map(str, g.seeds))) > 1 for g in self.groups)

    def value(self, metric: str, run: int) -> float | None:
        """Return ``metric`` of run number ``run``; None where the run lacks it."""
        return self.records[run].metrics.get(metric)

    def diff_to_first(self, metric: str, run: int) -> float | None:
        """Return ``value(run) - value(first run)``; None where either is missing."""
        first, this = self.value(metric, 0), self.value(metric, run)
        if first is None or this is None:
            return None
        return this - first


def _sort_key(name: str) -> tuple[int, int, str]:
    if name in CORE_METRICS:
        return (0, CORE_METRICS.index(name), "")
    if name in TIMING_METRICS:
        return (2, TIMING_METRICS.index(name), "")
    return (1, 0, name)


def order_metrics(names: Iterable[str]) -> list[str]:
    """Core metrics first (in ``CORE_METRICS`` order), then the rest sorted, then timing."""
    return sorted(set(names), key=_sort_key)


def make_labels(paths: Sequence[Path]) -> list[str]:
    """Short unique column names: the directory name, ``parent/name`` where names clash.

    Paths that are still alike (the same run given twice) get ``#2``, ``#3`` ...
    """
    names = [p.name or str(p) for p in paths]
    labels = []
    for p, name in zip(paths, names, strict=True):
        clashes = names.count(name) > 1 and p.parent.name
        labels.append(f"{p.parent.name}/{name}" if clashes else name)
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label}#{seen[label]}")
    return unique


def build_table(records: Sequence[RunRecord], problems: Sequence[Problem] = ()) -> Table:
    """Lay the runs side by side; the first run is the baseline for differences.

    Args:
        records: runs from ``load_runs``.
        problems: carried through so the JSON output can list them.
    """
    names = order_metrics(name for r in records for name in r.metrics)
    groups = groups_mod.group_runs(
        [r.config for r in records], [r.metrics for r in records], [r.study_values for r in records]
    )
    return Table(
        records=list(records),
        labels=make_labels([r.path for r in records]),
        metrics=names,
        problems=list(problems),
        groups=groups,
        comparisons=groups_mod.compare_groups(groups),
    )
