"""eval's speed on an MNIST run: the time of ``evaluate(RUN_DIR)`` broken down by part, as JSON.

Trains ``configs/reference/frozen-encoder-mnist.yaml`` briefly (``--epochs`` + ``--probe-epochs``) into a
temporary folder, or takes a run directory, then evaluates it with eval's default options twice, each in a
fresh Python process (TensorFlow imported before the clock starts, as in ``latentprobe eval``):

  cold  an empty controls cache: every probe of the encoder and the three controls is fitted;
  warm  the same cache again, as a later eval of a run of the same data finds it: PCA's and the raw
        pixels' probes and clustering are read back, the encoder's and the random encoder's refitted.

Each mode reports ``total_seconds`` (eval.json's ``timing.total_seconds``), its stages (``load``,
``features``: the encoder's and the random encoder's codes, ``probes`` (PCA's
projection included, made only on a cache miss), ``clustering``, ``plots``,
``projector``), the fit seconds per feature set and probe family (summed over the fits, which run in
parallel processes, so they add up to more than ``probes`` wall time), ``controls_fit_seconds`` (the
random encoder's, PCA's and the pixels' fits), the same in CPU seconds (``fit_cpu_seconds``: less
sensitive to a busy machine), the eval process's CPU seconds with its probe workers and TensorFlow's
import (``process_cpu_seconds``), its peak RSS and the load average before and after.
Data: ``$LATENTPROBE_DATA_DIR/mnist.npz``.

Usage::

    LATENTPROBE_DATA_DIR=/work/shared/data python benchmarks/eval_speed.py
    python benchmarks/eval_speed.py runs/frozen-short/ae-z16-s0 --no-tune
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "reference" / "frozen-encoder-mnist.yaml"

# One eval in a fresh process; prints its eval.json timing and the peak RSS as JSON.
EVAL_CHILD = """
import json, resource, sys
from latentprobe.runtime import import_tensorflow
import_tensorflow()
from latentprobe.evaluation import evaluate
from latentprobe.evaluation.options import EvalOptions
report = evaluate(sys.argv[1], EvalOptions(tune=sys.argv[2] == "tune"))
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps({"timing": report["timing"], "peak_rss_gib": rss}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", nargs="?", type=Path, help="an MNIST run (default: train one)")
    parser.add_argument("--epochs", type=int, default=2, help="autoencoder epochs of the trained run")
    parser.add_argument("--probe-epochs", type=int, default=1)
    parser.add_argument("--tune", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="eval-speed-"))
    try:
        run_dir = args.run_dir or train(work, args.epochs, args.probe_epochs)
        env = {**os.environ, "LATENTPROBE_CACHE_DIR": str(work / "cache"), "PYTHONPATH": str(REPO)}
        result = {"machine": machine(), "run_dir": str(run_dir), "tune": args.tune}
        for mode in ("cold", "warm"):
            result[mode] = evaluate_once(run_dir, args.tune, env)
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def train(work: Path, epochs: int, probe_epochs: int) -> Path:
    sets = ["name=eval-speed", f"train.epochs={epochs}", f"probe.epochs={probe_epochs}"]
    sets.append(f"output.dir={work / 'runs'}")
    command = [sys.executable, "-m", "latentprobe.cli", "train", str(CONFIG)]
    for item in sets:
        command += ["--set", item]
    # The training's progress goes to stderr: stdout is this benchmark's JSON alone.
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run(command, check=True, cwd=REPO, env=env, stdout=sys.stderr)
    return next((work / "runs" / "eval-speed").glob("*/summary.json")).parent


def evaluate_once(run_dir: Path, tune: bool, env: dict[str, str]) -> dict:
    before = os.getloadavg()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-c", EVAL_CHILD, str(run_dir), "tune" if tune else "fixed"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
    child = json.loads(done.stdout.strip().splitlines()[-1])
    timing = child["timing"]
    fits = timing.pop("probe_fit_seconds", {})
    fits_cpu = timing.pop("probe_fit_cpu_seconds", {})
    families: dict[str, float] = {}
    for part, seconds in fits.items():
        family = part.split("/", 1)[1]
        families[family] = families.get(family, 0.0) + seconds
    controls = sum(s for p, s in fits.items() if not p.startswith("encoder/"))
    return {
        "total_seconds": round(timing.pop("total_seconds"), 2),
        "stages_seconds": {k.removesuffix("_seconds"): round(v, 2) for k, v in timing.items()},
        "fit_seconds_by_family": {k: round(v, 2) for k, v in families.items()},
        "fit_seconds": {k: round(v, 2) for k, v in fits.items()},
        "fit_cpu_seconds": {k: round(v, 2) for k, v in fits_cpu.items()},
        "process_cpu_seconds": round(cpu, 2),
        "controls_fit_seconds": round(controls, 2),
        "peak_rss_gib": round(child["peak_rss_gib"], 2),
        "load_average_before": [round(x, 2) for x in before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def machine() -> dict:
    model = ""
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
        model = next((line.split(":", 1)[1].strip() for line in lines if "Model name" in line), "")
    except OSError:
        pass
    return {"cpu": model or platform.processor(), "cores": len(os.sched_getaffinity(0))}


if __name__ == "__main__":
    main()
