"""What pruning saves: the same trials of a search with the median pruner and without, wall time and best.

Runs ``latentprobe train CONFIG --jobs N`` twice into a fresh output directory: once as the config says
(its pruner) and once with ``search.pruner=none``, both with the random sampler so that the two searches
sample the same trials (a seeded random sampler's values do not depend on how earlier trials ended; TPE's
do). Prints one JSON object: per search, wall seconds, trials completed and pruned, the epochs trained and
the best validation objective (with that trial's test probe accuracy, reported, not used to choose).

    python benchmarks/search_pruning.py configs/search-digits.yaml --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_search(config: str, jobs: int, out_dir: Path, name: str, pruner: str | None) -> dict:
    sets = ["--set", f"output.dir={out_dir}", "--set", f"name={name}", "--set", "search.sampler=random"]
    if pruner is not None:
        sets += ["--set", f"search.pruner={pruner}"]
    command = [sys.executable, "-m", "latentprobe.cli", "train", config, "--jobs", str(jobs), *sets]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    study_dir = out_dir / name
    record = json.loads((study_dir / "search.json").read_text())
    epochs = 0
    for trial in record["trials"]:
        summary = json.loads((study_dir / trial["dir"] / "summary.json").read_text())
        epochs += len((summary.get("history") or {}).get("epoch") or [])
    best = record["best"]
    best_test = None
    if best:
        summary = json.loads((study_dir / best / "summary.json").read_text())
        best_test = summary["metrics"]["test"]["probe_accuracy"]
    statuses = [t["status"] for t in record["trials"]]
    return {
        "pruner": record["search"]["pruner"],
        "wall_seconds": round(seconds, 1),
        "trials": len(statuses),
        "completed": statuses.count("completed"),
        "pruned": statuses.count("pruned"),
        "epochs_trained": epochs,
        "best_trial": best,
        "best_objective": next((t["value"] for t in record["trials"] if t["dir"] == best), None),
        "best_test_probe_accuracy": best_test,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="output directory (default: a temporary one)")
    args = parser.parse_args()
    out_dir = args.out or Path(tempfile.mkdtemp(prefix="search-bench-"))
    results = {
        "config": args.config,
        "jobs": args.jobs,
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg()[0],
        "pruned": run_search(args.config, args.jobs, out_dir, "bench-pruned", None),
        "unpruned": run_search(args.config, args.jobs, out_dir, "bench-unpruned", "none"),
        "load_after": os.getloadavg()[0],
        "out": str(out_dir),
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
