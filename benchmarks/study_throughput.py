"""Study throughput: the 12-run digits study on one process, and on 1 and 2 long-lived workers.

Prints one JSON object. The study is ``configs/quickstart.yaml`` with ``seed: [0, 1, 2]`` and
``model.latent: [2, 4, 8, 16]`` (12 runs of 30 epochs), trained three ways, each in a fresh Python
process and a fresh output directory, one after another on the same machine:

  baseline  today's sequential sweep: ``train.run`` of the whole config in one process (TensorFlow's
            default threads);
  jobs1     ``study.train_study`` with 1 worker of ``cores`` TensorFlow threads;
  jobs2     ``study.train_study`` with 2 workers of ``cores / 2`` threads each.

Each mode's figures: ``wall_seconds`` (process start to exit, TensorFlow imports included, as a user
waits), ``runs_per_hour``, ``train_seconds`` (the sum of the runs' ``timing.train_seconds``) and
``overhead_seconds_per_run``: the worker-seconds not spent in training epochs, per run,
``(workers * wall_seconds - train_seconds) / runs`` (for one process: wall time beyond the training,
per run). ``jobs2_over_jobs1`` is the wall-time ratio (target <= 0.70 on 2 cores);
``overhead_vs_baseline`` each study mode's overhead per run against the baseline's.

Usage::

    python benchmarks/study_throughput.py
    python benchmarks/study_throughput.py --epochs 3 --seeds 0 1 --latents 2 4   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "configs" / "quickstart.yaml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--latents", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--epochs", type=int, default=None, help="override train.epochs (default: 30)")
    parser.add_argument("--cores", type=int, default=None, help="cores to share out (default: all usable)")
    return parser.parse_args(argv)


def overrides(args: argparse.Namespace, out_dir: Path) -> list[str]:
    items = [
        f"seed=[{', '.join(map(str, args.seeds))}]",
        f"model.latent=[{', '.join(map(str, args.latents))}]",
        f"output.dir={out_dir}",
    ]
    if args.epochs is not None:
        items.append(f"train.epochs={args.epochs}")
    return items


def baseline_code(sets: list[str]) -> str:
    return f"from latentprobe import config, train\ntrain.run(config.load({str(QUICKSTART)!r}, {sets!r}))\n"


def study_code(sets: list[str], jobs: int, threads: int) -> str:
    return (
        "import sys\nfrom latentprobe import study\n"
        f"sys.exit(study.train_study({str(QUICKSTART)!r}, {sets!r}, jobs={jobs}, threads={threads}))\n"
    )


def measure(code: str, out_dir: Path, workers: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"benchmark run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    summaries = [json.loads(p.read_text()) for p in sorted(out_dir.glob("quickstart/*/summary.json"))]
    train = sum(s["timing"]["train_seconds"] for s in summaries)
    runs = len(summaries)
    return {
        "workers": workers,
        "runs": runs,
        "wall_seconds": round(wall, 2),
        "runs_per_hour": round(runs * 3600 / wall, 1),
        "train_seconds": round(train, 2),
        "overhead_seconds_per_run": round((workers * wall - train) / runs, 3),
        "test_probe_accuracy": {
            Path(s["run_dir"]).name: s["metrics"]["test"]["probe_accuracy"] for s in summaries
        },
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    from latentprobe.executors import cpu_count

    cores = args.cores or cpu_count()
    modes: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="study-throughput-") as tmp:
        for name, jobs in (("baseline", None), ("jobs1", 1), ("jobs2", 2)):
            out_dir = Path(tmp) / name
            sets = overrides(args, out_dir)
            if jobs is None:
                modes[name] = measure(baseline_code(sets), out_dir, 1)
            else:
                threads = max(1, cores // jobs)
                modes[name] = measure(study_code(sets, jobs, threads), out_dir, jobs)
                modes[name]["threads_per_worker"] = threads
    one, two, base = modes["jobs1"], modes["jobs2"], modes["baseline"]
    accuracies = [m.pop("test_probe_accuracy") for m in modes.values()]
    report = {
        "study": {"config": "configs/quickstart.yaml", "seeds": args.seeds, "latents": args.latents},
        "epochs": args.epochs or 30,
        "cores": cores,
        "modes": modes,
        "jobs2_over_jobs1": round(two["wall_seconds"] / one["wall_seconds"], 3),
        "overhead_vs_baseline": {
            "jobs1": round(one["overhead_seconds_per_run"] - base["overhead_seconds_per_run"], 3),
            "jobs2": round(two["overhead_seconds_per_run"] - base["overhead_seconds_per_run"], 3),
        },
        # Same seeds and configs: metrics agree up to the thread count's floating-point ordering.
        "max_probe_accuracy_difference": {
            "jobs1_vs_baseline": max(abs(accuracies[1][k] - accuracies[0][k]) for k in accuracies[0]),
            "jobs2_vs_jobs1": max(abs(accuracies[2][k] - accuracies[1][k]) for k in accuracies[1]),
        },
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "load_average_at_end": list(os.getloadavg()),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
