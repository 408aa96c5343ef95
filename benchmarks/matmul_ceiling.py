"""The float32 matmul rate XLA reaches here at the shapes that dominate the benchmark's training step.

Prints one JSON object. The 784-wide layers of the 784-128-64-32-16 autoencoder make up most of a step's
arithmetic: a (256, 784) x (784, 128) forward product and its (784, 256) x (256, 128) weight gradient.
This times a compiled loop of just those two (loop-carried, so XLA cannot hoist them out of the loop) and
reports GFLOP per wall second and per CPU-second: an upper bound for the rate a whole training step,
with its smaller layers, elementwise work and optimizer updates, can reach on the machine.

Usage::

    python benchmarks/matmul_ceiling.py [--repeats 5] [--steps 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    x = tf.random.uniform((256, 784), seed=0)
    w = tf.random.uniform((784, 128), seed=1)
    g = tf.random.uniform((256, 128), seed=2)

    @tf.function(jit_compile=True)
    def loop(x, w, g):
        for _ in tf.range(args.steps):
            h = tf.matmul(x, w)  # (256, 128) forward
            w = w - 1e-9 * tf.matmul(x, g + h, transpose_a=True)  # (784, 128) weight gradient
        return w

    loop(x, w, g).numpy()  # compile
    flop = args.steps * 2 * (2 * 256 * 784 * 128)
    wall, cpu = [], []
    for _ in range(args.repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        loop(x, w, g).numpy()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    print(
        json.dumps(
            {
                "benchmark": "XLA float32 matmul rate, 256x784x128 forward + weight gradient",
                "gflop_per_wall_second": flop / statistics.median(wall) / 1e9,
                "gflop_per_cpu_second": flop / statistics.median(cpu) / 1e9,
                "loadavg": [round(v, 2) for v in os.getloadavg()],
                "tensorflow": tf.__version__,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
