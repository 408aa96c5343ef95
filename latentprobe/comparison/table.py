"""The comparison table: runs side by side, metrics in display order, seed groups and their paired
comparisons, and the decimals each metric is printed with. Every format in :mod:`.render` renders one
:class:`Table`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latentprobe.comparison import groups as groups_mod
from latentprobe.comparison.numbers import NumberFormat, number_format
from latentprobe.comparison.reading import TIMING_METRICS, Problem, RunRecord

# Config fields that identify a run, shown above the metrics (dotted keys into summary["config"]); any
# other key whose value differs between the runs follows them.
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
        formats: per metric, the decimals its numbers are printed with (:mod:`.numbers`).
    """

    records: list[RunRecord]
    labels: list[str]
    metrics: list[str]
    config_fields: list[str] = field(default_factory=lambda: list(KEY_CONFIG_FIELDS))
    problems: list[Problem] = field(default_factory=list)
    groups: list[groups_mod.Group] = field(default_factory=list)
    comparisons: list[groups_mod.Comparison] = field(default_factory=list)
    formats: dict[str, NumberFormat] = field(default_factory=dict)

    @property
    def has_seed_groups(self) -> bool:
        """Whether some group holds more than one seed (then the group sections are shown)."""
        return any(len(set(map(str, g.seeds))) > 1 for g in self.groups)

    @property
    def shows_differences(self) -> bool:
        """Whether each later run's difference to the first is shown: for single runs of different
        experiments. Where some experiment has several seeds, the paired comparisons of the groups
        carry the differences, with a CI; a difference between two seeds of one experiment means
        nothing."""
        return len(self.records) > 1 and not self.has_seed_groups

    def format(self, metric: str) -> NumberFormat:
        """How ``metric``'s numbers print (decimals from its values across the runs)."""
        if metric not in self.formats:
            self.formats[metric] = number_format(metric, [r.metrics.get(metric) for r in self.records])
        return self.formats[metric]

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
    formats = {name: number_format(name, [r.metrics.get(name) for r in records]) for name in names}
    groups = groups_mod.group_runs(
        [r.config for r in records], [r.metrics for r in records], [r.study_values for r in records]
    )
    return Table(
        records=list(records),
        labels=make_labels([r.path for r in records]),
        metrics=names,
        config_fields=config_fields(records),
        problems=list(problems),
        groups=groups,
        comparisons=groups_mod.compare_groups(groups),
        formats=formats,
    )


def config_fields(records: Sequence[RunRecord]) -> list[str]:
    """``KEY_CONFIG_FIELDS``, then every other config key whose value differs between the runs (see
    :func:`differing_keys`), so that the table says how its runs differ."""
    flat = [groups_mod.flatten_config(r.config) for r in records]
    return [*KEY_CONFIG_FIELDS, *(k for k in differing_keys(flat) if k not in KEY_CONFIG_FIELDS)]


def differing_keys(configs: Sequence[dict[str, Any]]) -> list[str]:
    """The dotted keys of flat configs whose values differ, ``KEY_CONFIG_FIELDS`` first, then sorted.

    Left out: where a run is written (``name``, ``output``), and a key whose value is the same in every
    config that has it: a variant's own block (``model.vae.beta`` of the vae runs of a study) differs
    from the other runs only through ``model.kind``.
    """
    keys = {k for c in configs for k in c}
    varying = set()
    for key in keys:
        if any(key == ig or key.startswith(f"{ig}.") for ig in ("name", "output")):
            continue
        present = {json.dumps(c[key], sort_keys=True, default=str) for c in configs if key in c}
        if len(present) > 1:
            varying.add(key)
    first = [k for k in KEY_CONFIG_FIELDS if k in varying]
    return first + sorted(varying - set(first))
