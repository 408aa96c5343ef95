"""N long-lived worker processes on this machine, each training run after run.

Workers are started with ``spawn`` (a fresh interpreter: no TensorFlow state copied from the driver,
which never imports it anyway) and each imports TensorFlow once. The driver hands each idle worker the
next task over its own pipe, so it always knows which run a worker holds: a worker that dies takes only
that run with it (recorded failed) and a fresh worker takes its place.

Stopping: on Ctrl-C the workers are interrupted (the runs write ``status: interrupted`` and keep their
checkpoints); a worker whose driver disappears (SIGKILL) notices within a second, interrupts its run the
same way and exits, instead of training on as an orphan.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection, wait

from latentprobe.executors import (
    FAILED,
    INTERRUPTED,
    Event,
    RunResult,
    RunStarted,
    Task,
    default_threads,
    queue_of,
    visible_gpus,
    wants_gpu,
)

#: How often a worker checks that its driver is alive, and how long it then has to stop.
PARENT_POLL_SECONDS = 0.5
ORPHAN_GRACE_SECONDS = 5.0
#: After Ctrl-C: how long running runs get to write their summaries before being terminated.
STOP_GRACE_SECONDS = 20.0


class LocalExecutor:
    """``jobs`` worker processes with ``threads`` TensorFlow threads each (default: cores / jobs).

    Where there are GPUs (and the runs may use one), worker i sees only GPU i (modulo their number);
    otherwise workers see none.
    """

    def __init__(self, jobs: int = 1, threads: int | None = None):
        self.slots = max(1, jobs)
        self.threads = threads or default_threads(self.slots)
        self._workers: list[_Worker] = []
        self._context = multiprocessing.get_context("spawn")

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def run(self, tasks: Sequence[Task]) -> Iterator[Event]:
        """Train every task on the workers; yield RunStarted/RunResult events as they happen."""
        pending = queue_of(tasks)
        gpus = visible_gpus() if wants_gpu(tasks) else []
        self._start_workers(min(self.slots, len(tasks)), gpus)
        try:
            while pending or any(w.task for w in self._workers):
                for worker in list(self._workers):
                    if worker.task is None and pending:
                        if not worker.process.is_alive():  # e.g. a SIGINT sent to it alone while idle
                            worker = self._replace(worker, gpus)
                        worker.give(pending.popleft(), self.threads)
                yield from self._wait_events(pending, gpus)
        except KeyboardInterrupt:
            yield from self._interrupt()
            raise

    def warm_up(self, runs: int, may_use_gpu: bool) -> None:
        """Start the workers the runs will use; each imports TensorFlow at once, with its limits."""
        self._start_workers(min(self.slots, runs), visible_gpus() if may_use_gpu else [])

    def _start_workers(self, count: int, gpus: list[str]) -> None:
        while len(self._workers) < count:
            index = len(self._workers)
            gpu = gpus[index % len(gpus)] if gpus else ""
            self._workers.append(_Worker(self._context, index, gpu, self.threads))

    def _wait_events(self, pending: deque[Task], gpus: list[str]) -> Iterator[Event]:
        busy = [w for w in self._workers if w.task is not None]
        ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=1.0)
        for worker in busy:
            if worker.conn in ready:
                try:
                    message = worker.conn.recv()
                except (EOFError, OSError):
                    message = None
                if message is not None:
                    event = message
                    if isinstance(event, RunResult):
                        worker.task = None
                    yield event
                    continue
            if worker.task is not None and not worker.process.is_alive():
                task, code = worker.task, worker.process.exitcode
                worker.task = None
                self._replace(worker, gpus if pending else None)
                yield RunResult(task.name, FAILED, f"the worker process died (exit code {code})")

    def _replace(self, worker: _Worker, gpus: list[str] | None) -> _Worker:
        """A fresh worker in a dead one's place (none when no task is left for it)."""
        worker.close()
        index = self._workers.index(worker)
        if gpus is None:
            self._workers.remove(worker)
            return worker
        self._workers[index] = _Worker(self._context, worker.index, worker.gpu, self.threads)
        return self._workers[index]

    def _interrupt(self) -> Iterator[Event]:
        """Stop every running run so that it stays resumable; yield how each ended."""
        busy = [w for w in self._workers if w.task is not None]
        # From a terminal, Ctrl-C reached the workers too (one process group); a SIGINT sent to the
        # driver alone did not. Signalling them again is harmless: a worker's first SIGINT interrupts
        # its run, later ones are ignored.
        for worker in busy:
            worker.interrupt()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while busy and time.monotonic() < deadline:
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=0.5)
            for worker in list(busy):
                if worker.conn in ready:
                    try:
                        message = worker.conn.recv()
                    except (EOFError, OSError):
                        message = None
                    if isinstance(message, RunResult):
                        busy.remove(worker)
                        worker.task = None
                        yield message
                        continue
                if not worker.process.is_alive():
                    busy.remove(worker)
                    task, worker.task = worker.task, None
                    yield RunResult(task.name, INTERRUPTED, "interrupted")
        for worker in busy:  # did not stop in time: their runs resume from the last checkpoint
            task, worker.task = worker.task, None
            yield RunResult(task.name, INTERRUPTED, "interrupted (the worker did not stop in time)")

    def shutdown(self) -> None:
        """Stop every worker: ask, then terminate, then kill."""
        for worker in self._workers:
            worker.stop()
        deadline = time.monotonic() + 10.0
        for worker in self._workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
        for worker in self._workers:
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(5.0)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.close()
        self._workers = []


