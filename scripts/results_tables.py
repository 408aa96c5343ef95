"""Print docs/results.md's tables for a trained and evaluated study, each made by `latentprobe compare`.

Every table below is the markdown pivot `latentprobe compare STUDY --rows ... --cols ... --metric ...
--format markdown` prints, under the command that made it; this script only runs those commands and
adds the study's compute (from each run's summary.json and eval.json) at the end.

Usage::

    latentprobe train configs/study-mnist.yaml --jobs 2
    latentprobe eval runs/study-mnist --budgets 10,100,all --probes linear,knn --jobs 2
    python scripts/results_tables.py runs/study-mnist > tables.md
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path

#: (heading, metric): a pivot of the study, a row per kind and a column per latent size, each.
TABLES = [
    ("Linear probe, all train labels (55,000)", "eval/linear@all"),
    ("Linear probe, 1000 labels (100 per class)", "eval/linear@100"),
    ("Linear probe, 100 labels (10 per class)", "eval/linear@10"),
    ("kNN probe, all train labels", "eval/knn@all"),
    ("kNN probe, 1000 labels", "eval/knn@100"),
    ("kNN probe, 100 labels", "eval/knn@10"),
    (
        "Control: a random encoder of the same architecture, linear probe, all labels",
        "eval/random_encoder/linear@all",
    ),
    ("Control: a random encoder, linear probe, 1000 labels", "eval/random_encoder/linear@100"),
    (
        "Online probe (trained alternately with the autoencoder on every label), test accuracy",
        "test/probe_accuracy",
    ),
    ("Test reconstruction loss (binary cross-entropy, nats per image)", "test/reconstruction_loss"),
]

#: Controls that do not depend on the model, read off the ae runs (the same splits as every kind's):
#: (row label, metric). Each is one row of `compare`'s pivot; they are stacked into one table.
DATA_CONTROLS = [
    (f"{features} {probe}, {words}", f"eval/{key}/{probe}@{budget}")
    for features, key in (("PCA to the latent size,", "pca"), ("raw pixels (784),", "pixels"))
    for probe in ("linear", "knn")
    for budget, words in (("all", "all labels"), ("100", "1000 labels"), ("10", "100 labels"))
]


def latentprobe() -> list[str]:
    exe = shutil.which("latentprobe")
    return [exe] if exe else [sys.executable, "-m", "latentprobe.cli"]


def compare(paths: list[str], metric: str, rows: str, cols: str) -> str:
    command = [*latentprobe(), "compare", *paths, "--rows", rows, "--cols", cols]
    command += ["--metric", metric, "--format", "markdown"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(command)}: {done.stderr.strip()}")
    return done.stdout.strip()


def shown(paths: list[str], metric: str, rows: str, cols: str) -> str:
    """The compare command as a reader would type it (study-relative paths), and its table."""
    where = " ".join(paths)
    command = f"latentprobe compare {where} --rows {rows} --cols {cols} --metric {metric} --format markdown"
    return f"```bash\n{command}\n```\n\n{compare(paths, metric, rows, cols)}\n"


def data_controls(study: Path) -> str:
    """One table of the controls that depend on the data split alone, a row per (features, probe,
    budget): each row is the ``ae`` row of ``compare``'s pivot of that metric over the ae runs."""
    ae_runs = sorted(str(p) for p in study.glob("ae-z*"))
    header, lines, commands = None, [], []
    for label, metric in DATA_CONTROLS:
        table = compare(ae_runs, metric, "model.kind", "model.latent").splitlines()
        header = header or table[:2]
        row = next(line for line in table if line.startswith("| ae |"))
        lines.append(row.replace("| ae |", f"| {label} |", 1))
        commands.append(
            f"latentprobe compare {study}/ae-z* --rows model.kind --cols model.latent "
            f"--metric {metric} --format markdown"
        )
    header = [header[0].replace("model.kind", "control (on the ae runs' splits)", 1), header[1]]
    body = "\n".join([*header, *lines])
    return (
        "### Controls that do not depend on the model: PCA of the pixels, the raw pixels\n\n"
        "Each row is the `ae` row of one of these commands' tables (the same data splits as every "
        "kind's runs of that seed):\n\n```bash\n" + "\n".join(commands) + f"\n```\n\n{body}\n"
    )


def compute(study: Path) -> str:
    """Training and eval seconds summed over the study's runs, as their own files record them."""
    train = evaluate = 0.0
    runs = 0
    for summary_path in sorted(study.glob("*/summary.json")):
        summary = json.loads(summary_path.read_text())
        train += summary.get("timing", {}).get("total_seconds", 0.0)
        runs += 1
        eval_path = summary_path.parent / "eval.json"
        if eval_path.exists():
            timing = json.loads(eval_path.read_text()).get("timing", {})
            evaluate += timing.get("total_seconds", 0.0)
    return (
        f"{runs} runs; summed over runs: training {train / 60:.1f} min (each run's "
        f"`timing.total_seconds`), eval {evaluate / 60:.1f} min (each `eval.json`'s `timing`).\n"
    )


#: The tuning table's columns: (probe, budget) as eval.json's probe rows name them.
PROBE_COLUMNS = [(probe, budget) for probe in ("linear", "knn") for budget in ("10", "100", "all")]
BUDGET_WORDS = {"10": "100 labels", "100": "1000 labels", "all": "all"}


