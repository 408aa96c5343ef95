"""``eval`` of many runs (a study, an output directory): one eval per run, in this process or in worker
processes.

Workers are started with 'spawn' (a forked TensorFlow is unsafe) and each limits TensorFlow and the BLAS
libraries to ``cores // jobs`` threads, so that ``jobs`` workers share the machine rather than
oversubscribe it. A run that fails to evaluate is reported with its reason; the others go on.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from latentprobe.evaluation.options import EvalOptions

#: Read by TensorFlow and the BLAS/OpenMP libraries when they start: set before a worker imports them.
THREAD_VARIABLES = (
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
)


@dataclass(frozen=True)
class EvalResult:
    """How one run's eval ended.

    Attributes:
        run_dir: the run.
        error: why it failed; None if eval.json was written.
        seconds: wall time of its eval.
        main: the main probe's name (``linear@all``) and test accuracy; None on failure.
        probe_accuracy: the re-measured ``test/probe_accuracy``; None on failure.
    """

    run_dir: Path
    error: str | None
    seconds: float
    main: tuple[str, float] | None = None
    probe_accuracy: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def threads_per_worker(jobs: int) -> int:
    """The cores this process may use, shared among ``jobs`` workers (at least one thread each)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // jobs)


def evaluate_runs(
    run_dirs: Sequence[Path],
    options: EvalOptions,
    jobs: int = 1,
    on_result: Callable[[EvalResult], None] | None = None,
) -> list[EvalResult]:
    """Evaluate each run (writing its eval.json); ``jobs`` > 1 runs them in that many worker processes.

    Args:
        on_result: called with each result as it comes (in completion order).

    Returns:
        The results in the order of ``run_dirs``.
    """
    report = on_result or (lambda result: None)
    if jobs <= 1 or len(run_dirs) <= 1:
        results = []
        for run_dir in run_dirs:
            results.append(evaluate_one(run_dir, options))
            report(results[-1])
        return results
    return _evaluate_in_workers(run_dirs, options, min(jobs, len(run_dirs)), report)


def _evaluate_in_workers(
    run_dirs: Sequence[Path], options: EvalOptions, jobs: int, report: Callable[[EvalResult], None]
) -> list[EvalResult]:
    threads = threads_per_worker(jobs)
    by_run: dict[Path, EvalResult] = {}
    context = multiprocessing.get_context("spawn")
    # A spawned worker inherits the environment as it is when the worker starts, and the workers start
    # as the runs are submitted: the thread limits hold for their imports of TensorFlow and NumPy.
    with (
        _environment({name: str(threads) for name in THREAD_VARIABLES}),
        ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker, initargs=(threads,)) as pool,
    ):
        futures = {pool.submit(evaluate_one, run_dir, options): run_dir for run_dir in run_dirs}
        try:
            for future in as_completed(futures):
                run_dir = futures[future]
                try:
                    result = future.result()
                except BrokenProcessPool:
                    result = EvalResult(run_dir, "its worker process died (out of memory?)", 0.0)
                by_run[run_dir] = result
                report(result)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return [by_run[run_dir] for run_dir in run_dirs]


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _start_worker(threads: int) -> None:
    """Import TensorFlow once per worker, quietly, with ``threads`` intra- and inter-op threads."""
    from latentprobe.runtime import configure

    configure(threads, gpu=None)


def evaluate_one(run_dir: Path, options: EvalOptions) -> EvalResult:
    """Evaluate one run; any failure becomes the result's ``error`` (never raises but for Ctrl-C)."""
    from latentprobe.errors import UserError
    from latentprobe.evaluation.run import evaluate

    started = time.perf_counter()
    try:
        report = evaluate(run_dir, options)
    except UserError as exc:
        return EvalResult(Path(run_dir), str(exc), time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001 - one run's failure is reported; the others go on
        return EvalResult(Path(run_dir), f"{type(exc).__name__}: {exc}", time.perf_counter() - started)
    main = report["main_probe"]
    name = f"{main['probe']}@{main['budget']}"
    accuracy = next(
        r["accuracy"]
        for r in report["probes"]
        if (r["features"], r["probe"], r["budget"]) == (main["features"], main["probe"], main["budget"])
    )
    return EvalResult(
        Path(run_dir),
        None,
        time.perf_counter() - started,
        (name, accuracy),
        report["metrics"]["test"].get("probe_accuracy"),
    )
