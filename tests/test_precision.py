"""``train.precision: mixed``: the mixed precision policy on CPU (bfloat16), and float16 with loss scaling."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from latentprobe import components, config, evaluation, models, strategies, train
from latentprobe.errors import ConfigError
from tests.conftest import tiny_config, write_config


def test_precision_defaults_to_float32_and_rejects_unknown_values():
    assert config.from_dict({}).train.precision == "float32"
    assert config.from_dict({"train": {"precision": "mixed"}}).train.precision == "mixed"
    with pytest.raises(ConfigError) as info:
        config.from_dict({"train": {"precision": "half"}})
    assert info.value.key == "train.precision"
    assert "'half'" in str(info.value) and "float32, mixed" in str(info.value)


def test_precision_policy_is_set_inside_and_restored_after():
    assert keras.mixed_precision.global_policy().name == "float32"
    with train.precision_policy("mixed", "cpu") as name:
        assert name == keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    with train.precision_policy("mixed", "gpu") as name:
        assert name == "mixed_float16"
    assert keras.mixed_precision.global_policy().name == "float32"


@pytest.mark.skipif(bool(tf.config.list_logical_devices("GPU")), reason="a GPU is present")
def test_gpu_device_without_a_gpu_is_one_line_exit_2_with_or_without_mixed_precision(tmp_path):
    from typer.testing import CliRunner

    from latentprobe.cli import app

    raw = tiny_config(tmp_path, train={"device": "gpu", "precision": "mixed"})
    path = write_config(tmp_path, raw)
    line = path.read_text().splitlines().index("  device: gpu") + 1
    problem = "'gpu' requested, but this machine shows no GPU (use 'auto' or 'cpu')"
    expected = f"error: {path}:{line}: train.device: {problem}"
    for command in ("train", "validate"):  # validate finds it as train does, at the key's line
        result = CliRunner().invoke(app, [command, str(path)])
        assert result.exit_code == 2
        assert result.stderr.strip() == expected
    assert not (tmp_path / "runs").exists()
    assert keras.mixed_precision.global_policy().name == "float32"


def test_mixed_run_on_cpu_trains_in_bfloat16_records_it_and_evals_the_same(tmp_path):
    raw = tiny_config(tmp_path, train={"epochs": 3, "precision": "mixed", "device": "cpu"})
    (summary,) = train.run(config.from_dict(raw))
    assert summary["status"] == "completed"
    assert summary["environment"]["precision"] == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"  # nothing leaks into the next run
    test = summary["metrics"]["test"]
    assert all(np.isfinite(v) for v in test.values())
    # The probe learned something in bfloat16: over twice the 0.1 of chance after 3 tiny epochs
    # (0.264, as in float32).
    assert test["probe_accuracy"] > 0.2
    # Reconstruction improved over training (BCE nats per 8x8 image).
    losses = summary["history"]["train/reconstruction_loss"]
    assert losses[-1] < losses[0]

    run_dir = summary["run_dir"]
    encoder = keras.models.load_model(f"{run_dir}/encoder.keras", compile=False)
    assert encoder.get_layer("dense_0").dtype_policy.name == "mixed_bfloat16"
    assert encoder.get_layer("z").compute_dtype == "float32"
    report = evaluation.evaluate(run_dir)
    assert max(report["summary_difference"].values()) < 1e-5
    assert (
        json.loads((tmp_path / "runs" / "tiny" / "ae-z4-s0" / "summary.json").read_text())["environment"][
            "precision"
        ]
        == "mixed_bfloat16"
    )


def test_mixed_float16_wraps_both_optimizers_in_loss_scaling_and_trains(digits_small):
    x, y = digits_small
    cfg = config.from_dict(
        {
            "model": {"latent": 4, "hidden": [32]},
            "probe": {"learning_rate": 0.01},
            "train": {"epochs": 2, "batch_size": 64, "learning_rate": 0.003, "jit_compile": False},
        }
    )
    with train.precision_policy("mixed", "gpu"):  # sets the float16 policy; runs on the CPU here
        parts = components.assemble(cfg, x, y, np.arange(len(x)), x.shape[1:], 10)
        model, head, probe, strategy = parts.model, parts.head, parts.probe, parts.strategy
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert isinstance(probe.optimizer, keras.optimizers.LossScaleOptimizer)
        assert model.encoder.get_layer("dense_0").compute_dtype == "float16"
        assert model.decoder.get_layer("reconstruction").compute_dtype == "float32"
        assert head.get_layer("probabilities").compute_dtype == "float32"
        before = [w.copy() for w in model.encoder.get_weights()]
        head_before = [w.copy() for w in head.get_weights()]
        records = list(strategy.run())
    assert all(w.dtype == np.float32 for w in model.encoder.get_weights())  # float32 variables
    assert all(np.isfinite(w).all() for w in model.encoder.get_weights())
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.encoder.get_weights(), strict=True))
    first, last = records[0].train, records[-1].train
    assert np.isfinite(last["reconstruction_loss"]) and np.isfinite(last["probe_loss"])
    assert last["reconstruction_loss"] < first["reconstruction_loss"]
    # The probe's (loss-scaled, then unscaled) updates reached its weights, and stayed finite.
    assert all(np.isfinite(w).all() for w in head.get_weights())
    assert any(not np.array_equal(a, b) for a, b in zip(head_before, head.get_weights(), strict=True))


@pytest.fixture
def digits_small():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (x[:640] / 16.0).astype(np.float32), y[:640].astype(np.int64)


@pytest.mark.parametrize("network", ["dense", "conv"])
def test_codes_and_reconstructions_stay_float32_under_mixed_precision(network):
    import numpy as np

    from latentprobe import models

    cfg = config.from_dict({"model": {"kind": "vae", "network": network, "latent": 3, "hidden": [8]}})
    with train.precision_policy("mixed", "cpu"):
        model = models.build(cfg.model, 3, (8, 8, 1), 10, seed=0)
        x = np.zeros((2, 8, 8, 1), "float32")
        codes = model.encode(x)
        dtype = keras.backend.standardize_dtype
        assert {dtype(codes[k].dtype) for k in ("z_mean", "z_log_var", "z")} == {"float32"}
        assert dtype(model(x).dtype) == "float32"
        assert str(model.encoder.get_layer("dense_0" if network == "dense" else "conv_0").compute_dtype) == (
            "bfloat16"
        )


@pytest.mark.parametrize(
    ("kind", "moved_by_model_optimizer"),
    [
        ("ae", lambda m: m.encoder.trainable_weights + m.decoder.trainable_weights),
        ("supervised", lambda m: m.encoder.trainable_weights),
        ("aae", lambda m: m.decoder.trainable_weights),  # its encoder also takes the Adam phases
    ],
)
def test_float16_train_steps_scale_the_loss_once_and_unscale_it_once(
    kind, moved_by_model_optimizer, digits_small
):
    """Under mixed_float16, an SGD step matches float32's: the loss scaled on the tape, apply unscaling it.

    A step that skips ``scale_loss`` gets its gradients divided by the loss scale (2^15) in ``apply``.
    """
    x, y = digits_small
    raw = {"kind": kind, "latent": 4, "hidden": [32]}
    if kind == "aae":
        raw["aae"] = {"semi_supervised": True}
    model_cfg = config.from_dict({"model": raw}).model

    def sgd_step(precision):
        keras.utils.set_random_seed(0)
        with train.precision_policy(precision, "gpu"):
            model = models.build(model_cfg, 4, x.shape[1:], 10, seed=0)
            model.compile(optimizer=strategies.build_optimizer("sgd", 0.5))
            model.optimizer.build(model.encoder.trainable_variables + model.decoder.trainable_variables)
            weights = moved_by_model_optimizer(model)
            before = [w.numpy().copy() for w in weights]
            model.train_step((x[:64], x[64:128], y[64:128]) if model.uses_labels else x[:64])
            return model, np.concatenate(
                [(w.numpy() - b).ravel() for w, b in zip(weights, before, strict=True)]
            )

    model, mixed = sgd_step("mixed")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    _, full = sgd_step("float32")
    assert np.linalg.norm(full) > 1e-3
    # float16 arithmetic: within 15% (5% measured); an unscaled step would be off by about 100%.
    assert np.linalg.norm(mixed - full) < 0.15 * np.linalg.norm(full)
