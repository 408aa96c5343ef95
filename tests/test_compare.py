"""Tests for latentprobe.comparison on fake-but-realistic summary.json files (no TensorFlow)."""

from __future__ import annotations

import csv
import io
import json
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from latentprobe.cli import app
from latentprobe.comparison import FORMATS, Problem, build_table, load_runs, render
from latentprobe.comparison.numbers import format_p, metric_kind, number_format
from latentprobe.comparison.table import KEY_CONFIG_FIELDS, make_labels
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
    # what every run shares is a note (wrapped at 100 columns); the rows are what tells the runs apart
    assert lines[:3] == [
        "same in every run: model.latent=8, probe.strategy=alternating, probe.head=linear, data.name=digits,",
        "  data.labels=all",
        "diff: the run to its left minus the first run, ae-run",
    ]
    assert lines[3].split() == ["ae-run", "vae-run", "diff"]
    row = {line.split()[0]: line.split()[1:] for line in lines[4:] if line and not line.startswith("-")}
    assert row["model.kind"] == ["ae", "vae"]
    assert row["seed"] == ["0", "1"]
    assert "probe.strategy" not in row
    assert row["test/probe_accuracy"] == ["0.9100", "0.8500", "-0.0600"]
    assert row["test/kl"] == ["n/a", "2.500", "n/a"]
    assert row["test/reconstruction_loss"] == ["0.1000", "0.1200", "+0.0200"]
    assert row["timing/train_samples_per_second"] == ["5000", "5000", "+0"]
    assert row["timing/train_seconds"] == ["12.30", "12.30", "+0.00"]
    # config rows come before metric rows
    assert lines.index(next(x for x in lines if x.startswith("seed"))) < lines.index(
        next(x for x in lines if x.startswith("test/probe_accuracy"))
    )
    # columns line up: every metric row has the same length once right-aligned
    metric_lines = [x for x in lines if x.startswith(("test/", "val/", "timing/"))]
    assert len({len(x) for x in metric_lines}) == 1


def test_markdown_has_both_tables(two_runs: list[Path]) -> None:
    text, _ = rendered(two_runs, "markdown")
    assert "| config | ae-run | vae-run | diff |" in text
    assert "| metric | ae-run | vae-run | diff |" in text
    assert "| test/probe_accuracy | 0.9100 | 0.8500 | -0.0600 |" in text
    assert "| model.kind | ae | vae |  |" in text


def test_all_formats_carry_the_same_numbers(tmp_path: Path) -> None:
    runs = [
        make_run(tmp_path / "r0", acc=0.9123456789, rec=0.000123456),
        make_run(tmp_path / "r1", acc=0.85, rec=0.2, extra_test={"kl": 1.0}, kind="vae"),
        make_run(tmp_path / "r2", acc=0.95, rec=0.05, kind="dae"),
    ]
    table = build_table(load_runs(runs)[0])
    as_json = json.loads(render(table, "json"))
    as_csv = {row["run"]: row for row in csv.DictReader(io.StringIO(render(table, "csv")))}
    text = render(table, "table")
    markdown = render(table, "markdown")

    assert as_json["metrics"] == table.metrics
    assert as_json["baseline"] == "r0"
    for i, run in enumerate(as_json["runs"]):
        row = as_csv[run["label"]]
        assert row["path"] == run["path"] == str(runs[i])
        for name in table.metrics:
            expected = table.value(name, i)
            assert run["metrics"].get(name) == expected  # full precision in json
            assert (float(row[name]) if row[name] else None) == expected  # and csv
            cell = table.format(name).value(expected)
            assert cell in text and cell in markdown
            if i:
                diff = table.diff_to_first(name, i)
                assert as_json["diff_to_first"][run["label"]][name] == diff
                cell = table.format(name).value(diff, signed=True)
                assert cell in text and cell in markdown

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
    assert as_json["diff_to_first"]["r1"]["test/kl"] is None
    # the loss keeps 4 significant digits of its largest value, in fixed point: 0.2000, 0.0001
    assert "0.0001 " in text and "0.2000" in text and "e-0" not in text


