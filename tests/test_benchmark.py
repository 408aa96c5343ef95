"""benchmarks/throughput.py end to end in its smallest mode: one JSON object with every figure.

No timing is asserted (speed is what the benchmark itself reports); the test checks that the four methods
ran, that the figures are consistent with each other, and that the JSON is complete.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

METHODS = (
    "a_keras_fit_autoencoder",
    "b_keras_train_on_batch_alternating",
    "c_latentprobe_alternating_step",
    "d_latentprobe_frozen",
)
AAE_METHODS = ("e_autoencoder_gflops", "f_adversarial_autoencoder_gflops")
CONV_METHODS = tuple(
    f"{method}_conv_{data}"
    for data in ("rgb32", "mnist")
    for method in ("g_keras_fit", "h_latentprobe_frozen_autoencoder", "i_latentprobe_alternating_step")
)


@pytest.mark.slow
def test_throughput_benchmark_prints_one_json_object_with_every_figure():
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    args = ["--quick", "--examples", "512", "--epochs", "2", "--warmup", "1", "--synthetic"]
    args += ["--aae-hidden", "64,32", "--aae-examples", "600", "--conv-examples", "256"]
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "throughput.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)  # the whole of stdout is one JSON object

    assert set(report["results"]) == {*METHODS, *AAE_METHODS, *CONV_METHODS}
    for name in METHODS[:3]:
        figures = report["results"][name]
        assert len(figures["epoch_seconds"]) >= 2  # the timed epochs, warm-up left out
        assert figures["samples_per_second"] > 0
        assert figures["samples_per_epoch"] == (512 if name.startswith("a_") else 2 * 512)
        assert math.isclose(
            figures["samples_per_second"], figures["samples_per_epoch"] / figures["median_epoch_seconds"]
        )
    d = report["results"]["d_latentprobe_frozen"]
    assert d["autoencoder_phase"]["samples_per_epoch"] == d["probe_phase"]["samples_per_epoch"] == 512
    assert len(d["probe_phase"]["epoch_seconds"]) == 2

    ratios = report["ratios"]
    c, b, a = (report["results"][m]["samples_per_second"] for m in METHODS[2::-1])
    assert math.isclose(ratios["c_over_b"], c / b) and math.isclose(ratios["c_over_a"], c / a)
    assert set(ratios["cpu_time"]) == {"c_over_b", "c_over_a", "d_over_a"}
    assert report["peak_rss_bytes"] > 100 * 2**20  # TensorFlow alone is more than 100 MiB
    assert len(report["machine"]["loadavg_before"]) == 3
    assert report["setup"]["data"] == "synthetic" and report["setup"]["examples"] == 512
    assert {"python", "tensorflow", "keras", "numpy"} <= set(report["versions"])

    # (e), (f): the arithmetic rates. 600 images in batches of 100: 6 steps, each an autoencoder and a
    # probe batch; the AAE's step has its four phases and the probe's pass.
    e, f = (report["results"][m] for m in AAE_METHODS)
    assert e["samples_per_epoch"] == f["samples_per_epoch"] == 2 * 600
    assert set(f["mflop_per_example"]) == {
        "reconstruction",
        "discriminators",
        "generator",
        "supervised",
        "probe_pass",
    }
    for figures in (e, f):
        assert math.isclose(
            figures["gflop_per_epoch"], sum(figures["mflop_per_example"].values()) * 600 / 1000, rel_tol=1e-3
        )
        assert math.isclose(figures["gflops"], figures["gflop_per_epoch"] / figures["median_epoch_seconds"])
    assert f["gflop_per_epoch"] > 2 * e["gflop_per_epoch"]  # four phases: several autoencoder passes
    assert math.isclose(ratios["aae_gflops_over_ae"], f["gflops"] / e["gflops"])
    assert report["setup"]["aae"]["examples"] == 600 and "64-32" in report["setup"]["aae"]["model"]

    # (g)-(i): the conv network on 256 images of each shape, batch 128: fit trains all 256 (g), the
    # frozen strategy's autoencoder phase 2 batches (h), the alternating step 2 autoencoder + 2 probe (i).
    for data, shape in (("rgb32", [32, 32, 3]), ("mnist", [28, 28, 1])):
        g, h, i = (report["results"][m] for m in CONV_METHODS if m.endswith(data))
        assert g["samples_per_epoch"] == h["samples_per_epoch"] == 256 and i["samples_per_epoch"] == 512
        setup = report["setup"]["conv"][f"conv_{data}"]
        assert setup["input_shape"] == shape
        assert setup["latentprobe_jit_compile"] == {"setting": "auto", "h": False, "i": False}  # on a CPU
        # Keras turns fit's XLA off under op determinism, which the conv part turns on as a run does.
        assert setup["g_keras_jit_compile"] == {"requested": True, "effective": False}
        assert math.isclose(
            ratios[f"i_over_g_autoencoder_images_{data}"],
            i["autoencoder_samples_per_second"] / g["autoencoder_samples_per_second"],
        )


def load_benchmark():
    """The benchmark script as a module (benchmarks/ is no package; TensorFlow is imported lazily)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("throughput", REPO / "benchmarks" / "throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_figures_are_the_median_epoch_and_quick_mode_is_small():
    bench = load_benchmark()
    epochs = [(2.0, 3.0, 1000, 500), (1.0, 1.5, 1000, 500), (4.0, 2.0, 1000, 500)]
    figures = bench.median_rate(epochs)
    assert figures["median_epoch_seconds"] == 2.0 and figures["samples_per_second"] == 500.0
    assert figures["autoencoder_samples_per_second"] == 250.0
    assert figures["samples_per_cpu_second"] == 500.0  # median CPU seconds 2.0
    args = bench.parse_args(["--quick"])
    assert (args.examples, args.warmup, args.epochs) == (4096, 1, 2)
    with pytest.raises(SystemExit):
        bench.parse_args(["--epochs", "0"])


def test_seed_style_baseline_trains_the_whole_autoencoder_and_only_the_probe_head():
    """(b) must do (c)'s work: its autoencoder step moves every weight, its probe step only the head.

    Keras 3 reads ``trainable`` when it traces a train function, and the probe's encoder layers are the
    autoencoder's: freezing the encoder for the probe with ``encoder.trainable = False`` would freeze it in
    the autoencoder too, leaving a cheaper baseline that trains its decoder alone.
    """
    import keras
    import numpy as np

    bench = load_benchmark()
    x, y, _ = bench.load_data(512, synthetic=True, seed=0)
    baseline = bench.SeedAlternatingTrainOnBatch(keras, x, y, seed=0)
    autoencoder, probe = baseline.autoencoder, baseline.probe

    def weights(model):
        return {v.path: np.array(v) for v in model.weights}

    before = weights(autoencoder)
    autoencoder.train_on_batch(x[:256], x[:256])
    after_ae = weights(autoencoder)
    assert all(np.any(before[k] != after_ae[k]) for k in before), "the autoencoder left weights unchanged"

    head_before = weights(probe)
    probe.train_on_batch(x[:256], y[:256])
    after_probe, head_after = weights(autoencoder), weights(probe)
    assert all(np.array_equal(after_ae[k], after_probe[k]) for k in after_ae), "the probe moved the encoder"
    head = [k for k in head_before if k not in after_ae]
    assert head and all(np.any(head_before[k] != head_after[k]) for k in head)
