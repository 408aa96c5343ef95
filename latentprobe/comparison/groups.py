"""Runs grouped by seed: which runs repeat one experiment, their mean +- CI, and paired comparisons.

Two runs belong to one group when their configs are equal except for ``seed`` and where they are
written (``name``, ``output``); for the runs of one study that is: equal grid values but for the seed.
Groups of study runs are named by those values (``model.kind=vae model.latent=8``), other groups
``g1``, ``g2`` ... with what sets them apart. Between two groups, runs are paired by seed. Imports no
TensorFlow.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from latentprobe.comparison.statistics import Interval, PairedTest, mean_ci, paired_test

#: Config keys that do not make a different experiment.
IGNORED_KEYS = ("seed", "name", "output")


def flatten_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"latent": 8}}`` -> ``{"model.latent": 8}`` (lists kept as values)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            flat.update(flatten_config(value, dotted))
        else:
            flat[dotted] = value
    return flat


def experiment_config(config: dict[str, Any]) -> dict[str, Any]:
    """The flat config without the keys that only vary between repeats (seed, output paths)."""
    return {
        k: v
        for k, v in flatten_config(config).items()
        if not any(k == ig or k.startswith(f"{ig}.") for ig in IGNORED_KEYS)
    }


def config_diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose values differ between two experiment configs, as ``key -> (a, b)``."""
    keys = sorted(set(a) | set(b))
    return {k: (a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)}


@dataclass
class Group:
    """Runs of one experiment under different seeds.

    Attributes:
        label: its name: the study grid values it has (``model.kind=vae model.latent=8``), or ``g1``,
            ``g2`` ... plus what sets it apart.
        name: ``g1``, ``g2`` ...: its position, the column header of the text table.
        runs: indices into the records given to :func:`group_runs`.
        seeds: each run's seed, aligned with ``runs``.
        config: the experiment config (flat, without seed and paths).
        metrics: metric name -> values over the runs that have it, aligned with ``seeds_by_metric``.
        values: the study grid values its runs share, seed left out (in the grid's order); None when
            some run belongs to no study or the runs' values differ.
    """

    label: str
    runs: list[int]
    seeds: list[Any]
    config: dict[str, Any]
    metrics: dict[str, list[float]] = field(default_factory=dict)
    seeds_by_metric: dict[str, list[Any]] = field(default_factory=dict)
    values: dict[str, Any] | None = None
    name: str = ""

    def interval(self, metric: str) -> Interval | None:
        values = self.metrics.get(metric)
        return mean_ci(values) if values else None


@dataclass
class Comparison:
    """A later group against the first one, paired over the seeds both have."""

    a: Group
    b: Group
    seeds: list[Any]
    config_diff: dict[str, tuple[Any, Any]]
    tests: dict[str, PairedTest]


def group_runs(
    configs: Sequence[dict[str, Any]],
    metrics: Sequence[dict[str, float]],
    study_values: Sequence[dict[str, Any] | None] | None = None,
) -> list[Group]:
    """Group runs by their experiment config, in order of first appearance.

    Args:
        configs: each run's full config (as in summary.json).
        metrics: each run's metrics (name -> value), aligned with ``configs``.
        study_values: each run's study grid values (None for a run of no study), aligned with
            ``configs``; they name the groups.
    """
    if study_values is None:
        study_values = [None] * len(configs)
    groups: dict[str, Group] = {}
    for i, (config, values, grid) in enumerate(zip(configs, metrics, study_values, strict=True)):
        experiment = experiment_config(config)
        key = json.dumps(experiment, sort_keys=True, default=str)
        shared = None if grid is None else {k: v for k, v in grid.items() if k != "seed"}
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(label="", runs=[], seeds=[], config=experiment, values=shared)
        elif group.values != shared:
            group.values = None
        seed = config.get("seed")
        group.runs.append(i)
        group.seeds.append(seed)
        for name, value in values.items():
            group.metrics.setdefault(name, []).append(value)
            group.seeds_by_metric.setdefault(name, []).append(seed)
    result = list(groups.values())
    _label_groups(result)
    return result


def _label_groups(groups: list[Group]) -> None:
    """Study groups by their grid values (``model.kind=vae model.latent=8``) where that names every
    group apart; otherwise ``g1``, ``g2`` ... followed by the config values that tell the groups apart."""
    for i, group in enumerate(groups, start=1):
        group.name = f"g{i}"
    by_values = [" ".join(f"{k}={_show(v)}" for k, v in g.values.items()) if g.values else "" for g in groups]
    if all(by_values) and len(set(by_values)) == len(by_values):
        for group, label in zip(groups, by_values, strict=True):
            group.label = label
        return
    varying = sorted({k for g in groups for k in config_diff(groups[0].config, g.config)})
    for i, group in enumerate(groups, start=1):
        shown = ", ".join(f"{k}={_show(group.config.get(k))}" for k in varying)
        group.label = f"g{i}" + (f" ({shown})" if shown else "")


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ",".join(str(v) for v in value) + "]"
    return str(value)


def compare_groups(groups: Sequence[Group]) -> list[Comparison]:
    """Each group after the first against the first: a paired t-test per metric over matching seeds.

    A metric is tested over the seeds where both groups have it; a pair of groups with no seed in common
    gets no tests (but still its config diff).
    """
    out = []
    if not groups:
        return out
    first = groups[0]
    for group in groups[1:]:
        tests = {}
        for metric, values_a in first.metrics.items():
            if metric not in group.metrics:
                continue
            a = dict(zip(first.seeds_by_metric[metric], values_a, strict=True))
            b = dict(zip(group.seeds_by_metric[metric], group.metrics[metric], strict=True))
            common = [s for s in a if s in b]
            if common:
                tests[metric] = paired_test([a[s] for s in common], [b[s] for s in common])
        seeds = [s for s in first.seeds if s in group.seeds]
        out.append(Comparison(first, group, seeds, config_diff(first.config, group.config), tests))
    return out


def capacity_series(
    groups: Sequence[Group], metrics: Sequence[str]
) -> tuple[list[int], dict[str, tuple[list[float], list[float | None]]]] | None:
    """For groups that differ only in ``model.latent``: each metric's mean and CI per latent size.

    Returns:
        ``(latents, {metric: (means, half_widths)})`` sorted by latent size, or None when the groups are
        not a latent sweep (fewer than two sizes, or another key differs too).
    """
    if len(groups) < 2:
        return None
    keys = {k for g in groups for k in config_diff(groups[0].config, g.config)}
    if keys != {"model.latent"}:
        return None
    ordered = sorted(groups, key=lambda g: g.config["model.latent"])
    latents = [int(g.config["model.latent"]) for g in ordered]
    series = {}
    for metric in metrics:
        intervals = [g.interval(metric) for g in ordered]
        if all(iv is not None for iv in intervals):
            series[metric] = ([iv.mean for iv in intervals], [iv.half_width for iv in intervals])
    return latents, series
