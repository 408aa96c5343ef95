"""Reading a study: finding runs under directories, study groups, the pivot table and the capacity plot.

Run directories are fabricated (summary.json, config.yaml, study.json) as ``compare`` reads them; no
TensorFlow.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from latentprobe import rundir
from latentprobe.cli import app
from latentprobe.comparison import build_pivot, build_table, load_runs, render, render_pivot
from latentprobe.errors import RunDirError, UserError
from latentprobe.rundir import write_json

from .test_compare import make_summary

runner = CliRunner()

KINDS = ("ae", "vae")
LATENTS = (2, 8)
SEEDS = (0, 1, 2)


def invoke(*args: Any):
    return runner.invoke(app, [str(a) for a in args])


def accuracy(kind: str, latent: int, seed: int) -> float:
    """Distinct, known numbers per run: the pivot's cells are checked against them."""
    return 0.5 + 0.02 * latent + (0.07 if kind == "vae" else 0.0) + 0.013 * seed**2


def make_run(run_dir: Path, kind: str = "ae", latent: int = 8, seed: int = 0, **config: Any) -> Path:
    """A completed run directory as train leaves it (what compare reads: config.yaml, summary.json)."""
    run_dir.mkdir(parents=True)
    summary = make_summary(run_dir, acc=accuracy(kind, latent, seed), kind=kind, seed=seed)
    summary["config"]["model"]["latent"] = latent
    if kind == "vae":
        summary["config"]["model"]["vae"] = {"beta": 1.0}  # a variant's own block, as config resolves it
    for dotted, value in config.items():
        section, key = dotted.split("__")
        summary["config"][section][key] = value
    write_json(run_dir / "summary.json", summary)
    (run_dir / "config.yaml").write_text(f"seed: {seed}\n")
    (run_dir / "tb" / "train").mkdir(parents=True)  # a run's own folders are never searched
    return run_dir


def make_study(study_dir: Path, kinds=KINDS, latents=LATENTS, seeds=SEEDS) -> list[Path]:
    """A kind x latent x seed study; study.json lists the runs seed-major (not the sorted order)."""
    entries, runs = [], []
    for seed in seeds:
        for kind in kinds:
            for latent in latents:
                name = f"{kind}-z{latent}-s{seed}"
                runs.append(make_run(study_dir / name, kind, latent, seed))
                entries.append(
                    {
                        "name": name,
                        "values": {"model.kind": kind, "model.latent": latent, "seed": seed},
                        "dir": name,
                        "status": "completed",
                        "reason": None,
                    }
                )
    grid = {"model.kind": list(kinds), "model.latent": list(latents), "seed": list(seeds)}
    write_json(
        study_dir / "study.json",
        {"schema_version": 1, "name": study_dir.name, "grid": grid, "keys": list(grid), "runs": entries},
    )
    return runs


# ---- finding runs ----


