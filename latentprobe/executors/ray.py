"""Runs as Ray tasks, on an existing cluster (``--address``) or a local one started here.

Each run is one task of :func:`latentprobe.executors.worker.execute` with ``num_cpus=threads`` and
``num_gpus`` 1 or 0. Ray limits neither TensorFlow's threads nor (in recent releases) the GPUs a CPU task
sees, so ``execute`` sets both itself. A GPU task gets a fresh worker process (``max_calls=1``: a
process's TensorFlow keeps the GPU it started with); CPU tasks reuse Ray's workers, so TensorFlow is
imported once per worker.

A cluster needs latentprobe installed on every node, and ``output.dir`` and the data on a filesystem
every node sees: the runs write their directories themselves, and nothing comes back through Ray but a
short :class:`RunResult`. Ray is imported only here, when ``--executor ray`` asks for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

from latentprobe.errors import UserError
from latentprobe.executors import (
    FAILED,
    INTERRUPTED,
    Event,
    RunResult,
    RunStarted,
    Task,
    cpu_count,
    queue_of,
    wants_gpu,
)
from latentprobe.executors.worker import execute

MISSING = "the ray executor needs Ray: pip install 'latentprobe[ray]'"
LOOPBACK = "127.0.0.1"


@contextlib.contextmanager
def _on_loopback(ray: Any, address: str | None) -> Iterator[None]:
    """While connecting: keep a local Ray (or a cluster whose address is 127.0.0.1/localhost) on the
    loopback address.

    On Linux, Ray turns a loopback host (``_node_ip_address="127.0.0.1"``, ``--address 127.0.0.1:6379``)
    into the machine's network address before it binds or connects: a local study would listen on the
    network, and a cluster started with ``ray start --node-ip-address 127.0.0.1`` could not be reached.
    Ray keeps loopback hosts as they are where it does not support clusters (its
    ``ENABLE_RAY_CLUSTER`` switch, read when the address is resolved): that is what a local study is.
    An address on the network is left alone.
    """
    host = None if address is None else address.rsplit(":", 1)[0].strip("[]")
    if host not in (None, LOOPBACK, "localhost", "::1"):
        yield
        return
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    if constants is None or not hasattr(constants, "ENABLE_RAY_CLUSTER"):
        yield  # another Ray: it binds where it binds
        return
    before = constants.ENABLE_RAY_CLUSTER
    constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = before


class RayExecutor:
    """Train runs as Ray tasks; at most ``jobs`` at once (default: the cluster's CPUs / ``threads``).

    ``threads`` defaults to the cluster's CPUs / ``jobs`` when ``jobs`` is given, else 1.
    """

    def __init__(self, jobs: int | None = None, threads: int | None = None, address: str | None = None):
        try:
            import ray
        except ImportError:
            raise UserError(MISSING) from None
        self._ray = ray
        self._started_here = False
        if not ray.is_initialized():
            try:
                with _on_loopback(ray, address):
                    if address is None:
                        # A local study needs no network: its node binds to the loopback address only.
                        # "local": a new Ray of its own, even where this machine runs a cluster.
                        ray.init(
                            address="local",
                            num_cpus=cpu_count(),
                            include_dashboard=False,
                            log_to_driver=False,
                            _node_ip_address=LOOPBACK,
                        )
                    else:
                        ray.init(address=address, log_to_driver=False)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                where = f"--address {address}" if address else "--executor ray"
                raise UserError(f"{where}: cannot start or reach a Ray cluster: {exc}") from None
            self._started_here = True
        resources = ray.cluster_resources()
        cpus = max(1, int(resources.get("CPU", 1)))
        self._gpus = int(resources.get("GPU", 0))
        self.threads = threads or (max(1, cpus // jobs) if jobs else 1)
        self.slots = jobs or max(1, cpus // self.threads)

    def warm_up(self, runs: int, may_use_gpu: bool) -> None:
        """Nothing to start ahead: Ray starts its worker processes for the tasks."""

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        """Disconnect (and stop the local cluster this executor started)."""
        if self._started_here:
            self._ray.shutdown()
            self._started_here = False

    def run(self, tasks: Sequence[Task]) -> Iterator[Event]:
        """Submit the tasks, ``slots`` at a time; yield RunStarted at submission, RunResult at the end."""
        ray = self._ray
        gpu = bool(self._gpus) and wants_gpu(tasks)
        remote = ray.remote(
            num_cpus=self.threads,
            num_gpus=1 if gpu else 0,
            max_calls=1 if gpu else 0,  # 0: no limit
            max_retries=0,  # a failed run is recorded, not silently retrained
        )(execute)
        pending = queue_of(tasks)
        running: dict[Any, Task] = {}
        try:
            while pending or running:
                while pending and len(running) < self.slots:
                    # A GPU task sees the GPU Ray gives it (None: leave CUDA_VISIBLE_DEVICES to Ray);
                    # a CPU task sees none.
                    task = pending.popleft()
                    task = dataclasses.replace(task, threads=self.threads, gpu=None if gpu else "")
                    running[remote.remote(task)] = task
                    yield RunStarted(task.name, "ray")
                done, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
                for ref in done:
                    yield self._result(ref, running.pop(ref))
        except KeyboardInterrupt:
            yield from self._interrupt(running)
            raise

    def _result(self, ref: Any, task: Task) -> RunResult:
        try:
            return self._ray.get(ref)
        except self._ray.exceptions.TaskCancelledError:
            return RunResult(task.name, INTERRUPTED, "interrupted")
        except self._ray.exceptions.RayError as exc:  # the worker died, the node went away, ...
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return RunResult(task.name, FAILED, f"{type(exc).__name__}: {reason}")

    def _interrupt(self, running: dict[Any, Task]) -> Iterator[Event]:
        # A cancelled running task gets a KeyboardInterrupt: the run writes status interrupted.
        for ref in running:
            self._ray.cancel(ref)
        for ref, task in running.items():
            try:
                result = self._ray.get(ref, timeout=30)
            except Exception:  # noqa: BLE001 - cancelled, timed out or lost: resumable all the same
                result = RunResult(task.name, INTERRUPTED, "interrupted")
            yield result
