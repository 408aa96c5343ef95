"""Known answers for the variants: the VAE's KL and sampling scale, the sparse KL, the AAE's phases,
the supervised baseline, the denoising corruption and the conv networks' shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from keras import ops

from latentprobe import config, models
from latentprobe.errors import ConfigError
from latentprobe.models import losses
from latentprobe.models.networks import build_conv_decoder, build_conv_encoder
from latentprobe.models.vae import sample

from .test_models import batch, build


def numpy(t):
    return np.asarray(ops.convert_to_numpy(t))


# -- VAE ---------------------------------------------------------------------------------------------


def test_kl_of_the_standard_normal_against_the_prior_is_zero():
    zeros = np.zeros((4, 3), "float32")
    np.testing.assert_allclose(numpy(losses.gaussian_kl(zeros, zeros)), 0.0, atol=1e-7)


def test_kl_matches_the_closed_form_and_sums_over_latent_dimensions():
    mean = np.array([[1.0, 0.0]], "float32")
    log_var = np.array([[0.0, math.log(4.0)]], "float32")
    # 0.5 * (var + mean^2 - 1 - log var) per dimension
    expected = 0.5 * (1 + 1 - 1 - 0) + 0.5 * (4 + 0 - 1 - math.log(4.0))
    np.testing.assert_allclose(numpy(losses.gaussian_kl(mean, log_var)), [expected], rtol=1e-6)


def test_sampling_scale_is_the_standard_deviation_exp_half_log_var():
    # log_var = log 4: the standard deviation is 2 (exp(log_var) would give 4, exp(log_var / 2)... 2).
    z = sample(
        np.zeros((1, 1), "float32"), np.full((1, 1), math.log(4.0), "float32"), np.ones((1, 1), "float32")
    )
    np.testing.assert_allclose(numpy(z), [[2.0]], rtol=1e-6)


def test_vae_samples_in_training_with_std_exp_half_log_var_and_reads_the_mean_otherwise():
    model = build("vae", latent=2)
    # Heads fixed to z_mean = 3 and z_log_var = log 9 (standard deviation 3, variance 9).
    head_mean, head_var = model.encoder.get_layer("z_mean"), model.encoder.get_layer("z_log_var")
    head_mean.set_weights([np.zeros_like(head_mean.kernel), np.full(2, 3.0, "float32")])
    head_var.set_weights([np.zeros_like(head_var.kernel), np.full(2, math.log(9.0), "float32")])
    x = np.random.default_rng(0).random((4000, 8, 8, 1)).astype("float32")
    z = numpy(model.encode(x, training=True)["z"])
    assert abs(z.mean() - 3.0) < 0.1
    assert abs(z.std() - 3.0) < 0.1  # exp(log_var) would give 9, exp(log_var) ** 2 81
    np.testing.assert_allclose(numpy(model.encode(x[:5])["z"]), 3.0)
    np.testing.assert_allclose(numpy(model.probe_features(x[:5])), 3.0)
    kl = float(model.compute_terms(x[:5])["kl_loss"])
    assert kl == pytest.approx(2 * 0.5 * (9 + 9 - 1 - math.log(9.0)), rel=1e-5)


def test_vae_loss_is_reconstruction_plus_beta_kl_and_logs_the_elbo():
    model = build("vae", settings={"beta": 4.0})
    x = np.random.default_rng(0).random((16, 8, 8, 1)).astype("float32")
    terms = {k: float(v) for k, v in model.compute_terms(x).items()}
    assert terms["loss"] == pytest.approx(terms["reconstruction_loss"] + 4 * terms["kl_loss"], rel=1e-5)
    assert terms["elbo_loss"] == pytest.approx(terms["reconstruction_loss"] + terms["kl_loss"], rel=1e-5)


def test_vae_probe_can_read_samples():
    model = build("vae", settings={"probe": "sample"})
    x = np.random.default_rng(0).random((8, 8, 8, 1)).astype("float32")
    assert not np.allclose(numpy(model.probe_features(x)), numpy(model.encode(x)["z_mean"]))


# -- sparse ------------------------------------------------------------------------------------------


def test_sparse_kl_matches_a_hand_computation():
    activations = np.array([[0.1, 0.5], [0.3, 0.5]], "float32")  # unit means 0.2 and 0.5
    rho = 0.05

    def kl(p, q):
        return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))

    expected = kl(rho, 0.2) + kl(rho, 0.5)
    assert float(numpy(losses.sparsity_kl(rho, activations))) == pytest.approx(expected, rel=1e-5)
    assert float(numpy(losses.sparsity_kl(rho, np.full((3, 2), rho, "float32")))) == pytest.approx(
        0, abs=1e-6
    )


def test_sparse_model_logs_the_raw_penalties_and_adds_them_weighted_and_logs_activity():
    model = build("sparse", latent=2, settings={"rho": 0.1, "beta": 2.0, "weight_decay": 0.01})
    x = np.random.default_rng(0).random((16, 8, 8, 1)).astype("float32")
    terms = {k: float(v) for k, v in model.compute_terms(x).items()}
    z = 1 / (1 + np.exp(-numpy(model.encoder(x)["z"])))
    assert terms["mean_activation"] == pytest.approx(z.mean(), rel=1e-5)
    assert terms["near_zero_share"] == pytest.approx((z < 0.05).mean())
    # Logged raw: the KL sum and the sum of squared kernels, without beta and weight_decay.
    expected_kl = float(numpy(losses.sparsity_kl(0.1, z.astype("float32"))))
    assert terms["sparsity_loss"] == pytest.approx(expected_kl, rel=1e-4)
    kernels = [w for m in (model.encoder, model.decoder) for w in m.get_weights() if w.ndim == 2]
    squares = sum(float((k**2).sum()) for k in kernels)
    assert terms["weight_decay_loss"] == pytest.approx(squares, rel=1e-4)
    assert terms["loss"] == pytest.approx(
        terms["reconstruction_loss"] + 2.0 * terms["sparsity_loss"] + 0.01 * terms["weight_decay_loss"],
        rel=1e-5,
    )


def test_sparse_l1_logs_the_mean_absolute_code_sum_and_a_zero_weight_adds_nothing():
    model = build("sparse", latent=2, settings={"penalty": "l1", "weight": 0.5, "weight_decay": 0.0})
    x = np.random.default_rng(0).random((16, 8, 8, 1)).astype("float32")
    terms = {k: float(v) for k, v in model.compute_terms(x).items()}
    z = 1 / (1 + np.exp(-numpy(model.encoder(x)["z"])))
    assert terms["sparsity_loss"] == pytest.approx(np.abs(z).sum(axis=-1).mean(), rel=1e-5)
    assert terms["weight_decay_loss"] > 0  # logged whatever its weight
    assert terms["loss"] == pytest.approx(
        terms["reconstruction_loss"] + 0.5 * terms["sparsity_loss"], rel=1e-6
    )


def test_sparse_kl_training_moves_the_mean_activation_to_rho():
    model = build("sparse", latent=4, settings={"rho": 0.05, "beta": 3.0})
    x = (np.random.default_rng(1).random((64, 8, 8, 1)) > 0.5).astype("float32")
    before = {k: float(v) for k, v in model.compute_terms(x).items()}
    for _ in range(60):
        model.train_step(x)
    after = {k: float(v) for k, v in model.compute_terms(x).items()}
    assert after["loss"] < 0.9 * before["loss"]
    assert abs(after["mean_activation"] - 0.05) < 0.5 * abs(before["mean_activation"] - 0.05)


def test_sparse_rho_is_validated_in_its_block():
    with pytest.raises(ConfigError, match=r"model\.sparse\.rho: expected a value <= 0.999"):
        config.from_dict({"model": {"kind": "sparse", "sparse": {"rho": 2.0}}})
    with pytest.raises(ConfigError, match=r"model\.vae\.rho: unknown key"):
        config.from_dict({"model": {"kind": "vae", "vae": {"rho": 0.1}}})


# -- denoising ---------------------------------------------------------------------------------------


def test_denoising_corrupts_only_in_training():
    x = np.full((8, 8, 8, 1), 0.5, "float32")
    gaussian = build("dae", settings={"noise": "gaussian", "std": 0.2})
    noisy = numpy(gaussian.corrupt(x, training=True))
    assert 0.15 < (noisy - x).std() < 0.25
    np.testing.assert_array_equal(numpy(gaussian.corrupt(x, training=False)), x)
    masking = build("dae", settings={"noise": "mask", "fraction": 0.25})
    masked = numpy(masking.corrupt(x, training=True))
    assert set(np.unique(masked)) <= {0.0, 0.5}
    assert 0.2 < (masked == 0).mean() < 0.3


# -- adversarial -------------------------------------------------------------------------------------


def aae(semi: bool = True):
    settings = {"semi_supervised": semi, "discriminator_hidden": [8], "supervised_learning_rate": 0.01}
    return build("aae", settings=settings)


def weights(model):
    return [w.copy() for w in model.get_weights()]


def same(a, b) -> bool:
    return all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))


def test_aae_discriminator_step_leaves_the_encoder_unchanged():
    model = aae()
    x = np.random.default_rng(0).random((16, 8, 8, 1)).astype("float32")
    encoder, decoder = weights(model.encoder), weights(model.decoder)
    discs = {k: weights(d) for k, d in model.discriminators.items()}
    model.discriminator_step(x)
    assert same(encoder, weights(model.encoder)) and same(decoder, weights(model.decoder))
    assert all(not same(discs[k], weights(d)) for k, d in model.discriminators.items())


def test_aae_generator_step_leaves_the_discriminators_unchanged():
    model = aae()
    x = np.random.default_rng(0).random((16, 8, 8, 1)).astype("float32")
    encoder, decoder = weights(model.encoder), weights(model.decoder)
    discs = {k: weights(d) for k, d in model.discriminators.items()}
    model.generator_step(x)
    assert all(same(discs[k], weights(d)) for k, d in model.discriminators.items())
    assert same(decoder, weights(model.decoder))
    assert not same(encoder, weights(model.encoder))


def test_aae_semi_supervised_decoder_reads_y_and_z_and_reports_its_classifier():
    model = aae()
    x = np.random.default_rng(0).random((16, 8, 8, 1)).astype("float32")
    y = np.arange(16) % 10
    codes = model.encode(x)
    assert tuple(codes["z"].shape) == (16, 13)  # 10 classes + latent 3
    np.testing.assert_allclose(numpy(ops.sum(codes["y"], axis=-1)), 1.0, rtol=1e-5)
    assert tuple(model.probe_features(x).shape) == (16, 3)
    logs = model.train_step(batch(model, x, y))
    assert set(logs) >= {"cat_discriminator_accuracy", "gauss_discriminator_accuracy", "classification_loss"}
    assert 0 <= float(model.label_metrics(x, y)["classifier_accuracy"]) <= 1
    assert not model_has_cat(aae(semi=False))


def labeled_digits(n: int = 40):
    """Noise images whose first row shows the label as a one-hot pattern: learnable in a few steps."""
    y = np.arange(n) % 10
    x = np.random.default_rng(0).random((n, 8, 8, 1)).astype("float32") * 0.5
    x[:, 0, :, 0] = 0.0
    x[np.arange(n), 0, y % 8, 0] = 1.0
    x[np.arange(n), 1, 0, 0] = (y >= 8).astype("float32")
    return x, y


def model_has_cat(model) -> bool:
    return "cat" in model.discriminators or "cat_discriminator_loss" in model.all_terms


def test_aae_cross_entropy_phase_learns_the_labels():
    model = aae()
    x, y = labeled_digits()
    assert float(model.label_metrics(x, y)["classifier_accuracy"]) < 0.5
    for _ in range(80):
        model.supervised_step(x, y)
    assert float(model.label_metrics(x, y)["classifier_accuracy"]) > 0.9


def test_strategy_hands_a_model_that_uses_labels_batches_of_the_labeled_subset_only():
    from latentprobe.strategies import STRATEGIES, Probe, build_head, build_optimizer

    x, y = labeled_digits(64)
    labeled_idx = np.arange(0, 64, 2)
    # (The other strategies share Strategy._model_step; tests/test_variants_cli.py runs them, marked slow.)
    for strategy, every in (("alternating", "step"),):
        model = aae()
        cfg = config.from_dict(
            {
                "model": {"kind": "aae", "latent": 3, "aae": {"semi_supervised": True}},
                "probe": {"strategy": strategy, "epochs": 1, "batch_size": 8}
                | ({"every": every} if strategy == "alternating" else {}),
                "train": {"epochs": 1, "batch_size": 16, "jit_compile": False},
            }
        )
        probe = Probe(build_head(cfg.probe, 3, 10), build_optimizer("adam", 1e-3))
        runner = STRATEGIES[strategy](model, probe, x, y, labeled_idx, cfg, np.random.default_rng(0))
        batches = runner.labeled_batches(4)
        assert batches.shape == (4, 8) and set(batches.ravel()) <= set(labeled_idx)
        record = next(iter(runner.run()))
        assert np.isfinite(record.train["classification_loss"]) and record.train["classification_loss"] > 0


# -- supervised --------------------------------------------------------------------------------------


def test_supervised_trains_the_encoder_on_labeled_batches_only_and_never_the_decoder():
    model = build("supervised", latent=10)
    x, y = labeled_digits()
    decoder = weights(model.decoder)
    for _ in range(80):
        model.train_step((np.zeros_like(x), x, y))  # the unlabeled batch is ignored
    assert same(decoder, weights(model.decoder))
    assert float(model.label_metrics(x, y)["classifier_accuracy"]) > 0.9
    assert model.compute_terms(x) == {}
    with pytest.raises(ValueError, match="x_labeled"):
        model.train_step(x)


# -- conv networks -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(28, 28, 1), (8, 8, 1), (10, 6, 3)])
def test_conv_networks_map_images_to_codes_and_back_to_the_same_shape(shape):
    encoder = build_conv_encoder(shape, (4, 8), {"z_mean": 2, "z_log_var": 2})
    decoder = build_conv_decoder(2, (4, 8), shape)
    x = np.random.default_rng(0).random((3, *shape)).astype("float32")
    out = encoder(x)
    assert tuple(out["z_mean"].shape) == (3, 2) and tuple(out["z_log_var"].shape) == (3, 2)
    reconstruction = numpy(decoder(out["z_mean"]))
    assert reconstruction.shape == (3, *shape)
    assert reconstruction.min() >= 0 and reconstruction.max() <= 1
    assert any(layer.name.startswith("conv_") for layer in encoder.layers)


def test_conv_network_on_flat_data_is_a_config_error():
    cfg = config.from_dict({"model": {"network": "conv", "hidden": [4]}})
    with pytest.raises(ConfigError, match=r"model\.network: 'conv' needs image data"):
        models.build(cfg.model, 2, (64,), 10, seed=0)


def test_variant_latent_statistics_for_eval():
    """The VAE reports KL per dimension (0 for codes at the prior); the sparse AE its mean activation."""
    import numpy as np

    from latentprobe import config as config_mod
    from latentprobe import models as models_mod

    x = np.random.default_rng(0).random((16, 8, 8, 1)).astype("float32")
    for kind, check in (
        ("vae", lambda s: len(s["kl_per_dimension"]) == 3 and s["kl_total"] >= 0),
        ("sparse", lambda s: 0 < s["mean_activation"] < 1 and len(s["mean_activation_per_unit"]) == 3),
        ("ae", lambda s: s == {}),
    ):
        cfg = config_mod.from_dict({"model": {"kind": kind, "latent": 3, "hidden": [8]}})
        model = models_mod.build(cfg.model, 3, (8, 8, 1), 10, seed=0)
        assert check(model.latent_statistics(x)), kind
    vae = models_mod.build(
        config_mod.from_dict({"model": {"kind": "vae", "latent": 3, "hidden": [8]}}).model,
        3,
        (8, 8, 1),
        10,
        seed=0,
    )
    for layer in (vae.encoder.get_layer("z_mean"), vae.encoder.get_layer("z_log_var")):
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])  # codes exactly N(0, 1)
    assert vae.latent_statistics(x)["kl_total"] == 0.0