def test_numbers_print_by_what_they_measure() -> None:
    assert metric_kind("test/probe_accuracy") == "fraction"
    assert metric_kind("eval/random_encoder/knn@100") == "fraction"
    assert metric_kind("eval/nmi") == metric_kind("eval/online_offline_gap") == "fraction"
    assert metric_kind("eval/active_units") == "count"
    assert metric_kind("test/reconstruction_loss") == metric_kind("timing/train_seconds") == "magnitude"

    accuracy = number_format("test/probe_accuracy", [1.0, 0.1])
    assert accuracy.value(1.0) == "1.0000" and accuracy.value(0.10001718) == "0.1000"
    assert accuracy.value(2.148e-06, signed=True) == "+0.0000"  # never +2.148e-06
    assert accuracy.value(-3.7e-17, signed=True) == "+0.0000"  # never -0.0000
    count = number_format("eval/active_units", [16.0, 2.0])
    assert count.value(16.0) == "16" and count.value(14.0, signed=True) == "+14"
    assert count.stat(6.666666) == "6.67"  # a mean of counts is no count
    loss = number_format("test/reconstruction_loss", [21.9153, 16.27])
    assert loss.value(21.9153) == "21.92" and loss.value(16.27) == "16.27"
    assert number_format("x/probe_loss", [1.2337, 0.2301]).value(0.2301) == "0.230"
    assert number_format("timing/train_samples_per_second", [21441.3094]).value(21441.3094) == "21441"
    assert number_format("test/kl", [1.23456e-5]).value(1.23456e-5) == "0.00001235"
    assert accuracy.value(None) == "n/a" and accuracy.value(float("nan")) == "nan"
    assert format_p(0.002212) == "0.002212" and format_p(8.1e-05) == "<0.0001" and format_p(None) == "n/a"


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
        assert text.splitlines()[0].startswith("run,path,group,model.kind")
    else:
        assert "no runs to compare" in text


# ---- a realistic study: what compare prints for 18 evaluated runs ----

KINDS, LATENTS, SEEDS = ("ae", "dae", "vae"), (2, 8), (0, 1, 2)


def eval_metrics(latent: int, seed: int) -> dict[str, float]:
    """eval.json's headline numbers as eval writes them: probes x budgets for the encoder and the two
    controls, clustering, the online/offline gap and the active units."""
    rng = random.Random(latent * 100 + seed)
    out: dict[str, float] = {}
    for prefix in ("", "pca/", "random_encoder/"):
        for probe in ("linear", "mlp", "knn"):
            for budget in ("10", "100", "all"):
                out[f"{prefix}{probe}@{budget}"] = round(rng.uniform(0.3, 0.95), 4)
        out[f"{prefix}kmeans_accuracy"] = rng.uniform(0.3, 0.8)
        out[f"{prefix}nmi"] = rng.uniform(0.2, 0.8)
    out["offline_linear_accuracy"] = out["linear@all"]
    out["online_offline_gap"] = rng.uniform(-0.03, 0.03)
    out["active_units"] = float(latent - (seed == 2 and latent > 2))
    return out


