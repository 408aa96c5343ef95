"""benchmarks/flops.py against TensorFlow's own count of the traced training step.

TensorFlow's profiler counts every op of the traced graph: the matmuls, and also the elementwise work
flops.py leaves out, and (for the AAE) gradients the graph builds but never needs (a discriminator's
weight gradients in the generator phase, pruned before it runs). So the plain autoencoder's count must
lie just below TensorFlow's, and the AAE's below it by no more than those unused gradients.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import tensorflow as tf

from latentprobe import config
from latentprobe.components import assemble
from tests.conftest import REPO

sys.path.insert(0, str(REPO))
from benchmarks import flops  # noqa: E402

BATCH = 50


def strategy_for(kind: str, labeled_share: float | None = None):
    model = {"kind": kind, "latent": 6, "hidden": [128, 64], "reconstruction_loss": "bce"}
    if kind == "aae":
        model["aae"] = {"semi_supervised": True, "discriminator_hidden": [96, 48]}
    cfg = config.from_dict(
        {
            "model": model,
            "probe": {"strategy": "alternating", "every": "step", "head": "linear"},
            "train": {"epochs": 1, "batch_size": BATCH, "jit_compile": False},
        }
    )
    rng = np.random.default_rng(0)
    x, y = rng.random((200, 784), dtype=np.float32), rng.integers(0, 10, 200)
    labeled = np.arange(int(200 * (labeled_share or (1.0 if kind == "ae" else 0.5))))
    return assemble(cfg, x, y, labeled, (784,), 10).strategy


def tensorflow_count(strategy) -> float:
    """TensorFlow's FLOPs per example of one alternating step, as ``_step_epoch_graph`` runs it."""
    from tensorflow.python.profiler import model_analyzer, option_builder

    def one_step(x, y, ae_idx, probe_idx, labeled_idx):
        if strategy.shares_batches:
            _, codes = strategy.model.fit_batch(tf.gather(x, ae_idx))
            z = strategy.model.features_from_codes(codes)
        else:
            strategy._model_step(x, y, ae_idx, labeled_idx)
            z = strategy.model.probe_features(tf.gather(x, probe_idx), training=False)
        strategy.probe.train_step(z, tf.gather(y, probe_idx))
        return tf.constant(0)

    batches = [tf.constant(b[0], tf.int32) for b in strategy.step_batches()]
    graph = tf.function(one_step).get_concrete_function(strategy.x, strategy.y, *batches).graph
    options = option_builder.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return model_analyzer.profile(graph, options=options).total_float_ops / BATCH


def test_plain_autoencoder_count_is_tensorflows_matmul_work():
    strategy = strategy_for("ae")
    assert strategy.shares_batches
    counted = sum(flops.step_flops(strategy.model).values())
    # 784-128-64-6 and back: (100352 + 8192 + 384) * 2 per network forward, x3 less the first layer's
    # input gradient (2 * 100352), for both networks.
    forward = 2 * (784 * 128 + 128 * 64 + 64 * 6)
    assert counted == 2 * (3 * forward) - 2 * 784 * 128 - 2 * 6 * 64
    tf_count = tensorflow_count(strategy)
    assert 0.93 * tf_count < counted <= tf_count


def test_a_probe_on_its_own_batch_costs_one_more_encoder_pass():
    strategy = strategy_for("ae")
    shared = flops.step_flops(strategy.model, shares_pass=True)
    separate = flops.step_flops(strategy.model, shares_pass=False)
    assert shared["probe_pass"] == 0
    assert separate["probe_pass"] == 2 * (784 * 128 + 128 * 64 + 64 * 6)
    assert separate["reconstruction"] == shared["reconstruction"]
    # Half the examples labeled: the probe trains on its own batch, and TensorFlow counts the extra pass.
    two_pass = strategy_for("ae", labeled_share=0.5)
    assert not two_pass.shares_batches
    counted = sum(flops.step_flops(two_pass.model, two_pass.shares_batches).values())
    assert 0.93 * tensorflow_count(two_pass) < counted <= tensorflow_count(two_pass)


def test_adversarial_count_lies_below_tensorflows_by_the_unused_gradients():
    strategy = strategy_for("aae")
    model = strategy.model
    phases = flops.step_flops(model)
    assert set(phases) == {"reconstruction", "discriminators", "generator", "supervised", "probe_pass"}
    counted = sum(phases.values())
    tf_count = tensorflow_count(strategy)
    # The generator phase's graph also holds each discriminator's weight gradients (2 x its forward).
    unused = sum(2 * flops.dense_flops(d)[0] for d in model.discriminators.values())
    assert counted <= tf_count <= 1.07 * (counted + unused)
    assert tf_count - counted >= 0.5 * unused


def test_a_network_without_dense_layers_is_an_error():
    import keras

    inputs = keras.Input((4,))
    with pytest.raises(ValueError, match="no Dense layers"):
        flops.dense_flops(keras.Model(inputs, keras.layers.ReLU()(inputs), name="relu_only"))
