"""Probe heads and strategies: the frozen encoder provably does not move; probes learn separable codes."""

from __future__ import annotations

import numpy as np
import pytest

from latentprobe import config, data, pixels
from latentprobe.components import build_components
from latentprobe.strategies import XLA_MIN_EXAMPLES, Probe, build_head, build_optimizer, resolve_jit_compile


def setup(tmp_cfg: dict, n: int | None = None):
    import keras

    cfg = config.from_dict(tmp_cfg)
    cfg = cfg.expand()[0]
    keras.utils.set_random_seed(cfg.seed)  # as a run does: the weights drawn do not depend on test order
    splits = data.load(cfg.data, cfg.seed)
    parts = build_components(cfg, splits)
    return cfg, splits, parts.model, parts.head, parts.strategy


RAW = {
    "data": {"name": "digits", "labels": 200},
    "model": {"latent": 4, "hidden": [32]},
    "probe": {"strategy": "frozen", "epochs": 3, "learning_rate": 0.05},
    "train": {"epochs": 2, "batch_size": 64},
}


def test_frozen_strategy_leaves_encoder_weights_bit_identical():
    cfg, splits, model, head, strategy = setup(RAW)
    records = strategy.run()
    ae_records = [next(records) for _ in range(cfg.train.epochs)]
    assert [r.phase for r in ae_records] == ["autoencoder", "autoencoder"]
    encoder_before = [w.copy() for w in model.encoder.get_weights()]
    head_before = [w.copy() for w in head.get_weights()]
    probe_records = list(records)
    assert [r.phase for r in probe_records] == ["probe"] * 3
    assert model.encoder.trainable is False
    for before, after in zip(encoder_before, model.encoder.get_weights(), strict=True):
        assert before.tobytes() == after.tobytes()
    assert any(not np.array_equal(a, b) for a, b in zip(head_before, head.get_weights(), strict=True))


def test_probe_steps_alone_never_move_the_encoder_in_alternating_mode():
    raw = {**RAW, "probe": {"strategy": "alternating", "every": "epoch", "learning_rate": 0.05}}
    _, _, model, head, strategy = setup(raw)
    encoder_before = [w.copy() for w in model.encoder.get_weights()]
    strategy.run_probe_epoch()
    for before, after in zip(encoder_before, model.encoder.get_weights(), strict=True):
        assert before.tobytes() == after.tobytes()


@pytest.mark.parametrize("every", ["step", "epoch"])
def test_alternating_trains_both_and_logs_both(every):
    raw = {**RAW, "probe": {"strategy": "alternating", "every": every, "learning_rate": 0.05}}
    cfg, _, model, head, strategy = setup(raw)
    encoder_before = [w.copy() for w in model.encoder.get_weights()]
    records = list(strategy.run())
    assert [r.epoch for r in records] == [1, 2]
    assert {"reconstruction_loss", "probe_loss", "probe_accuracy"} <= set(records[-1].train)
    assert any(
        not np.array_equal(a, b) for a, b in zip(encoder_before, model.encoder.get_weights(), strict=True)
    )


def test_probe_batches_come_only_from_the_labeled_subset():
    _, splits, _, _, strategy = setup(RAW)
    batches = strategy.probe_batches(steps=50)
    assert set(np.unique(batches)) <= set(splits.labeled_idx.tolist())
    assert batches.shape == (50, strategy.probe_batch_size)


def test_linear_probe_learns_separable_codes_and_not_a_constant_one():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=800)
    centers = np.eye(4, dtype="float32") * 6
    z = centers[y] + rng.normal(size=(800, 4)).astype("float32")
    head_cfg = config.from_dict({"probe": {"head": "linear"}}).probe

    def fit(codes):
        probe = Probe(build_head(head_cfg, 4, 4), build_optimizer("adam", 0.05))
        for _ in range(30):
            for i in range(0, 800, 100):
                probe.train_step(codes[i : i + 100], y[i : i + 100])
        return float((probe.head.predict_on_batch(codes).argmax(1) == y).mean())

    assert fit(z) > 0.95
    assert fit(np.zeros_like(z)) < 0.4


def test_mlp_head_has_the_configured_widths():
    probe_cfg = config.from_dict({"probe": {"head": "mlp", "hidden": [16, 8]}}).probe
    head = build_head(probe_cfg, 5, 3)
    assert [layer.units for layer in head.layers if hasattr(layer, "units")] == [16, 8, 3]
    assert head.layers[-1].activation.__name__ == "softmax"


SHARED = {
    "data": {"name": "digits"},  # labels: all, so the probe batch can be the autoencoder's batch
    "model": {"latent": 4, "hidden": [32]},
    "probe": {"strategy": "alternating", "every": "step", "learning_rate": 0.05},
    "train": {"epochs": 1, "batch_size": 64},
}


@pytest.mark.parametrize(
    ("change", "shares"),
    [
        ({}, True),
        ({"model": {"kind": "vae", "latent": 4, "hidden": [32]}}, True),
        ({"model": {"kind": "sparse", "latent": 4, "hidden": [32]}}, True),
        ({"model": {"kind": "dae", "latent": 4, "hidden": [32]}}, False),  # encodes corrupted input
        ({"data": {"name": "digits", "labels": 200}}, False),  # probe batches from the labeled subset
        ({"probe": {**SHARED["probe"], "every": "epoch"}}, False),
        ({"probe": {**SHARED["probe"], "batch_size": 32}}, False),
    ],
)
def test_alternating_shares_the_autoencoder_pass_only_where_it_is_the_same_computation(change, shares):
    _, _, _, _, strategy = setup({**SHARED, **change})
    assert strategy.shares_batches is shares
    assert ("autoencoder's batch" in strategy.describe()["probe_batches"]) is shares  # summary.json says so