def make_realistic_study(root: Path) -> Path:
    """3 kinds x 2 latent sizes x 3 seeds, evaluated, with the study.json that names their groups."""
    study = root / "study-digits"
    entries = []
    for kind in KINDS:
        for latent in LATENTS:
            for seed in SEEDS:
                name = f"{kind}-z{latent}-s{seed}"
                extra = {"kl_loss": 2.4 + seed / 10, "elbo_loss": 23.9} if kind == "vae" else {}
                acc = 0.6 + latent / 40 + seed / 100
                run = make_run(study / name, acc=acc, rec=22.0 - latent / 2 + seed / 7, kind=kind, seed=seed,
                               extra_test=extra)  # fmt: skip
                summary = json.loads((run / "summary.json").read_text())
                summary["config"]["model"]["latent"] = latent
                summary["metrics"]["test"]["chance_accuracy"] = 0.10001718 + seed * 2e-6
                if kind != "ae":
                    summary["config"]["model"][kind] = {"beta": 1.0} if kind == "vae" else {"fraction": 0.3}
                summary["timing"]["train_samples_per_second"] = 21441.3094 - seed * 177.2579
                write_json(run / "summary.json", summary)
                write_json(
                    run / "eval.json", {"schema_version": 2, "metrics": {"eval": eval_metrics(latent, seed)}}
                )
                values = {"model.kind": kind, "model.latent": latent, "seed": seed}
                entries.append(
                    {"name": name, "values": values, "dir": name, "status": "completed", "reason": None}
                )
    grid = {"model.kind": list(KINDS), "model.latent": list(LATENTS), "seed": list(SEEDS)}
    meta = {"schema_version": 1, "name": study.name, "grid": grid, "keys": list(grid), "runs": entries}
    write_json(study / "study.json", meta)
    return study


def invoke(*args: Any):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_a_study_reads_in_100_columns_and_wider_only_on_request(tmp_path: Path) -> None:
    study = make_realistic_study(tmp_path)
    result = invoke("compare", study)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(map(len, lines)) <= 100
    assert all(f"{k}-z{z}-s{s}" in result.stdout for k in KINDS for z in LATENTS for s in SEEDS)
    # ordinary numbers in fixed point: no scientific notation, no -0.0000, counts as integers
    assert not re.search(r"\d[eE][+-]\d", result.stdout)
    assert "-0.0000" not in result.stdout
    assert re.search(r"^eval/active_units +2 +2 +2 +8 +8 +7( |$)", result.stdout, re.M)
    # per-seed differences mean nothing: only the paired comparisons of the groups show differences
    assert not re.search(r"  diff( |$)", result.stdout, re.M) and "diff:" not in result.stdout
    assert "g2 - g1, paired by seed (0,1,2)" in result.stdout
    assert "config diff g1 -> g2: model.latent 2 -> 8" in result.stdout
    assert "config diff g1 -> g3: model.kind ae -> dae" in result.stdout  # not model.dae.fraction
    # the groups' columns are named g1..g6 over the config that sets them apart
    header = next(
        i for i, x in enumerate(lines) if x.split() == ["g1", "(n=3)", "g2", "(n=3)", "g3", "(n=3)"]
    )
    assert lines[header + 2].split() == ["model.kind", "ae", "ae", "dae"]
    assert lines[header + 3].split() == ["model.latent", "2", "8", "2"]
    assert lines[header + 4].split() == ["seeds", "0,1,2", "0,1,2", "0,1,2"]

    wide = invoke("compare", study, "--width", "0")
    assert wide.exit_code == 0 and max(map(len, wide.stdout.splitlines())) > 150
    assert invoke("compare", study, "--width", "120").stdout.count("\n") < result.stdout.count("\n")


def test_a_seed_sweep_shows_its_group_and_no_differences(tmp_path: Path) -> None:
    runs = [make_run(tmp_path / f"ae-z8-s{s}", acc=0.9 + s / 100, seed=s) for s in SEEDS]
    result = invoke("compare", *runs)
    assert result.exit_code == 0, result.output
    assert ["ae-z8-s0", "ae-z8-s1", "ae-z8-s2"] in [x.split() for x in result.stdout.splitlines()]
    assert not re.search(r"  diff( |$)", result.stdout, re.M) and "diff:" not in result.stdout
    assert re.search(r"^test/probe_accuracy +0\.9100 ± 0\.0248$", result.stdout, re.M)
    out = json.loads(invoke("compare", *runs, "-f", "json").stdout)
    assert "diff_to_first" not in out and out["groups"][0]["seeds"] == [0, 1, 2]