@functools.cache  # each table cell reads it again
def probe_rows(run_dir: Path) -> dict[tuple[str, str, str], dict]:
    """eval.json's offline probe rows of a run, keyed by (features, probe, budget)."""
    report = json.loads((run_dir / "eval.json").read_text())
    return {(row["features"], row["probe"], str(row["budget"])): row for row in report["probes"]}


def tuning_effect(tuned: Path, fixed: Path) -> str:
    """Tuned minus fixed test accuracy, paired run by run (the same trained encoders, evaluated twice),
    per kind of features and probe; then what the cross-validation chose and whether the fits converged.

    Rows: each kind's encoders (its runs at every latent size: 15 pairs), then the controls read off
    the ae runs: PCA and the random encoder (15: they depend on the latent size), the raw pixels (5:
    one per seed, from the z = 2 runs).
    """
    from latentprobe.comparison.statistics import mean_ci

    groups: dict[str, list[tuple[str, Path]]] = {}
    for run in sorted(p for p in tuned.iterdir() if (p / "eval.json").exists()):
        kind = json.loads((run / "summary.json").read_text())["config"]["model"]["kind"]
        groups.setdefault(kind, []).append(("encoder", run))
        if kind == "ae":
            groups.setdefault("PCA to the latent size", []).append(("pca", run))
            groups.setdefault("random encoder", []).append(("random_encoder", run))
            if run.name.startswith("ae-z2-"):
                groups.setdefault("raw pixels", []).append(("pixels", run))
    controls = ("PCA to the latent size", "random encoder", "raw pixels")
    kinds = ("ae", "dae", "vae", "sparse", "aae")  # the built-ins' usual order; any other kind after them

    def order(name: str) -> tuple[int, int, str]:
        if name in controls:
            return (2, controls.index(name), name)
        return (0, kinds.index(name), name) if name in kinds else (1, 0, name)

    groups = dict(sorted(groups.items(), key=lambda item: order(item[0])))
    header = "| features (pairs) | " + " | ".join(
        f"{probe} @ {BUDGET_WORDS[budget]}" for probe, budget in PROBE_COLUMNS
    )
    lines = [header + " |", "| --- |" + " ---: |" * len(PROBE_COLUMNS)]
    chosen: dict[tuple[str, str, str], dict[str, int]] = {}
    unconverged: dict[str, int] = {}
    fits = 0
    for name, members in groups.items():
        cells = []
        for probe, budget in PROBE_COLUMNS:
            diffs = []
            for features, run in members:
                after = probe_rows(run)[(features, probe, budget)]
                before = probe_rows(fixed / run.name)[(features, probe, budget)]
                diffs.append(after["accuracy"] - before["accuracy"])
                for key, value in (after.get("chosen") or {}).items():
                    group = "encoders" if features == "encoder" else name
                    tally = chosen.setdefault((group, probe, budget), {})
                    label = f"{key} = {value:g}"
                    tally[label] = tally.get(label, 0) + 1
                fits += 1
                if after.get("converged") is False:
                    where = f"{name} {probe} @ {BUDGET_WORDS[budget]}"
                    unconverged[where] = unconverged.get(where, 0) + 1
            ci = mean_ci(diffs)
            half = f" ± {ci.half_width:.4f}" if ci.half_width is not None else ""
            cells.append(f"{ci.mean:+.4f}{half}")
        lines.append(f"| {name} ({len(members)}) | " + " | ".join(cells) + " |")
    choice_lines = ["| features, probe @ labels | chosen (runs) |", "| --- | --- |"]
    for (group, probe, budget), tally in chosen.items():
        ranked = sorted(tally.items(), key=lambda item: float(item[0].split("= ")[1]))
        text = ", ".join(f"{label} ({count})" for label, count in ranked)
        choice_lines.append(f"| {group}, {probe} @ {BUDGET_WORDS[budget]} | {text} |")
    converged = (
        "every fit converged"
        if not unconverged
        else "fits that did not converge: " + ", ".join(f"{k} ({v})" for k, v in unconverged.items())
    )
    return (
        "### Tuned minus fixed probes, paired run by run\n\n"
        f"Test accuracy of `{tuned}` (eval's default, tuned) minus `{fixed}` (the same runs, "
        "`--no-tune`: linear C = 1, kNN k = 10), mean ± 95% CI over the pairs: a kind's row pools its "
        "runs at every latent size and seed; PCA and the random encoder are read off the ae runs, the raw "
        "pixels off the z = 2 ones (one per seed):\n\n"
        + "\n".join(lines)
        + "\n\nWhat the cross-validation chose (count of runs):\n\n"
        + "\n".join(choice_lines)
        + f"\n\nConvergence ({fits} tuned fits): {converged}.\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study", type=Path)
    parser.add_argument(
        "--fixed",
        type=Path,
        help="a copy of the study evaluated with --no-tune: adds the tuned-minus-fixed table",
    )
    args = parser.parse_args(argv)
    study = args.study
    if not (study / "study.json").exists():
        raise SystemExit(f"error: {study}: no study.json (train the study first)")
    out = []
    for heading, metric in TABLES:
        out.append(f"### {heading}\n\n{shown([str(study)], metric, 'model.kind', 'model.latent')}")
    out.append(data_controls(study))
    if args.fixed is not None:
        out.append(tuning_effect(study, args.fixed))
    out.append(f"### Compute\n\n{compute(study)}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
