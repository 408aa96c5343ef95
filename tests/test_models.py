"""Every registered variant builds and trains on tiny data; the loss functions give known answers."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from latentprobe import config, models
from latentprobe.models import MODELS, losses
from latentprobe.models.vae import VariationalAutoencoder
from latentprobe.strategies import build_optimizer


def build(
    kind: str,
    latent: int = 3,
    input_shape=(8, 8, 1),
    num_classes: int = 10,
    settings: dict | None = None,
    network: str = "dense",
    hidden=(16,),
):
    model_raw = {"kind": kind, "latent": latent, "hidden": list(hidden), "network": network}
    if settings is not None:
        model_raw[kind] = settings
    cfg = config.from_dict({"model": model_raw})
    model = models.build(cfg.model, latent, input_shape, num_classes, seed=0)
    model.compile(optimizer=build_optimizer("adam", 1e-2))
    model.optimizer.build(model.encoder.trainable_variables + model.decoder.trainable_variables)
    return model


def batch(model, x, y=None):
    """What a strategy passes to ``train_step``: x, or (x, x_labeled, y_labeled) for a model using labels."""
    if not model.uses_labels:
        return x
    y = np.arange(len(x)) % 10 if y is None else y
    return (x, x[: len(x) // 2], y[: len(x) // 2])


#: Every kind, and the settings that switch on its optional parts.
KINDS = sorted(MODELS) + ["aae-semi", "dae-mask", "sparse-l1"]
VARIANT_SETTINGS = {
    "aae-semi": ("aae", {"semi_supervised": True, "discriminator_hidden": [8], "noise_std": 0.1}),
    "dae-mask": ("dae", {"noise": "mask", "fraction": 0.5}),
    "sparse-l1": ("sparse", {"penalty": "l1", "weight": 0.01, "weight_decay": 0.001}),
}


def build_variant(name: str, **kwargs):
    kind, settings = VARIANT_SETTINGS.get(name, (name, None))
    return build(kind, settings=settings, **kwargs)


@pytest.mark.parametrize("network", ["dense", "conv"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_trains_a_few_steps_with_finite_losses(kind, network):
    rng = np.random.default_rng(0)
    x = rng.random((32, 8, 8, 1)).astype("float32")
    model = build_variant(kind, network=network, hidden=(16,) if network == "dense" else (4, 8))
    before = [w.copy() for w in model.encoder.get_weights()]
    logs = [model.train_step(batch(model, x)) for _ in range(3)]
    assert all(np.isfinite(float(v)) for log in logs for v in log.values())
    assert set(model.all_terms) <= set(logs[-1])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.encoder.get_weights(), strict=True))
    assert tuple(model(x).shape) == (32, 8, 8, 1)
    assert tuple(model.probe_features(x).shape) == (32, 3)
    terms = model.compute_terms(x)
    assert all(np.isfinite(float(v)) for v in terms.values())


# The supervised kind reconstructs nothing; the KL-sparse one first trades reconstruction for sparsity
# (tests/test_variants.py checks that it moves the mean activation to rho).
@pytest.mark.parametrize("kind", [k for k in KINDS if k not in ("supervised", "sparse")])
def test_training_lowers_the_reconstruction_loss(kind):
    rng = np.random.default_rng(1)
    # Four binary prototypes, so there is structure to learn beyond the pixel marginals.
    prototypes = (rng.random((4, 8, 8, 1)) > 0.5).astype("float32")
    x = prototypes[np.arange(64) % 4]
    model = build_variant(kind)
    first = float(model.compute_terms(x)["reconstruction_loss"])
    step = tf.function(model.train_step)  # compiled: 60 eager AAE steps take long on a shared CPU
    data = batch(model, x)
    for _ in range(60):
        step(data)
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
    model = models.build(cfg.model, 5, (8, 8, 1), 10, seed=0)
    enc = [layer.units for layer in model.encoder.layers if hasattr(layer, "units")]
    dec = [layer.units for layer in model.decoder.layers if hasattr(layer, "units")]
    assert enc == [32, 16, 5]
    assert dec == [16, 32, 64]
    assert model.decoder.layers[-2].activation.__name__ == "sigmoid"


def draws(model, x):
    """What the model's seed generator gives in training: its corrupted input, or its sampled code."""
    if isinstance(model, VariationalAutoencoder):  # it samples z
        return ops.convert_to_numpy(model.encode(x, training=True)["z"])
    return ops.convert_to_numpy(model.corrupt(x, training=True))


#: The kinds that draw noise or samples in training, and settings that make them draw.
DRAWING = {"dae": None, "vae": None, "aae": {"noise_std": 0.1}}


@pytest.mark.parametrize("kind", sorted(DRAWING))
def test_a_seeded_model_draws_the_same_noise_whatever_the_global_random_state(kind):
    import random

    x = np.full((4, 8, 8, 1), 0.5, "float32")
    random.seed(1)
    first = build(kind, settings=DRAWING[kind])
    random.seed(2)
    again = build(kind, settings=DRAWING[kind])
    again.encoder.set_weights(first.encoder.get_weights())  # initial weights draw from the global random
    np.testing.assert_array_equal(draws(first, x), draws(again, x))
    other = models.build(
        config.from_dict({"model": {"kind": kind, "latent": 3}}).model, 3, (8, 8, 1), 10, seed=1
    )
    assert int(other.seed_generator.state.numpy()[0]) == 1
    assert int(first.seed_generator.state.numpy()[0]) == 0


def test_building_a_seeded_model_takes_nothing_from_the_global_random():
    import random

    # The denoising autoencoder's networks are the plain one's: only its seed generator could draw more.
    random.seed(0)
    build("ae")
    after_ae = random.random()
    random.seed(0)
    build("dae")
    assert random.random() == after_ae