def test_csv_is_one_rectangular_table_with_every_run_and_its_config(tmp_path: Path) -> None:
    study = make_realistic_study(tmp_path)
    text = invoke("compare", study, "--format", "csv").stdout
    rows = list(csv.reader(io.StringIO(text)))
    assert "\n\n" not in text and len({len(r) for r in rows}) == 1
    header, body = rows[0], rows[1:]
    assert header[:3] == ["run", "path", "group"]
    assert header[3:10] == list(KEY_CONFIG_FIELDS)
    assert len(body) == 18
    first = dict(zip(header, body[0], strict=True))
    assert (first["run"], first["model.kind"], first["model.latent"], first["seed"]) == (
        "ae-z2-s0",
        "ae",
        "2",
        "0",
    )
    assert first["group"] == "model.kind=ae model.latent=2"
    assert float(first["test/probe_accuracy"]) == 0.6 + 2 / 40
    assert first["eval/active_units"] == "2.0" and first["test/kl_loss"] == ""

    for which, columns, count in (("groups", "metric", 6), ("comparisons", "p_value", 5)):
        result = invoke("compare", study, "--format", "csv", "--table", which)
        assert result.exit_code == 0, result.output
        rows = list(csv.reader(io.StringIO(result.stdout)))
        assert len({len(r) for r in rows}) == 1 and columns in rows[0]
        assert len({tuple(r[:2]) for r in rows[1:]}) == count
    groups = list(
        csv.DictReader(io.StringIO(invoke("compare", study, "-f", "csv", "--table", "groups").stdout))
    )
    assert (
        groups[0]["model.kind"] == "ae" and groups[0]["model.latent"] == "2" and groups[0]["seeds"] == "0 1 2"
    )
    comparisons = invoke("compare", study, "-f", "csv", "--table", "comparisons").stdout
    assert next(csv.DictReader(io.StringIO(comparisons)))["config_diff"] == "model.latent: 2 -> 8"


def test_table_picks_one_table_in_text_too(tmp_path: Path) -> None:
    study = make_realistic_study(tmp_path)
    result = invoke("compare", study, "--table", "groups")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("groups of runs differing only by seed")
    assert "ae-z2-s0" not in result.stdout and "paired" not in result.stdout


BAD_OPTIONS = [
    (
        ["--table", "metrics"],
        "error: --table: unknown table 'metrics' (expected one of: runs, groups, comparisons)",
    ),
    (
        ["--table", "runs", "-f", "json"],
        "error: --table: json holds every table; pick one with --format table, markdown or csv",
    ),
    (
        ["--width", "80", "-f", "csv"],
        "error: --width: only the table format is laid out to a width, not csv",
    ),
    (
        ["--plot", "capacity.txt"],
        "error: --plot: capacity.txt: the plot is written as PNG, PDF or SVG; "
        "give a file name ending in .png, .pdf, .svg",
    ),
    (
        ["--table", "groups", "--rows", "model.kind"],
        "error: --table: picks a table of the comparison; a pivot (--rows, --cols) is one table",
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD_OPTIONS)
def test_bad_options_print_one_error_and_nothing_else(two_runs: list[Path], args, message) -> None:
    result = invoke("compare", *two_runs, *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [message]


def test_groups_of_runs_that_hold_one_seed_each_have_no_group_table(two_runs: list[Path]) -> None:
    result = invoke("compare", *two_runs, "--table", "groups")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: --table groups: no group of these runs holds more than one seed")


def test_a_plot_that_cannot_be_drawn_prints_nothing_but_one_error(tmp_path: Path) -> None:
    study = make_realistic_study(tmp_path)
    for args in (["--plot", tmp_path], ["--plot", tmp_path / "c.png", "--metric", "test/nothing"]):
        result = invoke("compare", study, *args)
        assert result.exit_code == 2 and result.stdout == ""
        assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: --")
    assert not (tmp_path / "c.png").exists()


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
