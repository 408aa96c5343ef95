"""Searches: the search: block's checks (no TensorFlow, no Optuna), a real pruned search on digits,
compare's ranking, more trials for the same search, and the error without Optuna."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from latentprobe import search
from latentprobe.cli import app
from latentprobe.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

BASE = """\
name: s
seed: 3
data: {name: digits, limit: 300}
model: {kind: ae, latent: 2, hidden: [16]}
train: {epochs: 2, batch_size: 64, device: cpu, jit_compile: false}
output: {dir: OUT}
"""


def write(tmp_path: Path, block: str, base: str = BASE) -> Path:
    path = tmp_path / "search.yaml"
    path.write_text(base.replace("OUT", str(tmp_path / "runs")) + textwrap.dedent(block))
    return path


SPACE = """\
search:
  trials: 5
  objective: val/probe_accuracy
  sampler: tpe
  pruner: median
  space:
    model.latent: {int: [2, 8], log: true}
    train.learning_rate: {float: [1.0e-4, 1.0e-2], log: true}
    model.kind: [ae, vae]
    model.vae.beta: {float: [0.1, 10], log: true}
"""


def test_validate_counts_trials_without_tensorflow_or_optuna(tmp_path):
    path = write(tmp_path, SPACE)
    code = (
        "import sys; from typer.testing import CliRunner; from latentprobe.cli import app; "
        f"r = CliRunner().invoke(app, ['validate', {str(path)!r}]); print(r.output); "
        "print('tensorflow' in sys.modules, 'optuna' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert "ok (search: 5 trial(s), tpe sampler, pruner median" in out.stdout
    assert out.stdout.strip().endswith("False False")


def test_grid_sampler_counts_its_grid(tmp_path):
    path = write(
        tmp_path,
        """\
        search:
          trials: 100
          sampler: grid
          space:
            model.latent: {int: [2, 4]}
            model.kind: [ae, vae]
        """,
    )
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "search: 6 trial(s), grid sampler" in result.output


@pytest.mark.parametrize(
    ("block", "words"),
    [
        ("objective: test/probe_accuracy", "search.objective: test/probe_accuracy is a test metric"),
        ("objective: val/probe_accuracy\n  sampler: annealing", "search.sampler: expected one of tpe"),
        ("pruner: patient", "search.pruner: expected one of none, median, hyperband"),
        ("pruner: {median: {patience: 3}}", "search.pruner.median.patience: not a setting of the median"),
    ],
)
def test_bad_settings_name_the_key(tmp_path, block, words):
    path = write(tmp_path, f"search:\n  trials: 2\n  {block}\n  space:\n    model.latent: [2, 3]\n")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert words in result.output


def test_space_errors_name_the_key_and_line(tmp_path):
    path = write(tmp_path, "search:\n  trials: 2\n  space:\n    model.latnet: [2, 3]\n")
    with pytest.raises(ConfigError) as info:
        search.load(path)
    assert "search.space.model.latnet: not a config key; did you mean 'search.space.model.latent'?" in str(
        info.value
    )
    path = write(tmp_path, "search:\n  trials: 2\n  space:\n    model.vae.beta: {float: [0.1, 1]}\n")
    with pytest.raises(ConfigError, match="a setting of kind 'vae', but no trial has model.kind 'vae'"):
        search.load(path)
    path = write(tmp_path, "search:\n  trials: 2\n  space:\n    model.latent: {int: [0, 4]}\n")
    with pytest.raises(ConfigError) as info:
        search.load(path)
    assert "search.space.model.latent" in str(info.value) and "(at 0)" in str(info.value)
    path = write(
        tmp_path, "search:\n  trials: 2\n  space:\n    train.learning_rate: {float: [0, 1], log: true}\n"
    )
    with pytest.raises(ConfigError, match="a log scale needs low > 0"):
        search.load(path)


def test_a_search_without_optuna_is_one_error_line(tmp_path, monkeypatch):
    from latentprobe import study

    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna raises ImportError
    lines = []
    code = study.train_study(write(tmp_path, SPACE), out=lambda text, err=False: lines.append(text))
    assert code == 2
    assert lines == ["error: search: running a search needs Optuna: pip install 'latentprobe[search]'"]


PRUNED_SEARCH = """\
search:
  trials: TRIALS
  objective: val/reconstruction_loss
  direction: minimize
  sampler: grid
  pruner: {median: {n_startup_trials: 2, n_warmup_steps: 0}}
  space:
    train.learning_rate: [0.02, 0.01, 1.0e-6]
