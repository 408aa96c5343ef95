"""Every registered variant builds and trains on tiny data; the loss functions give known answers."""

from __future__ import annotations

import numpy as np
import pytest
from keras import ops

from latentprobe import config, models
from latentprobe.models import MODELS, losses
from latentprobe.probes import build_optimizer


def build(kind: str, latent: int = 3, input_shape=(8, 8, 1), num_classes: int = 10):
    cfg = config.from_dict({"model": {"kind": kind, "latent": latent, "hidden": [16]}})
    model = models.build(cfg.model, latent, input_shape, num_classes)
    model.compile(optimizer=build_optimizer("adam", 1e-2))
    return model


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_every_kind_trains_a_few_steps_with_finite_losses(kind):
    rng = np.random.default_rng(0)
    x = rng.random((32, 8, 8, 1)).astype("float32")
    model = build(kind)
    before = [w.copy() for w in model.encoder.get_weights()]
    logs = [model.train_step(x) for _ in range(3)]
    assert all(np.isfinite(float(v)) for log in logs for v in log.values())
    assert set(model.all_terms) <= set(logs[-1])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.encoder.get_weights(), strict=True))
    assert tuple(model(x).shape) == (32, 8, 8, 1)
    assert tuple(model.probe_features(x).shape) == (32, 3)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_training_lowers_the_reconstruction_loss(kind):
    rng = np.random.default_rng(1)
    x = (rng.random((64, 8, 8, 1)) > 0.5).astype("float32")
    model = build(kind)
    first = float(model.compute_terms(x)["reconstruction_loss"])
    for _ in range(60):
        model.train_step(x)
    assert float(model.compute_terms(x)["reconstruction_loss"]) < 0.9 * first


def test_reconstruction_sums_over_input_dimensions():
    x = np.full((2, 4, 4, 1), 0.5, "float32")
    r = np.full((2, 4, 4, 1), 0.25, "float32")
    mse = ops.convert_to_numpy(losses.reconstruction(x, r, "mse"))
    np.testing.assert_allclose(mse, [16 * 0.0625] * 2, rtol=1e-6)
    bce = ops.convert_to_numpy(losses.reconstruction(x, r, "bce"))
    expected = -16 * (0.5 * np.log(0.25) + 0.5 * np.log(0.75))
    np.testing.assert_allclose(bce, [expected] * 2, rtol=1e-5)


def test_perfect_reconstruction_of_binary_data_costs_nothing():
    x = np.array([[0.0, 1.0, 1.0, 0.0]], "float32")
    assert float(ops.convert_to_numpy(losses.reconstruction(x, x, "bce"))[0]) < 1e-5
    assert float(ops.convert_to_numpy(losses.reconstruction(x, x, "mse"))[0]) == 0.0


def test_classification_loss_and_accuracy():
    y = np.array([0, 1], "int32")
    p = np.array([[0.9, 0.1], [0.8, 0.2]], "float32")
    np.testing.assert_allclose(
        ops.convert_to_numpy(losses.classification(y, p)), [-np.log(0.9), -np.log(0.2)], rtol=1e-5
    )
    np.testing.assert_array_equal(ops.convert_to_numpy(losses.correct(y, p)), [1.0, 0.0])


def test_decoder_mirrors_encoder_widths():
    model = build("ae", latent=5)
    cfg = config.from_dict({"model": {"hidden": [32, 16], "latent": 5}})
    model = models.build(cfg.model, 5, (8, 8, 1), 10)
    enc = [layer.units for layer in model.encoder.layers if hasattr(layer, "units")]
    dec = [layer.units for layer in model.decoder.layers if hasattr(layer, "units")]
    assert enc == [32, 16, 5]
    assert dec == [16, 32, 64]
    assert model.decoder.layers[-2].activation.__name__ == "sigmoid"
