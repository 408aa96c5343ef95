"""Train one task in the current process: what every executor's worker calls.

:func:`execute` configures TensorFlow's threads and visible GPU *before* importing TensorFlow (the
environment variables only count then; ``tf.config.threading`` only before the first op), trains the
run with ``train.run_one`` and maps how it ended to a :class:`RunResult`. A process calls it for run
after run: TensorFlow is imported once, and the data of recent runs is kept.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from latentprobe.executors import COMPLETED, FAILED, INTERRUPTED, RunResult, Task
from latentprobe.runtime import configure

#: Splits kept per worker, keyed by (data settings, seed): runs of one seed share them.
_SPLITS: OrderedDict[str, Any] = OrderedDict()
#: The data a worker keeps between runs, in bytes: a study's runs cycle through its seeds (every run of
#: seed 0, 1, 2, then the next latent size), so keeping a few splits saves reading them again; the most
#: recent split is always kept. About 0.5 MB per digits split, 220 MB per MNIST split.
_SPLITS_BYTES_KEPT = 1 << 30


def execute(task: Task) -> RunResult:
    """Train ``task``'s run into its directory and say how it ended (never raises for a failed run).

    A NaN loss or any error is a ``failed`` result with the reason, KeyboardInterrupt an
    ``interrupted`` one (the run's summary.json says the same, and its checkpoint stays for resuming).
    """
    started = time.perf_counter()
    configure(task.threads, task.gpu)
    from latentprobe import config, rundir, train
    from latentprobe.errors import UserError

    run_dir = Path(task.run_dir)
    try:
        cfg = config.from_dict(task.config)
        run_dir.mkdir(parents=True, exist_ok=True)
        # A run killed before it wrote config.yaml has nothing to resume from: start it afresh.
        resume = task.resume and (run_dir / rundir.CONFIG).is_file()
        progress = None
        if task.search is not None:  # a search's trial: the objective goes to Optuna's pruner each epoch
            from latentprobe.search import epoch_reporter

            progress = epoch_reporter(task.search, run_dir)
        summary = train.run_one(cfg, run_dir, _splits(cfg), progress, resume=resume)
    except KeyboardInterrupt:
        return RunResult(task.name, INTERRUPTED, _reason(run_dir, "interrupted"), False, _since(started))
    except UserError as exc:
        return RunResult(task.name, FAILED, str(exc), True, _since(started))
    except Exception as exc:  # noqa: BLE001 - any failure of one run is recorded; the study goes on
        if getattr(exc, "run_status", None) is not None:  # a run stopped on purpose: a pruned trial
            return RunResult(task.name, exc.run_status, str(exc), False, _since(started))
        reason = _reason(run_dir, f"{type(exc).__name__}: {exc}")
        return RunResult(task.name, FAILED, reason, False, _since(started))
    return RunResult(
        task.name,
        COMPLETED,
        None,
        False,
        _since(started),
        summary["timing"]["train_seconds"],
        summary["metrics"]["test"],
    )


def _splits(cfg: Any) -> Any:
    from latentprobe import config, data

    key = repr((config.to_dict(cfg)["data"], cfg.seed))
    if key not in _SPLITS:
        _SPLITS[key] = data.load(cfg.data, cfg.seed)
    _SPLITS.move_to_end(key)
    while len(_SPLITS) > 1 and sum(map(_nbytes, _SPLITS.values())) > _SPLITS_BYTES_KEPT:
        _SPLITS.popitem(last=False)
    return _SPLITS[key]


def _nbytes(splits: Any) -> int:
    return sum(part.x.nbytes + part.y.nbytes for part in (splits.train, splits.val, splits.test))


def _reason(run_dir: Path, fallback: str) -> str:
    """The reason the run's own summary.json gives (e.g. the NaN's epoch), else ``fallback``."""
    from latentprobe import rundir
    from latentprobe.errors import RunDirError

    try:
        return rundir.read_json(run_dir / rundir.SUMMARY).get("reason") or fallback
    except RunDirError:
        return fallback


def _since(started: float) -> float:
    return time.perf_counter() - started
