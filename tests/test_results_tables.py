"""scripts/results_tables.py's tuned-minus-fixed table: differences paired run by run, the choices counted,
unconverged fits named, and eval's timing summed as eval.json records it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tables():
    spec = importlib.util.spec_from_file_location("results_tables", REPO / "scripts" / "results_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_run(study: Path, name: str, kind: str, accuracy: dict, chosen: float | None, converged=True):
    """A run directory holding only what the table reads: the kind, and eval's probe rows."""
    run = study / name
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"config": {"model": {"kind": kind}}, "timing": {}}))
    rows = []
    for features in ("encoder", "pca", "random_encoder", "pixels"):
        for probe in ("linear", "knn"):
            for budget in ("10", "100", "all"):
                row = {"features": features, "probe": probe, "budget": budget}
                row["accuracy"] = accuracy.get((features, probe, budget), 0.5)
                if chosen is not None:
                    row["chosen"] = {"C" if probe == "linear" else "k": chosen}
                    row["converged"] = converged
                rows.append(row)
    timing = {"load_seconds": 1.0, "probes_seconds": 1.5, "total_seconds": 2.5}
    (run / "eval.json").write_text(json.dumps({"probes": rows, "timing": timing}))


def test_differences_are_paired_by_run_and_choices_counted(tmp_path, tables):
    tuned, fixed = tmp_path / "tuned", tmp_path / "fixed"
    for seed, (before, after) in enumerate([(0.70, 0.75), (0.60, 0.66), (0.80, 0.87)]):
        name = f"ae-z2-s{seed}"
        write_run(
            fixed, name, "ae", {("encoder", "knn", "10"): before, ("pixels", "linear", "10"): 0.7}, None
        )
        write_run(
            tuned,
            name,
            "ae",
            {("encoder", "knn", "10"): after, ("pixels", "linear", "10"): 0.68},
            chosen=1.0 if seed else 5.0,
            converged=seed != 2,
        )
    text = tables.tuning_effect(tuned, fixed)
    lines = text.splitlines()
    (encoders,) = [line for line in lines if line.startswith("| ae (3) |")]
    # kNN @ 100 labels is the 4th column: differences 0.05, 0.06, 0.07 -> +0.0600 +- t(2) * 0.01 / sqrt(3)
    assert encoders.split(" | ")[4] == "+0.0600 ± 0.0248"
    (pixels,) = [line for line in lines if line.startswith("| raw pixels (3) |")]
    assert pixels.split(" | ")[1] == "-0.0200 ± 0.0000"
    assert "| encoders, knn @ 100 labels | k = 1 (2), k = 5 (1) |" in lines
    assert "ae knn @ 100 labels (1)" in text  # seed 2's fit did not converge


def test_compute_sums_each_evals_total_seconds(tmp_path, tables):
    study = tmp_path / "study"
    for seed in range(2):
        write_run(study, f"ae-z2-s{seed}", "ae", {}, None)
    assert "eval 0.1 min" in tables.compute(study)  # 2 x 2.5 s, not every stage added again (0.2)
