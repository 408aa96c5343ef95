"""Where a study's runs train: one small interface, a local and a Ray implementation.

An executor takes :class:`Task` s (a run's name, its config as plain data, its directory, whether to
resume, the TensorFlow threads and GPU it gets) and yields :class:`RunStarted` and :class:`RunResult`
events as runs start and finish, in any order. Everything a run needs travels in the task; results come
back through the run directory (the ``RunResult`` only summarises it). An executor knows nothing of
models; both call :func:`latentprobe.executors.worker.execute` to train a run.

Imports no TensorFlow: the driver never does, only the workers.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from latentprobe.errors import UserError

EXECUTORS = ("local", "ray")

COMPLETED = "completed"
FAILED = "failed"
INTERRUPTED = "interrupted"


@dataclasses.dataclass(frozen=True)
class Task:
    """One run to train.

    Attributes:
        name: the run's name in the study (its directory's name).
        config: the run's config as plain data (``config.to_dict``): picklable and executor-agnostic.
        run_dir: where the run is (or will be) written.
        resume: continue from the run directory's last checkpoint.
        threads: TensorFlow intra- and inter-op threads for the run.
        gpu: the ``CUDA_VISIBLE_DEVICES`` value the run sees: a GPU index, ``""`` for none, or None to
            leave the environment as it is (a Ray GPU task, whose GPU Ray picks).
        search: a search's trial (``latentprobe.search.TrialFeed``): where the worker reports the
            objective each epoch for pruning; None for a study's run.
    """

    name: str
    config: dict[str, Any]
    run_dir: str
    resume: bool = False
    threads: int = 1
    gpu: str | None = ""
    search: dict[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class RunStarted:
    """A worker took the run."""

    name: str
    worker: str = ""


@dataclasses.dataclass(frozen=True)
class RunResult:
    """How a run ended: ``completed``, ``failed`` or ``interrupted``, and why."""

    name: str
    status: str
    reason: str | None = None
    user_error: bool = False  # bad input (data, device) rather than a run that went wrong
    seconds: float = 0.0  # wall time of the task, start-up of the run included
    train_seconds: float | None = None
    test: dict[str, float] | None = None  # the run's test metrics (summary.json), when completed


Event = RunStarted | RunResult


class Executor(Protocol):
    """Trains tasks somewhere; a context manager that stops whatever it started on exit."""

    #: How many runs train at once.
    slots: int
    #: TensorFlow threads per run.
    threads: int

    def run(self, tasks: Sequence[Task]) -> Iterator[Event]:
        """Train every task; yield a :class:`RunStarted` and then a :class:`RunResult` for each.

        On KeyboardInterrupt the running tasks are interrupted (their runs stay resumable), their
        results are yielded, and the KeyboardInterrupt is re-raised.
        """
        ...

    def warm_up(self, runs: int, may_use_gpu: bool) -> None:
        """Start what ``runs`` runs will need (worker processes importing TensorFlow) without waiting,
        so that it overlaps the driver's own checks; nothing is written."""
        ...

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...


def create(name: str, jobs: int | None, threads: int | None, address: str | None = None) -> Executor:
    """The executor ``--executor NAME`` asks for.

    Raises:
        UserError: an unknown executor, ``--address`` without Ray, or Ray missing.
    """
    if name not in EXECUTORS:
        raise UserError(f"--executor: unknown executor {name!r} (expected one of: {', '.join(EXECUTORS)})")
    if jobs is not None and jobs < 1:
        raise UserError(f"--jobs: expected a number of workers >= 1, got {jobs}")
    if threads is not None and threads < 1:
        raise UserError(f"--threads: expected a number of threads >= 1, got {threads}")
    if name == "local":
        if address is not None:
            raise UserError("--address: only applies to --executor ray")
        from latentprobe.executors.local import LocalExecutor

        return LocalExecutor(jobs or 1, threads)
    from latentprobe.executors.ray import RayExecutor

    return RayExecutor(jobs, threads, address)


def queue_of(tasks: Sequence[Task]) -> Any:
    """The tasks as a queue the executor pops from: a search's feed (which makes each trial's task only
    when a worker is free) as it is, a list as a deque."""
    return tasks if hasattr(tasks, "popleft") else deque(tasks)


def cpu_count() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads(jobs: int) -> int:
    """TensorFlow threads per worker when ``--threads`` is not given: the cores shared out, at least 1."""
    return max(1, cpu_count() // max(1, jobs))


def visible_gpus() -> list[str]:
    """The GPUs this machine lets the process use, as ``CUDA_VISIBLE_DEVICES`` entries.

    Found without importing TensorFlow (which would fix the driver's GPU set and cost seconds): an
    existing ``CUDA_VISIBLE_DEVICES`` decides; otherwise the NVIDIA driver's list.
    """
    declared = os.environ.get("CUDA_VISIBLE_DEVICES")
    if declared is not None:
        return [d.strip() for d in declared.split(",") if d.strip() and d.strip() != "-1"]
    proc = Path("/proc/driver/nvidia/gpus")
    if proc.is_dir():
        return [str(i) for i in range(len(list(proc.iterdir())))]
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(re.findall(r"^GPU \d+", listing.stdout, flags=re.M))]


def wants_gpu(tasks: Sequence[Task]) -> bool:
    """Whether any run may use a GPU (``train.device`` auto or gpu); CPU-only runs should see none."""
    return any(t.config.get("train", {}).get("device", "auto") != "cpu" for t in tasks)
