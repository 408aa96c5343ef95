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
    ("kNN probe (k = 10), all train labels", "eval/knn@all"),
    ("kNN probe (k = 10), 1000 labels", "eval/knn@100"),
    ("kNN probe (k = 10), 100 labels", "eval/knn@10"),
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
            evaluate += timing.get("total", sum(v for v in timing.values() if isinstance(v, float)))
    return (
        f"{runs} runs; summed over runs: training {train / 60:.1f} min (each run's "
        f"`timing.total_seconds`), eval {evaluate / 60:.1f} min (each `eval.json`'s `timing`).\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study", type=Path)
    args = parser.parse_args(argv)
    study = args.study
    if not (study / "study.json").exists():
        raise SystemExit(f"error: {study}: no study.json (train the study first)")
    out = []
    for heading, metric in TABLES:
        out.append(f"### {heading}\n\n{shown([str(study)], metric, 'model.kind', 'model.latent')}")
    out.append(data_controls(study))
    out.append(f"### Compute\n\n{compute(study)}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
