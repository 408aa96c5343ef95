"""Training throughput: seed-style Keras loops against latentprobe's compiled strategies.

Prints one JSON object. In one process, on the same data and the same model (a 784-128-64-32-16 dense
autoencoder with a linear softmax probe on its 16-d code, batch 256 for both, Adam), it measures train
samples/s of

  a) "Autoencoders as Classifiers" style: plain ``keras.Model.fit`` of the autoencoder alone;
  b) the alternating-training blog post's style: per-batch alternation of ``train_on_batch`` on the
     autoencoder and on a probe model (the encoder, held still by a ``stop_gradient``, under a softmax
     layer) on the same batch, both compiled the ordinary Keras way;
  c) latentprobe's ``alternating`` strategy, ``every: step`` (every example labeled, so the probe reads
     the codes of the autoencoder's pass over its batch);
  d) latentprobe's ``frozen`` strategy: its autoencoder phase and its probe phase.

and, on a second pair of models (the semi-supervised adversarial autoencoder's reference network,
784-1000-1000 with a 10-d style code and 10 classes, discriminators 1000-1000, batch 100, 1000 labels),
the arithmetic rate in GFLOP/s (FLOPs counted by ``benchmarks/flops.py``) of

  e) the plain autoencoder of that network (latentprobe's alternating step, every example labeled);
  f) the semi-supervised adversarial autoencoder (its four-phase step, then the probe's).

``ratios.aae_gflops_over_ae`` is f's rate over e's.

and, on the convolutional network (``model.network: conv``, filters 32 and 64, latent 16, batch 128,
Adam, op determinism on as in a run), images per second on 32x32x3 images (synthetic) and on MNIST's
28x28x1 images of

  g) plain ``keras.Model.fit`` of the same encoder and decoder layers, ``jit_compile=True`` (which Keras
     turns off under op determinism: ``setup.conv_*.g_keras_jit_compile`` says what ran);
  h) latentprobe's ``frozen`` strategy's autoencoder phase (the autoencoder alone, as g);
  i) latentprobe's ``alternating`` strategy, ``every: step`` (the autoencoder and the probe).

h and i use ``train.jit_compile`` as ``--conv-jit-compile`` says (default ``auto``, the config's default).

A *sample* is one example through one update, as latentprobe's ``timing.train_samples_per_second``
counts it: an alternating step of batch 256 is 512 samples (256 autoencoder + 256 probe). (a) trains no
probe, so ``c_over_a`` compares unequal work in (a)'s favour; ``c_over_a_autoencoder_only`` counts
autoencoder examples alone.

The four are measured interleaved, one epoch each per round, so they see the same machine load; the
first ``--warmup`` rounds (tracing, XLA compilation) are excluded and each figure is the median of the
timed epochs. Data: MNIST's 60,000 training images from ``$LATENTPROBE_DATA_DIR/mnist.npz`` or
``../shared/data/mnist.npz``, else synthetic 60000x784 (``--synthetic`` forces it).

Usage::

    python benchmarks/throughput.py                  # 2 warm-up + 5 timed rounds
    python benchmarks/throughput.py --quick          # a few seconds: 4096 examples, 1 + 2 rounds
    python benchmarks/throughput.py --epochs 9 --threads 2
    python benchmarks/throughput.py --parts aae      # e and f only
    python benchmarks/throughput.py --parts conv     # g-i only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

HIDDEN = (128, 64, 32)
LATENT = 16
BATCH = 256
CLASSES = 10


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs (rounds) per method")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (tracing, XLA)")
    parser.add_argument("--examples", type=int, default=60000, help="training examples used")
    parser.add_argument("--quick", action="store_true", help="4096 examples, 1 warm-up + 2 timed rounds")
    parser.add_argument("--synthetic", action="store_true", help="synthetic data even if MNIST is present")
    parser.add_argument("--threads", type=int, default=0, help="TensorFlow intra/inter-op threads (0: TF's)")
    parser.add_argument("--jit-compile", choices=("true", "false"), default="true", help="latentprobe's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parts", default="seed,aae,conv", help="any of seed (a-d), aae (e-f), conv (g-i)")
    parser.add_argument("--aae-hidden", default="1000,1000", help="e/f: hidden widths (and discriminators')")
    parser.add_argument("--aae-examples", type=int, default=10000, help="e/f: training examples used")
    parser.add_argument("--conv-examples", type=int, default=2048, help="g-i: images of each data set")
    parser.add_argument(
        "--conv-jit-compile", choices=("auto", "true", "false"), default="auto", help="h/i: latentprobe's"
    )
    args = parser.parse_args(argv)
    args.parts = tuple(p.strip() for p in args.parts.split(","))
    if not set(args.parts) <= {"seed", "aae", "conv"} or not args.parts:
        parser.error(f"--parts: expected some of seed, aae, conv, got {','.join(args.parts)!r}")
    args.aae_hidden = tuple(int(w) for w in args.aae_hidden.split(","))
    if args.quick:
        args.examples, args.warmup, args.epochs = min(args.examples, 4096), 1, 2
        args.aae_examples = min(args.aae_examples, 2000)
        args.conv_examples = min(args.conv_examples, 512)
    if args.epochs < 1 or args.warmup < 0 or args.examples < BATCH:
        parser.error(f"need --epochs >= 1, --warmup >= 0, --examples >= {BATCH}")
    return args


# --------------------------------------------------------------------------------------------------
# Data


def find_mnist() -> Path | None:
    candidates = []
    if os.environ.get("LATENTPROBE_DATA_DIR"):
        candidates.append(Path(os.environ["LATENTPROBE_DATA_DIR"]) / "mnist.npz")
    candidates.append(REPO.parent / "shared" / "data" / "mnist.npz")
    return next((p for p in candidates if p.exists()), None)


def load_data(examples: int, synthetic: bool, seed: int) -> tuple[Any, Any, str]:
    """(x (n, 784) float32 in [0, 1], y (n,) int64, a description)."""
    import numpy as np

    path = None if synthetic else find_mnist()
    if path is not None:
        with np.load(path) as f:
            x, y = f["x_train"][:examples], f["y_train"][:examples]
        x = x.reshape(len(x), -1).astype(np.float32) / 255.0
        return x, y.astype(np.int64), f"mnist ({path})"
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, size=examples)
    # Class-dependent blobs in [0, 1], so the probe has something to learn; speed does not depend on it.
    centres = rng.random((CLASSES, 784), dtype=np.float32)
    x = np.clip(centres[y] + 0.2 * rng.standard_normal((examples, 784), dtype=np.float32), 0, 1)
    return x.astype(np.float32), y.astype(np.int64), "synthetic"


# --------------------------------------------------------------------------------------------------
# The seed-style baselines, written as a user would with plain Keras


def build_keras_autoencoder(keras: Any) -> tuple[Any, Any]:
    """The functional autoencoder of "Autoencoders as Classifiers"; returns (autoencoder, encoder)."""
    layers = keras.layers
    inputs = keras.Input(shape=(784,))
    h = inputs
    for width in HIDDEN:
        h = layers.Dense(width, activation="relu")(h)
    z = layers.Dense(LATENT)(h)
    h = z
    for width in reversed(HIDDEN):
        h = layers.Dense(width, activation="relu")(h)
    outputs = layers.Dense(784, activation="sigmoid")(h)
    autoencoder = keras.Model(inputs, outputs)
    autoencoder.compile(optimizer="adam", loss="binary_crossentropy")
    return autoencoder, keras.Model(inputs, z)


class SeedFitAutoencoder:
    """(a) "Autoencoders as Classifiers": ``autoencoder.fit(x, x, batch_size=256, shuffle=True)``, one epoch
    per call."""

    name = "a_keras_fit_autoencoder"

    def __init__(self, keras: Any, x: Any):
        self.keras = keras
        self.autoencoder, _ = build_keras_autoencoder(keras)
        self.x = x
        self.epoch_seconds: list[float] = []

    def epoch(self) -> tuple[float, float, int, int]:
        timer = _EpochTimer(self.keras)
        self.autoencoder.fit(
            self.x, self.x, batch_size=BATCH, epochs=1, shuffle=True, verbose=0, callbacks=[timer]
        )
        # fit keeps the last partial batch; count what it trained on.
        return timer.seconds, timer.cpu_seconds, len(self.x), len(self.x)


def _EpochTimer(keras: Any) -> Any:  # noqa: N802 - a class factory (keras is imported late)
    class EpochTimer(keras.callbacks.Callback):
        """Time from the epoch's first batch call to its end: fit's own set-up is not charged to it."""

        seconds = cpu_seconds = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.start, self.cpu_start = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds = time.perf_counter() - self.start
            self.cpu_seconds = time.process_time() - self.cpu_start

    return EpochTimer()


class SeedAlternatingTrainOnBatch:
    """(b) the alternating-training blog post: for each batch, ``autoencoder.train_on_batch`` then
    ``probe.train_on_batch`` on it.

    The probe model is the encoder under a softmax layer, compiled with sparse categorical cross-entropy
    and accuracy. The encoder is held still for the probe by a ``stop_gradient`` on the code, not by
    ``encoder.trainable = False``: in Keras 3 that flag is read when a train function is traced, and the
    encoder's layers are the autoencoder's, so it would freeze them in the autoencoder too (the
    autoencoder would train its decoder alone: less work than (c) does, and a different model).
    """

    name = "b_keras_train_on_batch_alternating"

    def __init__(self, keras: Any, x: Any, y: Any, seed: int):
        import numpy as np

        self.autoencoder, encoder = build_keras_autoencoder(keras)
        frozen_code = keras.layers.Lambda(keras.ops.stop_gradient, name="frozen_code")(encoder.output)
        probabilities = keras.layers.Dense(CLASSES, activation="softmax")(frozen_code)
        self.probe = keras.Model(encoder.input, probabilities)
        # The probe's optimizer sees no gradient for the encoder's weights (by design, above).
        warnings.filterwarnings("ignore", message="Gradients do not exist for variables")
        self.probe.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        self.x, self.y = x, y
        self.rng = np.random.default_rng(seed)

    def epoch(self) -> tuple[float, float, int, int]:
        start, cpu_start = time.perf_counter(), time.process_time()
        order = self.rng.permutation(len(self.x))
        steps = len(self.x) // BATCH
        for i in range(steps):
            batch = order[i * BATCH : (i + 1) * BATCH]
            xb = self.x[batch]
            self.autoencoder.train_on_batch(xb, xb)
            self.probe.train_on_batch(xb, self.y[batch])  # the same batch, as (c) does
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        return seconds, cpu_seconds, 2 * steps * BATCH, steps * BATCH


# --------------------------------------------------------------------------------------------------
# latentprobe, through its own classes


def latentprobe_config(strategy: str, jit_compile: bool, epochs: int) -> Any:
    from latentprobe import config

    probe = {"strategy": strategy, "head": "linear", "batch_size": BATCH, "epochs": epochs}
    if strategy == "alternating":
        probe["every"] = "step"
    return config.from_dict(
        {
            "model": {"kind": "ae", "latent": LATENT, "hidden": list(HIDDEN), "reconstruction_loss": "bce"},
            "probe": probe,
            "train": {"epochs": epochs, "batch_size": BATCH, "jit_compile": jit_compile},
        }
    )


def build_strategy(cfg: Any, x: Any, y: Any, seed: int) -> Any:
    """The strategy ``latentprobe.train`` builds for a run (the same builder), every example labeled."""
    import dataclasses

    import numpy as np

    from latentprobe.components import assemble

    cfg = dataclasses.replace(cfg, seed=seed)
    return assemble(cfg, x, y, np.arange(len(x)), (784,), CLASSES).strategy


class LatentprobeRecords:
    """One epoch per call: the next record of ``Strategy.run()`` (the generator pauses between epochs)."""

    def __init__(self, name: str, strategy: Any):
        self.name = name
        self.records = strategy.run()
        self.last_phase = ""

    def epoch(self) -> tuple[float, float, int, int]:
        start, cpu_start = time.perf_counter(), time.process_time()
        record = next(self.records)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        self.last_phase = record.phase
        ae_samples = record.samples // 2 if record.phase == "alternating" else record.samples
        if record.phase == "probe":
            ae_samples = 0
        return seconds, cpu_seconds, record.samples, ae_samples


# --------------------------------------------------------------------------------------------------


Epoch = tuple[float, float, int, int]  # (wall seconds, CPU seconds, samples, autoencoder samples)


def median_rate(epochs: list[Epoch]) -> dict[str, Any]:
    """Samples per wall second over the median epoch, and per CPU second (all threads of the process).

    On a shared machine the CPU figure moves less with the load than the wall figure does.
    """
    seconds = statistics.median(e[0] for e in epochs)
    cpu_seconds = statistics.median(e[1] for e in epochs)
    samples = statistics.median(e[2] for e in epochs)
    ae_samples = statistics.median(e[3] for e in epochs)
    return {
        "samples_per_second": samples / seconds,
        "autoencoder_samples_per_second": ae_samples / seconds,
        "samples_per_cpu_second": samples / cpu_seconds,
        "median_epoch_seconds": seconds,
        "median_epoch_cpu_seconds": cpu_seconds,
        "samples_per_epoch": int(samples),
        "epoch_seconds": [round(e[0], 4) for e in epochs],
        "epoch_cpu_seconds": [round(e[1], 4) for e in epochs],
    }


def peak_rss_bytes() -> int:
    # ru_maxrss is KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def describe_machine(tf: Any) -> dict[str, Any]:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu_model or platform.processor(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "gpus": [d.name for d in tf.config.list_logical_devices("GPU")],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()
    import keras
    import numpy as np
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    keras.utils.set_random_seed(args.seed)
    x, y, data_name = load_data(max(args.examples, args.aae_examples), args.synthetic, args.seed)
    started = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "latentprobe training throughput",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "units": "train samples/s; a sample is one example through one update (autoencoder or probe)",
        "results": {},
        "ratios": {},
        "setup": {"data": data_name},
    }
    loads: list[float] = []
    if "seed" in args.parts:
        _merge(report, measure_seed_methods(args, keras, x[: args.examples], y[: args.examples], loads))
    if "aae" in args.parts:
        _merge(report, measure_aae(args, x[: args.aae_examples], y[: args.aae_examples], loads))
    if "conv" in args.parts:  # last: it turns op determinism on for the rest of the process
        _merge(report, measure_conv(args, keras, tf, loads))
    report["setup"]["wall_seconds"] = round(time.perf_counter() - started, 2)
    report["peak_rss_bytes"] = peak_rss_bytes()
    report["machine"] = {
        **describe_machine(tf),
        "loadavg_before": [round(v, 2) for v in load_before],
        "loadavg_1min_each_round": [round(v, 2) for v in loads],
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
    }
    report["versions"] = {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }
    return report


def _merge(report: dict[str, Any], part: dict[str, Any]) -> None:
    for key in ("results", "ratios", "setup"):
        report[key].update(part[key])


def measure_seed_methods(args: argparse.Namespace, keras: Any, x: Any, y: Any, loads: list[float]) -> dict:
    """(a)-(d), interleaved: one epoch each per round."""
    jit = args.jit_compile == "true"
    rounds = args.warmup + args.epochs

    a = SeedFitAutoencoder(keras, x)
    b = SeedAlternatingTrainOnBatch(keras, x, y, args.seed)
    c_strategy = build_strategy(latentprobe_config("alternating", jit, 2 * rounds), x, y, args.seed)
    c = LatentprobeRecords("c_latentprobe_alternating_step", c_strategy)
    # The frozen strategy's run() trains `rounds` autoencoder epochs, then `rounds` probe epochs; the
    # other three keep going round by round alongside both phases.
    d = LatentprobeRecords(
        "d_latentprobe_frozen", build_strategy(latentprobe_config("frozen", jit, rounds), x, y, args.seed)
    )

    times: dict[str, list[Epoch]] = {
        "a": [],
        "b": [],
        "c": [],
        "d_autoencoder": [],
        "d_probe": [],
    }
    for r in range(2 * rounds):
        for key, method in (("a", a), ("b", b), ("c", c), ("d", d)):
            result = method.epoch()
            # d warms up again when it turns to its probe phase (a new compiled function).
            timed = (r % rounds if key == "d" else r) >= args.warmup
            if key == "d":
                key = f"d_{d.last_phase}"
            if timed:
                times[key].append(result)
        loads.append(os.getloadavg()[0])

    ra, rb, rc = median_rate(times["a"]), median_rate(times["b"]), median_rate(times["c"])
    d_ae, d_probe = median_rate(times["d_autoencoder"]), median_rate(times["d_probe"])
    d_seconds = d_ae["median_epoch_seconds"] + d_probe["median_epoch_seconds"]
    d_cpu_seconds = d_ae["median_epoch_cpu_seconds"] + d_probe["median_epoch_cpu_seconds"]
    d_samples = d_ae["samples_per_epoch"] + d_probe["samples_per_epoch"]
    rd = {
        "samples_per_second": d_samples / d_seconds,
        "samples_per_cpu_second": d_samples / d_cpu_seconds,
        "autoencoder_phase": d_ae,
        "probe_phase": d_probe,
    }
    return {
        "results": {
            "a_keras_fit_autoencoder": ra,
            "b_keras_train_on_batch_alternating": rb,
            "c_latentprobe_alternating_step": rc,
            "d_latentprobe_frozen": rd,
        },
        "ratios": {
            "c_over_b": rc["samples_per_second"] / rb["samples_per_second"],
            "c_over_a": rc["samples_per_second"] / ra["samples_per_second"],
            "c_over_a_autoencoder_only": rc["autoencoder_samples_per_second"]
            / ra["autoencoder_samples_per_second"],
            "d_over_a": rd["samples_per_second"] / ra["samples_per_second"],
            "cpu_time": {
                "c_over_b": rc["samples_per_cpu_second"] / rb["samples_per_cpu_second"],
                "c_over_a": rc["samples_per_cpu_second"] / ra["samples_per_cpu_second"],
                "d_over_a": rd["samples_per_cpu_second"] / ra["samples_per_cpu_second"],
            },
        },
        "setup": {
            "examples": len(x),
            "model": f"784-{'-'.join(map(str, HIDDEN))}-{LATENT} dense autoencoder, linear softmax probe",
            "batch_size": BATCH,
            "optimizer": "adam (lr 0.001) for every model",
            "b_probe_batches": "the autoencoder's batch",
            "c_probe_batches": c_strategy.describe()["probe_batches"],
            "warmup_rounds": args.warmup,
            "timed_epochs": args.epochs,
            "latentprobe_jit_compile": jit,
            "threads": args.threads or "tensorflow default",
        },
    }


AAE_BATCH = 100
AAE_LABELS = 1000
AAE_LATENT = 10


def aae_config(kind: str, hidden: tuple[int, ...], jit_compile: bool, epochs: int) -> Any:
    """The semi-supervised-AAE-style network as kind ``ae`` (every example labeled) or semi-supervised
    ``aae``."""
    from latentprobe import config

    model: dict[str, Any] = {
        "kind": kind,
        "latent": AAE_LATENT,
        "hidden": list(hidden),
        "reconstruction_loss": "bce",
    }
    if kind == "aae":
        model["aae"] = {"semi_supervised": True, "discriminator_hidden": list(hidden), "noise_std": 0.5}
    return config.from_dict(
        {
            "model": model,
            "probe": {"strategy": "alternating", "every": "step", "head": "linear", "batch_size": AAE_BATCH},
            "train": {"epochs": epochs, "batch_size": AAE_BATCH, "jit_compile": jit_compile},
        }
    )


def measure_aae(args: argparse.Namespace, x: Any, y: Any, loads: list[float]) -> dict:
    """(e) and (f), interleaved: GFLOP/s of the plain and the semi-supervised adversarial autoencoder."""
    import dataclasses

    import numpy as np

    from benchmarks import flops
    from latentprobe.components import assemble

    jit = args.jit_compile == "true"
    rounds = args.warmup + args.epochs
    methods, per_example = {}, {}
    for key, kind, labeled in (
        ("e", "ae", np.arange(len(x))),
        ("f", "aae", np.arange(min(AAE_LABELS, len(x)))),
    ):
        cfg = dataclasses.replace(aae_config(kind, args.aae_hidden, jit, rounds), seed=args.seed)
        strategy = assemble(cfg, x, y, labeled, (784,), CLASSES).strategy
        if key == "e" and not strategy.shares_batches:
            raise RuntimeError("the plain autoencoder was meant to share its pass with the probe")
        methods[key] = LatentprobeRecords(key, strategy)
        per_example[key] = flops.step_flops(strategy.model, strategy.shares_batches)
    times: dict[str, list[Epoch]] = {"e": [], "f": []}
    for r in range(rounds):
        for key, method in methods.items():
            result = method.epoch()
            if r >= args.warmup:
                times[key].append(result)
        loads.append(os.getloadavg()[0])
    results = {}
    for key, name in (("e", "e_autoencoder_gflops"), ("f", "f_adversarial_autoencoder_gflops")):
        rate = median_rate(times[key])
        step = per_example[key]
        # An alternating record counts autoencoder and probe examples: half of its samples are steps' rows.
        examples = rate["samples_per_epoch"] / 2
        gflop = sum(step.values()) * examples / 1e9
        results[name] = {
            **rate,
            "mflop_per_example": {k: round(v / 1e6, 3) for k, v in step.items()},
            "gflop_per_epoch": gflop,
            "gflops": gflop / rate["median_epoch_seconds"],
            "gflops_per_cpu_second": gflop / rate["median_epoch_cpu_seconds"],
        }
    e, f = results["e_autoencoder_gflops"], results["f_adversarial_autoencoder_gflops"]
    return {
        "results": results,
        "ratios": {
            "aae_gflops_over_ae": f["gflops"] / e["gflops"],
            "aae_gflops_over_ae_cpu_time": f["gflops_per_cpu_second"] / e["gflops_per_cpu_second"],
        },
        "setup": {
            "aae": {
                "examples": len(x),
                "model": f"784-{'-'.join(map(str, args.aae_hidden))}-{AAE_LATENT} (+10 classes), "
                f"discriminators {'-'.join(map(str, args.aae_hidden))}, linear probe",
                "batch_size": AAE_BATCH,
                "labels": min(AAE_LABELS, len(x)),
                "flops": "dense-layer matmuls only, benchmarks/flops.py",
                "warmup_rounds": args.warmup,
                "timed_epochs": args.epochs,
            }
        },
    }


CONV_HIDDEN = (32, 64)
CONV_BATCH = 128


def conv_images(name: str, examples: int, synthetic: bool, seed: int) -> tuple[Any, Any, str]:
    """(x (n, H, W, C) uint8, y (n,) int64, a description) for g-i: ``rgb32`` synthetic 32x32x3 images,
    ``mnist`` MNIST's (synthetic 28x28x1 without the file or with ``synthetic``). latentprobe keeps the
    bytes and scales them in its step; Keras ``fit`` gets ``x / 255`` as float32, as a user would."""
    import numpy as np

    path = find_mnist() if name == "mnist" and not synthetic else None
    if name == "mnist" and path is not None:
        with np.load(path) as f:
            x, y = f["x_train"][:examples], f["y_train"][:examples]
        return x[..., np.newaxis], y.astype(np.int64), f"mnist ({path})"
    shape = (28, 28, 1) if name == "mnist" else (32, 32, 3)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, size=examples)
    centres = rng.random((CLASSES, *shape), dtype=np.float32)
    x = np.clip(centres[y] + 0.2 * rng.standard_normal((examples, *shape), dtype=np.float32), 0, 1)
    return np.round(255 * x).astype(np.uint8), y.astype(np.int64), f"synthetic {'x'.join(map(str, shape))}"


class KerasFitConv:
    """(g) ``fit`` of the conv encoder and decoder layers latentprobe builds, ``jit_compile=True``."""

    def __init__(self, keras: Any, x: Any):
        from latentprobe.models.networks import build_conv_decoder, build_conv_encoder

        shape = x.shape[1:]
        encoder = build_conv_encoder(shape, CONV_HIDDEN, {"z": LATENT})
        decoder = build_conv_decoder(LATENT, CONV_HIDDEN, shape)
        inputs = keras.Input(shape=shape)
        self.autoencoder = keras.Model(inputs, decoder(encoder(inputs)["z"]))
        with warnings.catch_warnings():  # Keras says so when it turns XLA off (below)
            warnings.simplefilter("ignore", UserWarning)
            self.autoencoder.compile(optimizer="adam", loss="binary_crossentropy", jit_compile=True)
        # Keras turns XLA off for a model when op determinism is on (keras/src/trainers/trainer.py,
        # model_supports_jit): what fit runs here is TensorFlow's graph with its own kernels.
        self.jit_compile = bool(self.autoencoder.jit_compile)
        self.keras, self.x = keras, x.astype("float32") / 255.0

    def epoch(self) -> Epoch:
        timer = _EpochTimer(self.keras)
        self.autoencoder.fit(
            self.x, self.x, batch_size=CONV_BATCH, epochs=1, shuffle=True, verbose=0, callbacks=[timer]
        )
        return timer.seconds, timer.cpu_seconds, len(self.x), len(self.x)


def conv_config(strategy: str, jit_compile: bool | str, epochs: int) -> Any:
    from latentprobe import config

    probe = {"strategy": strategy, "head": "linear", "epochs": 1}
    if strategy == "alternating":
        probe["every"] = "step"
    model = {"kind": "ae", "network": "conv", "latent": LATENT, "hidden": list(CONV_HIDDEN)}
    return config.from_dict(
        {
            "model": model,
            "probe": probe,
            "train": {"epochs": epochs, "batch_size": CONV_BATCH, "jit_compile": jit_compile},
        }
    )


def measure_conv(args: argparse.Namespace, keras: Any, tf: Any, loads: list[float]) -> dict:
    """(g)-(i) on 32x32x3 and on MNIST's images, interleaved: one epoch each per round."""
    import dataclasses

    import numpy as np

    from latentprobe.components import assemble

    tf.config.experimental.enable_op_determinism()  # as train.run does
    jit = {"true": True, "false": False}.get(args.conv_jit_compile, "auto")
    rounds = args.warmup + args.epochs
    results, setup = {}, {}
    for data_name in ("rgb32", "mnist"):
        x, y, description = conv_images(data_name, args.conv_examples, args.synthetic, args.seed)
        methods: dict[str, Any] = {"g": KerasFitConv(keras, x)}
        resolved = {}
        for key, strategy in (("h", "frozen"), ("i", "alternating")):
            cfg = dataclasses.replace(conv_config(strategy, jit, rounds), seed=args.seed)
            built = assemble(cfg, x, y, np.arange(len(x)), x.shape[1:], CLASSES, scale=255.0).strategy
            resolved[key] = built.jit_compile
            methods[key] = LatentprobeRecords(key, built)
        times: dict[str, list[Epoch]] = {key: [] for key in methods}
        for r in range(rounds):
            for key, method in methods.items():
                result = method.epoch()
                if r >= args.warmup:
                    times[key].append(result)
            loads.append(os.getloadavg()[0])
        names = {
            "g": f"g_keras_fit_conv_{data_name}",
            "h": f"h_latentprobe_frozen_autoencoder_conv_{data_name}",
            "i": f"i_latentprobe_alternating_step_conv_{data_name}",
        }
        rates = {key: median_rate(times[key]) for key in methods}
        for key, name in names.items():
            results[name] = rates[key]
        g = rates["g"]["autoencoder_samples_per_second"]
        setup[f"conv_{data_name}"] = {
            "data": description,
            "examples": len(x),
            "input_shape": list(x.shape[1:]),
            "latentprobe_jit_compile": {"setting": args.conv_jit_compile, **resolved},
            "g_keras_jit_compile": {"requested": True, "effective": methods["g"].jit_compile},
            "h_over_g_autoencoder_images": rates["h"]["autoencoder_samples_per_second"] / g,
            "i_over_g_autoencoder_images": rates["i"]["autoencoder_samples_per_second"] / g,
        }
    return {
        "results": results,
        "ratios": {
            f"{key}_over_g_autoencoder_images_{name}": setup[f"conv_{name}"][
                f"{key}_over_g_autoencoder_images"
            ]
            for name in ("rgb32", "mnist")
            for key in ("h", "i")
        },
        "setup": {
            "conv": {
                "model": f"conv {'-'.join(map(str, CONV_HIDDEN))} filters, latent {LATENT}, linear probe",
                "batch_size": CONV_BATCH,
                "warmup_rounds": args.warmup,
                "timed_epochs": args.epochs,
                **setup,
            }
        },
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    main()