def test_find_runs_in_nested_folders_studies_and_sweeps(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    study = make_study(out / "study", kinds=("ae",), latents=(2,), seeds=(1, 0))
    sweep_runs = [make_run(out / "old" / "sweep" / n, seed=s) for n, s in (("b", 1), ("a", 0))]
    write_json(out / "old" / "sweep" / "sweep.json", {"schema_version": 1, "name": "s", "runs": ["b", "a"]})
    nested = make_run(out / "x" / "deeper" / "plain")
    killed = out / "killed"
    killed.mkdir()
    (killed / "config.yaml").write_text("seed: 0\n")  # incomplete: found, compare reports it
    inside = make_run(nested / "checkpoints" / "not-a-run")  # under a run: never searched
    (out / ".hidden").mkdir()
    make_run(out / ".hidden" / "run")

    found = rundir.find_runs([out, study[0], out / "study"])
    assert found == [killed, *sweep_runs, *study, nested]  # sorted folders; listed order in each
    assert inside not in found

    records, problems = load_runs([out])
    assert [r.path for r in records] == [*sweep_runs, *study, nested]
    assert [p.path for p in problems] == [killed]
    assert "incomplete run: no summary.json" in problems[0].reason


def test_a_directory_without_runs_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty" / "a" / "b").mkdir(parents=True)
    with pytest.raises(RunDirError) as info:
        rundir.find_runs([tmp_path / "empty"])
    assert str(info.value) == f"{tmp_path / 'empty'}: not a latentprobe run and no run under it"
    with pytest.raises(RunDirError, match="no such directory"):
        rundir.find_runs([tmp_path / "ghost"])
    bad = tmp_path / "bad-study"
    bad.mkdir()
    write_json(bad / "study.json", {"schema_version": 1, "runs": [{"dir": "x"}]})
    with pytest.raises(RunDirError, match=r"study\.json: 'runs' must be a list of objects"):
        rundir.find_runs([bad])


def test_compare_of_an_output_dir_finds_its_runs(tmp_path: Path) -> None:
    make_study(tmp_path / "runs" / "study")
    result = invoke("compare", tmp_path / "runs", "--format", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert len(out["runs"]) == len(KINDS) * len(LATENTS) * len(SEEDS)
    result = invoke("compare", tmp_path / "runs" / "study" / "ae-z2-s0" / "tb")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"warning: {tmp_path / 'runs/study/ae-z2-s0/tb'}: not a latentprobe run and no run under it",
        "error: no complete run to compare",
    ]


# ---- groups ----


def test_study_runs_are_grouped_and_named_by_their_grid_values(tmp_path: Path) -> None:
    make_study(tmp_path / "study")
    table = build_table(*load_runs([tmp_path / "study"]))
    labels = [g.label for g in table.groups]
    assert labels == [
        "model.kind=ae model.latent=2",
        "model.kind=ae model.latent=8",
        "model.kind=vae model.latent=2",
        "model.kind=vae model.latent=8",
    ]
    vae8 = table.groups[3]
    assert vae8.seeds == [0, 1, 2]
    interval = vae8.interval("test/probe_accuracy")
    assert interval.n == 3 and interval.mean == pytest.approx(np.mean([accuracy("vae", 8, s) for s in SEEDS]))
    # paired over the seeds both share: vae-z8 - ae-z2 is the same 0.19 for every seed
    test = table.comparisons[2].tests["test/probe_accuracy"]
    assert test.n == 3 and test.difference.mean == pytest.approx(0.12 + 0.07)
    as_json = json.loads(render(table, "json"))
    assert as_json["groups"][3]["label"] == "model.kind=vae model.latent=8"
    assert as_json["groups"][3]["name"] == "g4"
    # the text names the groups g1..g4, over the grid values that set them apart
    lines = render(table, "table", "groups").splitlines()
    assert lines[1].split() == ["g1", "(n=3)", "g2", "(n=3)", "g3", "(n=3)", "g4", "(n=3)"]
    assert [line.split() for line in lines[3:6]] == [
        ["model.kind", "ae", "ae", "vae", "vae"],
        ["model.latent", "2", "8", "2", "8"],
        ["seeds", "0,1,2", "0,1,2", "0,1,2", "0,1,2"],
    ]


def test_runs_of_no_study_keep_numbered_groups(tmp_path: Path) -> None:
    runs = [make_run(tmp_path / f"z{z}-s{s}", latent=z, seed=s) for z in (2, 8) for s in (0, 1)]
    table = build_table(load_runs(runs)[0])
    assert [g.label for g in table.groups] == ["g1 (model.latent=2)", "g2 (model.latent=8)"]


# ---- the pivot ----


def half_width(values: list[float]) -> float:
    """The 95% CI half-width by hand: t quantile x sample std / sqrt(n)."""
    n = len(values)
    return stats.t.ppf(0.975, n - 1) * np.std(values, ddof=1) / math.sqrt(n)


def test_pivot_cells_are_mean_and_ci_over_seeds(tmp_path: Path) -> None:
    make_study(tmp_path / "study")
    records, _ = load_runs([tmp_path / "study"])
    labels = [r.path.name for r in records]
    pivot = build_pivot(records, labels, "test/probe_accuracy", "model.kind", "model.latent")
    assert pivot.row_values == ["ae", "vae"] and pivot.col_values == [2, 8]
    assert pivot.pooled == ["seed"]
    for kind in KINDS:
        for latent in LATENTS:
            values = [accuracy(kind, latent, s) for s in SEEDS]
            interval = pivot.cell(kind, latent).interval
            assert interval.n == 3
            assert interval.mean == pytest.approx(np.mean(values), abs=1e-12)
            assert interval.half_width == pytest.approx(half_width(values), rel=1e-9)

    text = render_pivot(pivot, "table")
    lines = text.splitlines()
    assert lines[0].split() == ["model.kind", "\\", "model.latent", "2", "8"]
    vae8 = [accuracy("vae", 8, s) for s in SEEDS]
    cell = f"{np.mean(vae8):.4f} ± {half_width(vae8):.4f} (3)"
    assert lines[3].startswith("vae") and lines[3].endswith(cell)
    assert lines[-1] == "cells: test/probe_accuracy, mean ± 95% CI (n runs); pooled over seed"


def test_pivot_markdown_pastes_into_a_paper(tmp_path: Path) -> None:
    make_study(tmp_path / "study", latents=(8,), seeds=(0,))
    result = invoke(
        "compare", tmp_path / "study", "--rows", "model.kind", "--cols", "model.latent", "-f", "markdown"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines() == [
        "| model.kind \\ model.latent | 8 |",
        "| --- | ---: |",
        f"| ae | {accuracy('ae', 8, 0):.4f} (1) |",
        f"| vae | {accuracy('vae', 8, 0):.4f} (1) |",
        "",
        "_cells: test/probe_accuracy, mean ± 95% CI (n runs); no other key varies within a cell_",
    ]


def test_pivot_pools_other_keys_and_says_so_in_json_and_csv(tmp_path: Path) -> None:
    runs = [
        make_run(tmp_path / f"{kind}-{labels}-s{s}", kind=kind, seed=s, data__labels=labels)
        for kind in KINDS
        for labels in (100, "all")
        for s in (0, 1)
    ]
    result = invoke("compare", *runs, "--rows", "model.kind", "--format", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["pooled"] == ["seed", "data.labels"]
    (ae,) = [c for c in out["cells"] if c["row"] == "ae"]
    values = [accuracy("ae", 8, s) for s in (0, 1, 0, 1)]
    assert ae["n"] == 4 and ae["mean"] == pytest.approx(np.mean(values))
    assert ae["half_width"] == pytest.approx(half_width(values))
    assert ae["runs"] == ["ae-100-s0", "ae-100-s1", "ae-all-s0", "ae-all-s1"]

    result = invoke("compare", *runs, "--rows", "model.kind", "--cols", "data.labels", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["model.kind"], r["data.labels"], r["n"]) for r in rows] == [
        ("ae", "100", "2"),
        ("ae", "all", "2"),
        ("vae", "100", "2"),
        ("vae", "all", "2"),
    ]
    assert float(rows[0]["mean"]) == pytest.approx(np.mean([accuracy("ae", 8, s) for s in (0, 1)]))
    assert {r["pooled_over"] for r in rows} == {"seed"}


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--rows", "model.kin", "error: --rows: no run has config key 'model.kin'; keys that vary across "
         "these runs: seed, model.kind, model.latent, model.vae.beta (any dotted config key works)"),
        ("--cols", "model", "error: --cols: 'model' is a section of the config, not a key (e.g. model.kind)"),
        ("--metric", "test/acc", "error: --metric: no run has 'test/acc'; available: test/chance_accuracy, "),
    ],
)  # fmt: skip
def test_bad_pivot_names_are_one_line_naming_the_option(tmp_path: Path, option, value, message) -> None:
    make_study(tmp_path / "study")
    args = {"--rows": "model.kind", "--cols": "model.latent", option: value}
    result = invoke("compare", tmp_path / "study", *[x for kv in args.items() for x in kv])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(message)