class _Worker:
    """The driver's handle on one worker process: its pipe, its GPU and the task it holds."""

    def __init__(self, context: multiprocessing.context.SpawnContext, index: int, gpu: str, threads: int):
        self.index = index
        self.gpu = gpu
        self.task: Task | None = None
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=worker_main,
            args=(child, os.getpid(), threads, gpu),
            name=f"latentprobe-worker-{index}",
            daemon=True,
        )
        self.process.start()
        child.close()  # the driver's copy: the worker sees EOF when the driver goes

    def give(self, task: Task, threads: int) -> None:
        self.task = dataclasses.replace(task, threads=threads, gpu=self.gpu)
        self.conn.send(self.task)

    def interrupt(self) -> None:
        if self.process.is_alive() and self.process.pid is not None:
            try:
                os.kill(self.process.pid, signal.SIGINT)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        self.conn.close()


# --------------------------------------------------------------------------------------------------
# In the worker process


def worker_main(conn: Connection, driver_pid: int, threads: int, gpu: str) -> None:
    """A worker's life: start TensorFlow with its limits, then take a task, train it, send the result;
    until told to stop or orphaned."""
    threading.Thread(target=_watch_driver, args=(driver_pid,), daemon=True).start()
    try:
        from latentprobe.executors.worker import execute
        from latentprobe.runtime import configure

        configure(threads, gpu)  # before the first task arrives: the import overlaps the driver's checks
        while True:
            try:
                task = conn.recv()
            except (EOFError, OSError):
                return  # the driver has gone
            if task is None:
                return
            signal.signal(signal.SIGINT, _interrupt_once)
            conn.send(RunStarted(task.name, f"worker {os.getpid()}"))
            result = execute(task)
            conn.send(result)
    except (KeyboardInterrupt, BrokenPipeError, EOFError, OSError):
        return  # interrupted while idle, or the driver went while we reported


def _interrupt_once(signum: int, frame: object) -> None:
    # The first SIGINT interrupts the run (it writes status interrupted); later ones (the terminal's and
    # the driver's) must not interrupt that write.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _watch_driver(driver_pid: int) -> None:
    """Interrupt this worker when its driver is gone (reparented), and end it if that is not enough."""
    while os.getppid() == driver_pid:
        time.sleep(PARENT_POLL_SECONDS)
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(ORPHAN_GRACE_SECONDS)
    os._exit(1)
