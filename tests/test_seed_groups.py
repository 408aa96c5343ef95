"""compare's seed groups: mean ± 95% CI, paired tests, config diffs, capacity plot, in every format."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from latentprobe.comparison import build_table, load_runs, render, write_capacity_plot
from latentprobe.comparison.groups import compare_groups, group_runs
from latentprobe.comparison.numbers import format_p
from latentprobe.errors import UserError
from latentprobe.rundir import write_json

from .test_compare import make_summary


def make_seed_run(root: Path, latent: int, seed: int, acc: float, linear: float | None = None) -> Path:
    run_dir = root / f"ae-z{latent}-s{seed}"
    run_dir.mkdir(parents=True)
    summary = make_summary(run_dir, acc=acc, seed=seed)
    summary["config"]["model"]["latent"] = latent
    write_json(run_dir / "summary.json", summary)
    if linear is not None:
        write_json(run_dir / "eval.json", {"schema_version": 2, "metrics": {"eval": {"linear@all": linear}}})
    return run_dir


def csv_table(table, which: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(render(table, "csv", which))))


def test_runs_differing_only_by_seed_form_one_group_with_zero_width_ci(tmp_path):
    runs = [make_seed_run(tmp_path, 8, seed, acc=0.9) for seed in (0, 1, 2)]
    table = build_table(load_runs(runs)[0])
    assert len(table.groups) == 1 and table.groups[0].seeds == [0, 1, 2]
    as_json = json.loads(render(table, "json"))
    accuracy = as_json["groups"][0]["metrics"]["test/probe_accuracy"]
    assert accuracy == {"n": 3, "mean": pytest.approx(0.9), "half_width": 0.0, "low": 0.9, "high": 0.9}
    assert "0.9000 ± 0.0000" in render(table, "table") and "g1 (n=3)" in render(table, "table")
    assert "| test/probe_accuracy | 0.9000 ± 0.0000 |" in render(table, "markdown")


def test_a_single_seed_shows_its_value_without_ci(tmp_path):
    runs = [make_seed_run(tmp_path, 8, 0, acc=0.9), make_seed_run(tmp_path, 8, 1, acc=0.8)]
    runs.append(make_seed_run(tmp_path / "other", 16, 0, acc=0.7))
    table = build_table(load_runs(runs)[0])
    text = render(table, "table", "groups")
    assert "g2 (n=1)" in text and re.search(r"^test/probe_accuracy +0.8500 ± 0.6353 +0.7000$", text, re.M)
    assert (
        json.loads(render(table, "json"))["groups"][1]["metrics"]["test/probe_accuracy"]["half_width"] is None
    )


def test_paired_comparison_of_identical_groups_is_not_significant(tmp_path):
    a = [make_seed_run(tmp_path / "a", 8, s, acc=0.8 + 0.01 * s) for s in (0, 1, 2)]
    b = [make_seed_run(tmp_path / "b", 16, s, acc=0.8 + 0.01 * s) for s in (0, 1, 2)]
    table = build_table(load_runs(a + b)[0])
    (comparison,) = table.comparisons
    test = comparison.tests["test/probe_accuracy"]
    assert test.p_value == 1.0 and not test.significant
    assert comparison.config_diff == {"model.latent": (8, 16)}
    text = render(table, "table")
    assert "model.latent" in text and "config diff" in text


def test_every_format_carries_the_same_group_and_paired_numbers(tmp_path):
    a = [
        make_seed_run(tmp_path / "a", 8, s, acc=a_, linear=l_)
        for s, a_, l_ in ((0, 0.81, 0.7), (1, 0.83, 0.72), (2, 0.8, 0.69))
    ]
    b = [
        make_seed_run(tmp_path / "b", 16, s, acc=a_, linear=l_)
        for s, a_, l_ in ((0, 0.9, 0.8), (1, 0.93, 0.84), (2, 0.91, 0.8))
    ]
    table = build_table(load_runs(a + b)[0])
    as_json = json.loads(render(table, "json"))
    text, markdown = render(table, "table"), render(table, "markdown")

    groups_csv = {(row["group"], row["metric"]): row for row in csv_table(table, "groups")}
    for group in as_json["groups"]:
        for metric, interval in group["metrics"].items():
            row = groups_csv[(group["label"], metric)]
            assert (
                float(row["mean"]) == interval["mean"] and float(row["half_width"]) == interval["half_width"]
            )
            fmt = table.format(metric)
            cell = f"{fmt.stat(interval['mean'])} ± {fmt.stat(interval['half_width'])}"
            assert cell in text and cell in markdown
    paired_csv = {row["metric"]: row for row in csv_table(table, "comparisons")}
    comparison = as_json["comparisons"][0]
    assert comparison["seeds"] == [0, 1, 2]
    assert "eval/linear@all" in comparison["metrics"]  # eval.json's numbers are compared too
    for metric, result in comparison["metrics"].items():
        row = paired_csv[metric]
        assert float(row["mean_difference"]) == result["mean_difference"]
        assert (float(row["p_value"]) if row["p_value"] else None) == result["p_value"]
        assert format_p(result["p_value"]) in text and format_p(result["p_value"]) in markdown
    assert comparison["metrics"]["test/probe_accuracy"]["significant"] is True
    assert {row["config_diff"] for row in paired_csv.values()} == {"model.latent: 8 -> 16"}
    assert {(row["a"], row["b"]) for row in paired_csv.values()} == {(comparison["a"], comparison["b"])}


def test_pairs_are_matched_by_seed_not_by_order(tmp_path):
    configs = [{"seed": s, "model": {"latent": z}} for z, s in ((8, 0), (8, 1), (16, 1), (16, 0), (16, 5))]
    metrics = [{"m": v} for v in (1.0, 2.0, 2.5, 1.5, 9.0)]
    groups = group_runs(configs, metrics)
    (comparison,) = compare_groups(groups)
    assert comparison.seeds == [0, 1]
    assert comparison.tests["m"].difference.mean == pytest.approx(0.5)  # (1.5-1.0 + 2.5-2.0) / 2


def test_capacity_plot_for_a_latent_sweep(tmp_path):
    runs = [
        make_seed_run(tmp_path / f"z{z}", z, s, acc=0.5 + z / 100 + s / 1000, linear=0.6)
        for z in (2, 4, 8)
        for s in (0, 1)
    ]
    table = build_table(load_runs(runs)[0])
    path = write_capacity_plot(table, tmp_path / "capacity.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_capacity_plot_refuses_runs_that_differ_in_more_than_latent(tmp_path):
    a = make_seed_run(tmp_path / "a", 8, 0, acc=0.9)
    b = make_seed_run(tmp_path / "b", 16, 0, acc=0.9)
    summary = json.loads((b / "summary.json").read_text())
    summary["config"]["probe"]["head"] = "mlp"
    write_json(b / "summary.json", summary)
    with pytest.raises(UserError, match="probe.head"):
        write_capacity_plot(build_table(load_runs([a, b])[0]), tmp_path / "c.png")