# ---- the plot ----


def test_plot_of_a_study_draws_a_line_per_kind(tmp_path: Path) -> None:
    make_study(tmp_path / "study")
    png = tmp_path / "out" / "capacity.png"
    result = invoke("compare", tmp_path / "study", "--plot", png, "--metric", "test/probe_accuracy")
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert f"wrote {png}" in result.stderr
    from latentprobe.comparison.plot import capacity_data

    data = capacity_data(build_table(load_runs([tmp_path / "study"])[0]), "test/probe_accuracy")
    vae = data.panels["test/probe_accuracy"]["vae"]
    assert [x for x, _, _ in vae] == [2.0, 8.0]
    assert vae[1][1] == pytest.approx(np.mean([accuracy("vae", 8, s) for s in SEEDS]))


def test_a_plot_that_cannot_be_drawn_prints_nothing_but_one_error(tmp_path: Path) -> None:
    runs = [
        make_run(tmp_path / f"z{z}", latent=z, probe__head=head) for z, head in ((2, "linear"), (8, "mlp"))
    ]
    png = tmp_path / "capacity.png"
    result = invoke("compare", *runs, "--plot", png)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: --plot: a capacity plot needs runs that differ only in model.latent (and seed) within each "
        "model.kind; these also differ in probe.head (give one as --rows, or compare fewer runs)"
    ]
    assert not png.exists()
    # drawn once the lines are per probe head
    result = invoke("compare", *runs, "--plot", png, "--rows", "probe.head")
    assert result.exit_code == 0 and png.exists()


def test_plot_errors_reach_the_user_as_user_errors(tmp_path: Path) -> None:
    runs = [make_run(tmp_path / f"s{s}", seed=s) for s in (0, 1)]
    from latentprobe.comparison import write_capacity_plot

    with pytest.raises(UserError, match="these have model.latent 8 only"):
        write_capacity_plot(build_table(load_runs(runs)[0]), tmp_path / "c.png")