def test_shared_step_updates_the_probe_from_the_codes_before_the_autoencoder_update():
    import tensorflow as tf

    cfg, splits, model, head, strategy = setup(SHARED)
    assert strategy.shares_batches
    batches = [b[:1] for b in strategy.step_batches()]  # one step
    idx = batches[0]
    assert np.array_equal(batches[1], idx)  # the probe's batch is the autoencoder's
    xb, yb = pixels.scale_array(splits.train.x[idx[0]], splits.train.scale), splits.train.y[idx[0]]
    codes_before = model.probe_features(xb).numpy()
    encoder_before = [w.copy() for w in model.encoder.get_weights()]
    # The same head and a fresh optimizer, updated by hand on the pre-update codes.
    twin = Probe(keras_clone(head), build_optimizer(cfg.probe.optimizer, cfg.probe.learning_rate))
    twin.train_step(codes_before, yb)

    steps = strategy._step_epoch(strategy.x, strategy.y, *(tf.constant(b, dtype=tf.int32) for b in batches))

    assert int(steps) == 1
    assert any(  # the autoencoder took its step
        not np.array_equal(a, b) for a, b in zip(encoder_before, model.encoder.get_weights(), strict=True)
    )
    codes_after = model.probe_features(xb).numpy()
    assert not np.allclose(codes_before, codes_after)
    for mine, manual in zip(head.get_weights(), twin.head.get_weights(), strict=True):
        np.testing.assert_allclose(mine, manual, rtol=1e-5, atol=1e-6)
    assert strategy.probe.results()["probe_loss"] == pytest.approx(twin.results()["probe_loss"], rel=1e-5)


def test_shared_alternating_epoch_trains_both_and_the_probe_learns():
    raw = {**SHARED, "train": {"epochs": 3, "batch_size": 64}}
    _, _, model, _, strategy = setup(raw)
    records = list(strategy.run())
    assert [r.phase for r in records] == ["alternating"] * 3
    steps = strategy.n // strategy.batch_size
    assert all(r.samples == 2 * steps * strategy.batch_size for r in records)
    assert {"reconstruction_loss", "probe_loss", "probe_accuracy"} <= set(records[-1].train)
    assert records[-1].train["probe_accuracy"] > records[0].train["probe_accuracy"]
    assert records[-1].train["reconstruction_loss"] < records[0].train["reconstruction_loss"]


def keras_clone(head):
    import keras

    twin = keras.models.clone_model(head)
    twin.set_weights(head.get_weights())
    return twin


@pytest.mark.parametrize(
    ("setting", "network", "examples", "on_gpu", "expected"),
    [
        ("auto", "conv", 10**8, False, False),  # XLA's CPU convolutions in the loop: 30x slower
        ("auto", "dense", XLA_MIN_EXAMPLES, False, True),
        ("auto", "dense", XLA_MIN_EXAMPLES - 1, False, False),  # the compile outweighs the gain
        ("auto", "conv", 10, True, True),
        (True, "conv", 10, False, True),
        (False, "dense", 10**8, True, False),
    ],
)
def test_jit_compile_auto_takes_xla_only_where_it_was_measured_faster(
    setting, network, examples, on_gpu, expected
):
    assert resolve_jit_compile(setting, network, examples, on_gpu) is expected


def test_a_conv_run_on_the_cpu_trains_without_xla_by_default_and_says_so():
    raw = {
        **SHARED,
        "model": {"network": "conv", "latent": 2, "hidden": [4]},
        "data": {"name": "digits", "limit": 200},
    }
    cfg, _, _, _, strategy = setup(raw)
    assert cfg.train.jit_compile == "auto"
    assert strategy.jit_compile is False
    assert strategy.describe()["jit_compile"] is False  # summary.json's strategy block
    assert next(strategy.run()).samples > 0


@pytest.mark.parametrize("scale", [16.0, 255.0])  # the digits' own; 255 has no exact reciprocal
def test_byte_images_train_to_the_same_bits_as_their_float32_copy(scale):
    """The strategy holds the uint8 split (no float32 copy) and scales each batch in its compiled step;
    weights and metrics come out bit for bit as when it is given NumPy's float32 ``x / scale``."""
    import tensorflow as tf

    from latentprobe import metrics, train
    from latentprobe.components import assemble

    raw = {**SHARED, "data": {"name": "digits", "limit": 400}, "train": {"epochs": 2, "batch_size": 64}}
    cfg = config.from_dict(raw).expand()[0]
    splits = data.load(cfg.data, cfg.seed)
    x = splits.train.x
    assert x.dtype == np.uint8 and splits.train.scale == 16.0
    runs = {}
    for name, (x_in, divisor) in {"bytes": (x, scale), "float32": (x / np.float32(scale), 1.0)}.items():
        train.seed_everything(cfg.seed)
        parts = assemble(cfg, x_in, splits.train.y, splits.labeled_idx, splits.input_shape, 10, scale=divisor)
        assert parts.strategy.x.dtype == (tf.uint8 if name == "bytes" else tf.float32)
        assert parts.strategy.x.shape.num_elements() * parts.strategy.x.dtype.size == x_in.nbytes
        history = [r.train for r in parts.strategy.run()]
        val_x = splits.val.x if name == "bytes" else splits.val.x / np.float32(scale)
        val = metrics.measure(parts.model, parts.head, val_x, splits.val.y, scale=divisor)
        runs[name] = (history, val, parts.model.get_weights())
    assert runs["bytes"][0] == runs["float32"][0] and runs["bytes"][1] == runs["float32"][1]
    for a, b in zip(runs["bytes"][2], runs["float32"][2], strict=True):
        assert a.tobytes() == b.tobytes()
