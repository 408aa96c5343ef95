"""Tests for latentprobe.comparison on fake-but-realistic summary.json files (no TensorFlow)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from latentprobe.comparison import FORMATS, Problem, build_table, load_runs, render
from latentprobe.comparison.render import format_number
from latentprobe.comparison.table import make_labels
from latentprobe.rundir import write_json


def make_summary(
    run_dir: Path,
    *,
    acc: float = 0.91,
    rec: float = 0.1,
    kind: str = "ae",
    seed: int = 0,
    status: str = "completed",
    extra_test: dict[str, float] | None = None,
) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "status": status,
        "run_dir": str(run_dir),
        "config": {
            "name": run_dir.name,
            "seed": seed,
            "data": {"name": "digits", "labels": "all", "val_fraction": 0.1},
            "model": {"kind": kind, "latent": 8, "hidden": [64]},
            "probe": {"strategy": "alternating", "head": "linear"},
            "train": {"epochs": 5, "batch_size": 128},
            "output": {"dir": str(run_dir.parent)},
        },
        "metrics": {
            "test": {
                "reconstruction_loss": rec,
                "probe_loss": 0.3,
                "probe_accuracy": acc,
                "chance_accuracy": 0.1,
                **(extra_test or {}),
            },
            "val": {
                "reconstruction_loss": rec + 0.01,
                "probe_loss": 0.31,
                "probe_accuracy": acc - 0.01,
            },
        },
        "history": {
            "epoch": [1, 2],
            "train/reconstruction_loss": [0.2, 0.1],
            "val/probe_accuracy": [0.8, 0.9],
        },
        "timing": {
            "train_seconds": 12.3,
            "train_samples_per_second": 5000.0,
            "total_seconds": 15.0,
        },
        "environment": {
            "python": "3.11.7",
            "tensorflow": "2.21.0",
            "keras": "3.15",
            "device": "cpu",
        },
        "data": {
            "name": "digits",
            "sha256": "0" * 64,
            "sizes": {"train": 1293, "val": 144, "test": 360},
            "labeled": 1293,
            "input_shape": [8, 8, 1],
            "num_classes": 10,
        },
    }


def rendered(paths: list[Path], fmt: str) -> tuple[str, list[Problem]]:
    """What ``latentprobe compare`` prints for ``paths`` in format ``fmt``, and the unreadable paths."""
    records, problems = load_runs(paths)
    return render(build_table(records, problems), fmt), problems


def make_run(run_dir: Path, **kwargs: Any) -> Path:
    run_dir.mkdir(parents=True)
    write_json(run_dir / "summary.json", make_summary(run_dir, **kwargs))
    return run_dir


@pytest.fixture
def two_runs(tmp_path: Path) -> list[Path]:
    return [
        make_run(tmp_path / "ae-run", acc=0.91, rec=0.10),
        make_run(
            tmp_path / "vae-run",
            acc=0.85,
            rec=0.12,
            kind="vae",
            seed=1,
            extra_test={"kl": 2.5},
        ),
    ]


# ---- loading ----


def test_load_runs_keeps_full_config_and_all_numeric_metrics(
    two_runs: list[Path],
) -> None:
    records, problems = load_runs(two_runs)
    assert problems == []
    assert [r.path for r in records] == two_runs
    vae = records[1]
    assert vae.config["train"]["batch_size"] == 128  # whole config kept, not only key fields
    assert vae.get_config("model.kind") == "vae"
    assert vae.metrics == {
        "test/reconstruction_loss": 0.12,
        "test/probe_loss": 0.3,
        "test/probe_accuracy": 0.85,
        "test/chance_accuracy": 0.1,
        "test/kl": 2.5,
        "val/reconstruction_loss": pytest.approx(0.13),
        "val/probe_loss": 0.31,
        "val/probe_accuracy": pytest.approx(0.84),
        "timing/train_seconds": 12.3,
        "timing/train_samples_per_second": 5000.0,
    }


def test_missing_and_partial_runs_become_problems_others_still_show(
    tmp_path: Path, two_runs: list[Path]
) -> None:
    failed = make_run(tmp_path / "failed-run", status="failed")
    no_summary = tmp_path / "empty-dir"
    no_summary.mkdir()
    bad_json = tmp_path / "bad-json"
    bad_json.mkdir()
    (bad_json / "summary.json").write_text('{"schema_version": 1, "status": ')
    ghost = tmp_path / "ghost"

    text, problems = rendered([two_runs[0], failed, no_summary, bad_json, ghost, two_runs[1]], "json")

    assert [p.path for p in problems] == [failed, no_summary, bad_json, ghost]
    reasons = [p.reason for p in problems]
    assert reasons[0] == f"{failed}: run did not complete (status: failed)"
    assert reasons[1] == f"{no_summary}: not a latentprobe run and no run under it"
    assert reasons[2].startswith(f"{bad_json / 'summary.json'}: invalid JSON")
    assert reasons[3] == f"{ghost}: no such directory"
    out = json.loads(text)
    assert [r["label"] for r in out["runs"]] == ["ae-run", "vae-run"]
    assert out["problems"] == [{"path": str(p.path), "reason": p.reason} for p in problems]


def test_sweep_expands_in_order(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    for name, acc in [("s2", 0.7), ("s0", 0.9), ("s1", 0.8)]:
        make_run(sweep / "runs" / name, acc=acc)
    write_json(
        sweep / "sweep.json",
        {
            "schema_version": 1,
            "name": "seeds",
            "runs": ["runs/s2", "runs/s0", "runs/s1"],
        },
    )
    baseline = make_run(tmp_path / "base", acc=0.5)

    records, problems = load_runs([baseline, sweep])
    assert problems == []
    assert [r.path.name for r in records] == ["base", "s2", "s0", "s1"]
    assert [r.metrics["test/probe_accuracy"] for r in records] == [0.5, 0.7, 0.9, 0.8]


def test_bad_sweep_is_a_problem(tmp_path: Path, two_runs: list[Path]) -> None:
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    write_json(sweep / "sweep.json", {"schema_version": 1, "name": "x"})
    records, problems = load_runs([sweep, two_runs[0]])
    assert [r.path for r in records] == [two_runs[0]]
    assert problems == [
        Problem(
            sweep,
            f"{sweep / 'sweep.json'}: 'runs' must be a list of run directory paths",
        )
    ]


# ---- table ----


def test_diff_to_first(two_runs: list[Path]) -> None:
    table = build_table(load_runs(two_runs)[0])
    assert table.diff_to_first("test/probe_accuracy", 1) == pytest.approx(-0.06)
    assert table.diff_to_first("test/reconstruction_loss", 1) == pytest.approx(0.02)
    assert table.diff_to_first("timing/train_seconds", 1) == 0.0
    assert table.diff_to_first("test/kl", 1) is None  # the first run has no kl


def test_metric_order_core_then_sorted_then_timing(two_runs: list[Path]) -> None:
    table = build_table(load_runs(two_runs)[0])
    assert table.metrics == [
        "test/probe_accuracy",
        "test/reconstruction_loss",
        "test/chance_accuracy",
        "val/probe_accuracy",
        "val/reconstruction_loss",
        "test/kl",
        "test/probe_loss",
        "val/probe_loss",
        "timing/train_seconds",
        "timing/train_samples_per_second",
    ]


def test_labels_disambiguated_with_parent(tmp_path: Path) -> None:
    paths = [
        tmp_path / "a" / "quick",
        tmp_path / "b" / "quick",
        tmp_path / "b" / "other",
        tmp_path / "a" / "quick",
    ]
    assert make_labels(paths) == ["a/quick", "b/quick", "other", "a/quick#2"]


# ---- rendering ----


def test_text_table_shows_config_and_formatted_numbers(two_runs: list[Path]) -> None:
    text, _ = rendered(two_runs, "table")
    lines = text.splitlines()
    assert lines[0].split() == ["ae-run", "vae-run", "diff", "vae-run"]
    row = {line.split()[0]: line.split()[1:] for line in lines[1:] if line and not line.startswith("-")}
    assert row["model.kind"] == ["ae", "vae"]
    assert row["seed"] == ["0", "1"]
    assert row["probe.strategy"] == ["alternating", "alternating"]
    assert row["data.labels"] == ["all", "all"]
    assert row["test/probe_accuracy"] == ["0.9100", "0.8500", "-0.0600"]
    assert row["test/kl"] == ["n/a", "2.5000", "n/a"]
    assert row["timing/train_samples_per_second"] == [
        "5000.0000",
        "5000.0000",
        "+0.0000",
    ]
    # config rows come before metric rows
    assert lines.index(next(x for x in lines if x.startswith("data.labels"))) < lines.index(
        next(x for x in lines if x.startswith("test/probe_accuracy"))
    )
    # columns line up: every metric row has the same length once right-aligned
    metric_lines = [x for x in lines if x.startswith(("test/", "val/", "timing/"))]
    assert len({len(x) for x in metric_lines}) == 1


def test_markdown_has_both_tables(two_runs: list[Path]) -> None:
    text, _ = rendered(two_runs, "markdown")
    assert "| config | ae-run | vae-run | diff vae-run |" in text
    assert "| metric | ae-run | vae-run | diff vae-run |" in text
    assert "| test/probe_accuracy | 0.9100 | 0.8500 | -0.0600 |" in text
    assert "| model.kind | ae | vae |  |" in text


def test_all_formats_carry_the_same_numbers(tmp_path: Path) -> None:
    runs = [
        make_run(tmp_path / "r0", acc=0.9123456789, rec=0.000123456),
        make_run(tmp_path / "r1", acc=0.85, rec=0.2, extra_test={"kl": 1.0}),
        make_run(tmp_path / "r2", acc=0.95, rec=0.05),
    ]
    table = build_table(load_runs(runs)[0])
    as_json = json.loads(render(table, "json"))
    as_csv = list(csv.DictReader(io.StringIO(render(table, "csv"))))
    text = render(table, "table")
    markdown = render(table, "markdown")

    assert as_json["metrics"] == table.metrics == [row["metric"] for row in as_csv]
    assert as_json["baseline"] == "r0"
    for row in as_csv:
        name = row["metric"]
        for i, run in enumerate(as_json["runs"]):
            expected = table.value(name, i)
            assert run["metrics"].get(name) == expected  # full precision in json
            assert (float(row[run["label"]]) if row[run["label"]] else None) == expected  # and csv
            if i:
                diff = table.diff_to_first(name, i)
                assert as_json["diff_to_first"][run["label"]][name] == diff
                assert (float(row[f"diff {run['label']}"]) if row[f"diff {run['label']}"] else None) == diff
                cell = format_number(diff, signed=True)
                assert cell in text and cell in markdown
            assert format_number(expected) in text and format_number(expected) in markdown

    assert as_json["runs"][0]["metrics"]["test/probe_accuracy"] == 0.9123456789
    assert as_json["runs"][0]["config"] == {
        "model.kind": "ae",
        "model.latent": 8,
        "probe.strategy": "alternating",
        "probe.head": "linear",
        "seed": 0,
        "data.name": "digits",
        "data.labels": "all",
    }
    assert as_json["runs"][0]["path"] == str(runs[0])
    assert as_json["diff_to_first"]["r1"]["test/kl"] is None
    assert "0.0001235" in text  # tiny numbers keep 4 significant digits rather than 0.0001


def test_format_number() -> None:
    assert format_number(0.91) == "0.9100"
    assert format_number(-0.06, signed=True) == "-0.0600"
    assert format_number(0.02, signed=True) == "+0.0200"
    assert format_number(0.0) == "0.0000"
    assert format_number(1.23456e-5) == "1.235e-05"
    assert format_number(12345678.0) == "1.235e+07"
    assert format_number(None) == "n/a"
    assert format_number(float("nan")) == "nan"


def test_nan_metric_is_null_in_json(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", rec=float("nan"))
    out = json.loads(rendered([run], "json")[0])
    assert out["runs"][0]["metrics"]["test/reconstruction_loss"] is None


def test_unknown_format_lists_valid_ones(two_runs: list[Path]) -> None:
    table = build_table(load_runs(two_runs)[0])
    with pytest.raises(
        ValueError,
        match="unknown format 'xml'; choose one of: table, markdown, json, csv",
    ):
        render(table, "xml")


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_runs_renders_without_error(tmp_path: Path, fmt: str) -> None:
    text, problems = rendered([tmp_path / "ghost"], fmt)
    assert len(problems) == 1
    if fmt == "json":
        assert json.loads(text)["runs"] == []
    elif fmt == "csv":
        assert text == "metric\n"
    else:
        assert "no runs to compare" in text


def test_comparison_and_rundir_do_not_import_tensorflow() -> None:
    code = (
        "import sys, latentprobe.comparison, latentprobe.rundir; "
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[1],
    )
    assert result.returncode == 0, result.stdout + result.stderr
