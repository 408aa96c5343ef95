"""TensorFlow's start-up in a process: a quiet import, and thread and GPU limits set before it.

Every process that trains or evaluates (the CLI's own, an executor's worker, an eval worker) starts
TensorFlow through here, so the native libraries' start-up chatter is hidden the same way everywhere
(``LATENTPROBE_DEBUG=1`` shows it) and the limits apply before TensorFlow reads them.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any


def configure(threads: int, gpu: str | None) -> None:
    """Limit TensorFlow to ``threads`` threads and to GPU ``gpu`` (``""``: none; None: leave as is).

    Effective in a process that has not imported TensorFlow yet. In one that has (a reused Ray
    worker), the thread counts are set if TensorFlow has not started, and left otherwise.
    """
    if "tensorflow" not in sys.modules:
        for name in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
            os.environ[name] = str(threads)
        if gpu is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = gpu
        # Workers may share a GPU: each takes memory as it needs it, not the whole card up front.
        os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    tf = import_tensorflow()
    threading = tf.config.threading
    if (threading.get_intra_op_parallelism_threads(), threading.get_inter_op_parallelism_threads()) != (
        threads,
        threads,
    ):
        with contextlib.suppress(RuntimeError):  # TensorFlow has started: its thread pools are fixed
            threading.set_intra_op_parallelism_threads(threads)
            threading.set_inter_op_parallelism_threads(threads)


def import_tensorflow() -> Any:
    """Import TensorFlow without the native libraries' start-up chatter on the terminal."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    # The C++ log level is read at import (and by XLA later); a level the user set wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with quiet_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    # Retracing notices are about our own compiled functions, expected once per model in a study.
    tf.get_logger().setLevel("ERROR")
    return tf


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Hide what native code writes to stderr meanwhile (TensorFlow's start-up chatter)."""
    # The chatter is written to file descriptor 2 by C++ code, so only redirecting the descriptor hides it.
    if os.environ.get("LATENTPROBE_DEBUG"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def describe_node() -> dict[str, Any]:
    """Where this process runs: the host, and in a Ray task the Ray node's id and IP address."""
    import socket

    node: dict[str, Any] = {"host": socket.gethostname()}
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        with contextlib.suppress(Exception):  # a driver-side or older Ray: the host is enough
            node["ray_node_id"] = ray.get_runtime_context().get_node_id()
            node["ip"] = ray.util.get_node_ip_address()
    return node