"""


def test_a_search_trains_prunes_ranks_and_grows(tmp_path):
    pytest.importorskip("optuna")
    path = write(tmp_path, PRUNED_SEARCH.replace("TRIALS", "2"))
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(path)])
    assert result.exit_code == 0, result.output
    study_dir = tmp_path / "runs" / "s"
    record = json.loads((study_dir / search.RECORD).read_text())
    assert [t["status"] for t in record["trials"]] == ["completed", "completed"]
    first = (study_dir / "trial-0000" / "summary.json").stat().st_mtime_ns

    # The same search with one more trial: the two are kept, the third (learning rate 1e-6, the grid's
    # last for seed 3) is pruned after its first epoch against the median of the two.
    result = runner.invoke(app, ["train", str(path), "--set", "search.trials=3"])
    assert result.exit_code == 0, result.output
    assert (study_dir / "trial-0000" / "summary.json").stat().st_mtime_ns == first
    summary = json.loads((study_dir / "trial-0002" / "summary.json").read_text())
    assert summary["config"]["train"]["learning_rate"] == 1e-6
    assert summary["status"] == "pruned" and summary["epoch"] == 1
    assert "pruned after epoch 1" in summary["reason"]
    record = json.loads((study_dir / search.RECORD).read_text())
    assert [t["status"] for t in record["trials"]] == ["completed", "completed", "pruned"]
    best = min(record["trials"][:2], key=lambda t: t["value"])
    assert record["best"] == best["dir"]

    shown = runner.invoke(app, ["compare", str(study_dir)])
    assert shown.exit_code == 0, shown.output
    rows = [line.split()[0] for line in shown.output.splitlines()[2:5]]
    assert rows[0] == best["dir"] and rows[2] == "trial-0002"
    assert f"best on val/reconstruction_loss (minimize): {best['dir']}" in shown.output
    assert "(shown, not used to choose)" in shown.output


@pytest.mark.slow
def test_a_killed_search_resumes(tmp_path):
    pytest.importorskip("optuna")
    import signal
    import time

    path = write(
        tmp_path,
        "search:\n  trials: 3\n  sampler: random\n  pruner: none\n  space:\n"
        "    train.learning_rate: {float: [1.0e-3, 1.0e-2], log: true}\n",
        BASE.replace("epochs: 2", "epochs: 8"),
    )
    study_dir = tmp_path / "runs" / "s"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "latentprobe.cli", "train", str(path)]
    driver = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = study_dir / "trial-0001" / "checkpoints" / "state.json"
    deadline = time.monotonic() + 300
    while not state.exists() and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.2)
    assert state.exists(), "trial-0001 never checkpointed"
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    time.sleep(8)  # the orphaned worker interrupts its run and exits
    first = (study_dir / "trial-0000" / "summary.json").stat().st_mtime_ns
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "search: 3 trials, 1 done before" in again.stderr
    record = json.loads((study_dir / search.RECORD).read_text())
    assert [t["status"] for t in record["trials"]] == ["completed"] * 3
    assert (study_dir / "trial-0000" / "summary.json").stat().st_mtime_ns == first
    resumed = json.loads((study_dir / "trial-0001" / "summary.json").read_text())
    assert resumed["resumed_at_epochs"] and resumed["resumed_at_epochs"][-1] >= 1
